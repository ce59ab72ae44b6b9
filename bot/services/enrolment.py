"""Enrolment: staff create an episode and a single-use deep link; the patient links and consents.

The token is random (``secrets.token_urlsafe``), at most 64 characters of ``[A-Za-z0-9_-]``
(Telegram's limit for ``/start`` payloads), and only its SHA-256 is stored: a database leak does
not let anyone link a chat. Every failed attempt is audited.
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import segno
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import CheckIn, EnrolmentToken, Episode, Patient
from bot.db.queries.patients import (
    live_episode,
    patient_by_chat,
    patient_by_label,
    token_by_hash,
    unused_tokens,
)
from bot.domain.protocol import Indication, KneeSide, Protocol
from bot.domain.schedule import plan_checkins
from bot.domain.states import CONSENT, CheckInStatus, EpisodeStatus
from bot.errors import EnrolmentError, UsageError
from bot.services import audit
from bot.services.context import ServiceContext

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: Episode statuses in which the follow-up is running or about to.


@dataclass(frozen=True)
class Invitation:
    """What staff hand to the patient: the deep link (and its token, shown once)."""

    episode_id: int
    label: str
    token: str
    link: str
    expires_at: datetime


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def deep_link(bot_username: str, token: str) -> str:
    """The t.me link that opens the bot with ``/start <token>``."""
    return f"https://t.me/{bot_username}?start={token}"


def qr_png(link: str) -> bytes:
    """The deep link as a QR code PNG, for staff to show on a screen or print."""
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=8, border=2)
    return buffer.getvalue()


async def enrol(
    ctx: ServiceContext,
    *,
    label: str,
    procedure_at: datetime,
    side: KneeSide,
    indication: Indication,
    language: str,
    protocol: Protocol,
    baseline_pain: int | None = None,
    time_zone: str | None = None,
    actor: str = "cli",
) -> Invitation:
    """Create (or re-invite) a patient's episode and a fresh single-use token."""
    if not LABEL_PATTERN.match(label):
        raise UsageError(
            "the label must be 1-64 letters, digits, '.', '_' or '-' (the unit's own id, no names)"
        )
    if language not in protocol.languages:
        raise UsageError(f"language must be one of {', '.join(protocol.languages)}")
    if baseline_pain is not None and not 0 <= baseline_pain <= 10:
        raise UsageError("baseline pain must be a whole number from 0 to 10")
    if procedure_at.tzinfo is None:
        raise UsageError("the procedure time needs a time zone")
    zone = time_zone or ctx.unit.time_zone
    ZoneInfo(zone)
    now = ctx.clock.now()
    token = secrets.token_urlsafe(32)
    async with ctx.sessions.begin() as session:
        protocol_row = await ctx.protocols.row_for(session, protocol, ctx.clock)
        patient = await patient_by_label(session, label=label)
        if patient is None:
            patient = Patient(label=label, created_at=now)
            session.add(patient)
            await session.flush()
        elif patient.erased_at is not None:
            raise UsageError(f"patient {label} was erased; use a new label")
        live = await live_episode(session, patient_id=patient.id)
        if live is not None and live.status != EpisodeStatus.INVITED:
            raise UsageError(
                f"patient {label} already has a follow-up in progress (status {live.status}); "
                "stop it first"
            )
        if live is None:
            live = Episode(
                patient_id=patient.id,
                protocol_version_id=protocol_row,
                procedure_at=procedure_at,
                time_zone=zone,
                side=side.value,
                indication=indication.value,
                language=language,
                status=EpisodeStatus.INVITED,
                baseline_pain=baseline_pain,
                baseline_source="staff" if baseline_pain is not None else None,
                created_at=now,
                created_by=actor,
                reask_count=0,
            )
            session.add(live)
            await session.flush()
        else:
            live.procedure_at = procedure_at
            live.side, live.indication, live.language = side.value, indication.value, language
            live.protocol_version_id = protocol_row
            if baseline_pain is not None:
                live.baseline_pain, live.baseline_source = baseline_pain, "staff"
            for old in await unused_tokens(session, episode_id=live.id):
                old.expires_at = now
        expires_at = now + ctx.unit.token_ttl
        session.add(
            EnrolmentToken(
                episode_id=live.id,
                token_hash=hash_token(token),
                created_at=now,
                expires_at=expires_at,
            )
        )
        audit.record(session, at=now, actor=actor, action="enrol", episode_id=live.id)
        episode_id = live.id
    return Invitation(
        episode_id=episode_id,
        label=label,
        token=token,
        link=deep_link(ctx.unit.bot_username, token),
        expires_at=expires_at,
    )


async def link_chat(ctx: ServiceContext, *, token: str, chat_id: int) -> Episode:
    """Use a token: link the chat to its patient, once. Raises :class:`EnrolmentError`."""
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        reason: str | None = None
        row: EnrolmentToken | None = None
        if not TOKEN_PATTERN.match(token):
            reason = "unknown"
        else:
            row = await token_by_hash(session, token_hash=hash_token(token))
            if row is None:
                reason = "unknown"
            elif row.used_at is not None:
                reason = "used"
            elif row.expires_at <= now:
                reason = "expired"
        episode: Episode | None = None
        if row is not None and reason is None:
            episode = await session.get(Episode, row.episode_id)
            assert episode is not None
            patient = await session.get(Patient, episode.patient_id)
            assert patient is not None
            other = await patient_by_chat(session, chat_id=chat_id)
            if (other is not None and other.id != patient.id) or (
                patient.chat_id is not None and patient.chat_id != chat_id
            ):
                reason = "linked"
        if reason is not None or episode is None or row is None:
            audit.record(
                session,
                at=now,
                actor=f"chat:{chat_id}",
                action="enrol_token_refused",
                episode_id=row.episode_id if row is not None else None,
                reason=reason,
            )
            await session.commit()
            raise EnrolmentError(reason or "unknown")
        row.used_at = now
        assert patient is not None
        patient.chat_id = chat_id
        episode.status = EpisodeStatus.CONSENT
        episode.awaiting = CONSENT
        audit.record(
            session, at=now, actor=f"chat:{chat_id}", action="chat_linked", episode_id=episode.id
        )
        return episode


async def plan_episode(session: AsyncSession, ctx: ServiceContext, episode: Episode) -> int:
    """Store the episode's check-ins from its protocol version; returns how many are scheduled."""
    protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
    planned = plan_checkins(
        protocol,
        procedure_at=episode.procedure_at,
        time_zone=episode.time_zone,
        indication=Indication(episode.indication),
        consented_at=episode.consented_at,
    )
    scheduled = 0
    for item in planned:
        session.add(
            CheckIn(
                episode_id=episode.id,
                def_id=item.checkin_id,
                due_at=item.due_at,
                window_ends_at=item.window_ends_at,
                status=item.status,
                status_reason=item.reason,
                attempts=0,
                question_index=0,
                reask_count=0,
                selection=[],
                reminders_sent=0,
            )
        )
        scheduled += item.status == CheckInStatus.SCHEDULED
    return scheduled
