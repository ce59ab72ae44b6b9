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
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import segno
from sqlalchemy import select
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
from bot.errors import EnrolmentError, Refusal, UsageError
from bot.services import audit
from bot.services.context import ServiceContext

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: A procedure date further away than this is almost surely a typo (2020 for 2026, 01/12 read as
#: 12/01). Enrolling a few days or weeks after the procedure is normal; the Telegram enrolment
#: dialog uses the same bounds.
PROCEDURE_AT_MOST_DAYS_AGO = timedelta(days=30)
PROCEDURE_AT_MOST_AHEAD = timedelta(days=180)


class LabelTakenError(Refusal):
    """The label is already enrolled; enrolling it again needs an explicit new episode."""


@dataclass(frozen=True)
class Invitation:
    """What staff hand to the patient: the deep link (and its token, shown once)."""

    episode_id: int
    label: str
    token: str
    link: str
    expires_at: datetime
    #: True when this link replaces one the patient had not opened yet (which no longer works).
    replaced_link: bool = False


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


def check_enrolment(
    *,
    label: str,
    procedure_at: datetime,
    language: str,
    protocol: Protocol,
    baseline_pain: int | None,
    time_zone: str,
    now: datetime,
) -> None:
    """Every check that needs no database, so a front end can refuse before changing anything."""
    if not LABEL_PATTERN.match(label):
        raise Refusal(
            "the label must be 1-64 letters, digits, '.', '_' or '-' (the unit's own id, no names)"
        )
    if language not in protocol.languages:
        raise Refusal(
            "the language {language} is not in protocol {protocol}: use {languages}",
            language=repr(language),
            protocol=protocol.id,
            languages=", ".join(protocol.languages),
        )
    if baseline_pain is not None and not 0 <= baseline_pain <= 10:
        raise Refusal("baseline pain must be a whole number from 0 to 10")
    if procedure_at.tzinfo is None:
        raise UsageError("the procedure time needs a time zone")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"{time_zone!r} is not a time zone (an IANA name like Europe/Paris)"
        ) from None
    day = f"{procedure_at:%Y-%m-%d}"
    if procedure_at < now - PROCEDURE_AT_MOST_DAYS_AGO:
        raise Refusal(
            "the procedure date {day} is more than {days} days ago: "
            "check the year (a follow-up starts at the procedure)",
            day=day,
            days=PROCEDURE_AT_MOST_DAYS_AGO.days,
        )
    if procedure_at > now + PROCEDURE_AT_MOST_AHEAD:
        raise Refusal(
            "the procedure date {day} is more than {days} days ahead: "
            "check the date (enrol closer to the procedure)",
            day=day,
            days=PROCEDURE_AT_MOST_AHEAD.days,
        )


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
    new_episode: bool = False,
) -> Invitation:
    """Create a patient's episode and a fresh single-use token.

    A label already enrolled is refused (:class:`LabelTakenError`: a second patient given the
    same label would get the first one's chat and history) unless ``new_episode``: then a new
    follow-up starts for the same patient, or an invitation not opened yet is replaced. A
    follow-up in progress must be stopped first either way.
    """
    zone = time_zone or ctx.unit.time_zone
    now = ctx.clock.now()
    check_enrolment(
        label=label,
        procedure_at=procedure_at,
        language=language,
        protocol=protocol,
        baseline_pain=baseline_pain,
        time_zone=zone,
        now=now,
    )
    if not ctx.protocols.registry.is_enabled(protocol.id):
        raise Refusal(
            "protocol {protocol} is not enabled (ENABLED_PROTOCOLS)", protocol=protocol.id
        )
    token = secrets.token_urlsafe(32)
    async with ctx.sessions.begin() as session:
        protocol_row = await ctx.protocols.row_for(session, protocol, ctx.clock)
        patient = await patient_by_label(session, label=label)
        live: Episode | None = None
        if patient is None:
            if new_episode:
                raise Refusal(
                    "no patient has the label {label} yet, so there is no episode to add: "
                    "check the label, or enrol without a new episode",
                    label=repr(label),
                )
            patient = Patient(label=label, created_at=now)
            session.add(patient)
            await session.flush()
        else:
            if patient.erased_at is not None:
                raise Refusal("patient {label} was erased; use a new label", label=label)
            live = await live_episode(session, patient_id=patient.id)
            if live is not None and live.status != EpisodeStatus.INVITED:
                raise Refusal(
                    "patient {label} already has a follow-up in progress (status {status}); "
                    "stop it first",
                    label=label,
                    status=live.status,
                )
            if not new_episode:
                raise await _enrolled_already(session, patient, live)
        replaced_link = live is not None
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
        replaced_link=replaced_link,
    )


async def _enrolled_already(
    session: AsyncSession, patient: Patient, live: Episode | None
) -> LabelTakenError:
    """Why enrolling this label again needs a decision: what the label already stands for."""
    if live is not None:
        return LabelTakenError(
            "patient {label} is already enrolled on {day} and has not opened the link yet; "
            "a new link replaces that one",
            label=patient.label,
            day=f"{live.created_at:%Y-%m-%d}",
        )
    last = await session.scalar(
        select(Episode.status)
        .where(Episode.patient_id == patient.id)
        .order_by(Episode.id.desc())
        .limit(1)
    )
    return LabelTakenError(
        "patient {label} is already enrolled (last follow-up {status}, since {day})",
        label=patient.label,
        status=last or "none",
        day=f"{patient.created_at:%Y-%m-%d}",
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
