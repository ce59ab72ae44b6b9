"""Start, link, consent and baseline: how a chat becomes a running follow-up.

``/start <token>`` links the chat to its invitation; consent is asked (and asked again when the
protocol's consent text is newer than the one accepted); the baseline pain is the last step
before the check-ins are planned. :func:`gate` is what every incoming message passes first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import CheckIn, Episode, Patient
from bot.domain.protocol import Protocol
from bot.domain.states import BASELINE, CONSENT, CheckInStatus, EpisodeStatus
from bot.errors import EnrolmentError
from bot.i18n import format_local, t
from bot.services import audit
from bot.services.context import ServiceContext
from bot.services.conversation.blocking import unblock
from bot.services.conversation.prompts import (
    consent_for,
    consent_message,
    current_protocol,
    refused_text,
    resume,
)
from bot.services.conversation.stop import stop_episode
from bot.services.conversation.turn import Outbox
from bot.services.enrolment import link_chat, plan_episode
from bot.services.questions import scale_rows


def consent_outdated(ctx: ServiceContext, protocol: Protocol, episode: Episode) -> bool:
    """True when the consent in force is newer than the one the patient accepted."""
    required = current_protocol(ctx, protocol).consent.version
    return episode.consent_version is None or episode.consent_version < required


async def gate(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    now: datetime,
) -> bool:
    """What every incoming message passes first; True when it was fully handled here.

    A refused follow-up stores nothing; a blocked bot that hears from the patient is unblocked;
    a consent text newer than the one accepted is asked again before anything else.
    """
    if episode.status == EpisodeStatus.REFUSED:
        outbox.say(refused_text(ctx, episode.language))
        return True
    unblock(session, episode, now)
    if (
        episode.status in (EpisodeStatus.ACTIVE, EpisodeStatus.PAUSED)
        and episode.awaiting != CONSENT
        and consent_outdated(ctx, protocol, episode)
    ):
        episode.awaiting = CONSENT
        audit.record(
            session,
            at=now,
            actor="system",
            action="consent_renewal_asked",
            episode_id=episode.id,
            consent_version=current_protocol(ctx, protocol).consent.version,
        )
        outbox.messages.append(consent_for(ctx, protocol, episode))
        return True
    return False


async def answer_consent(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    accepted: bool,
    now: datetime,
) -> None:
    """Consent given or refused; a renewal (newer consent text) keeps the follow-up's place."""
    lang = episode.language
    version = current_protocol(ctx, protocol).consent.version
    renewal = episode.status in (EpisodeStatus.ACTIVE, EpisodeStatus.PAUSED)
    patient = await session.get(Patient, episode.patient_id)
    label = patient.label if patient is not None else "?"
    if not accepted:
        audit.record(
            session,
            at=now,
            actor="patient",
            action="consent_refused",
            episode_id=episode.id,
            consent_version=version,
        )
        if renewal:
            await stop_episode(session, episode, now, reason="consent_refused")
        else:
            episode.status = EpisodeStatus.REFUSED
        episode.awaiting = None
        outbox.say(
            t(
                lang,
                "Understood: you will not receive any follow-up messages. If you change your mind, ask the unit for a new link. Take care!",
            )
        )
        outbox.staff_notices.append(t("fr", "ℹ️ {label} refused the follow-up.", label=label))
        return
    episode.consent_version = version
    if episode.consented_at is None:
        episode.consented_at = now
    audit.record(
        session,
        at=now,
        actor="patient",
        action="consent_given",
        episode_id=episode.id,
        consent_version=version,
    )
    if renewal:
        episode.awaiting = None
        outbox.say(t(lang, "Thank you, your follow-up goes on."))
        await resume(session, ctx, outbox, protocol, episode)
        return
    if episode.baseline_pain is None:
        episode.awaiting = BASELINE
        outbox.say(
            t(lang, "Thank you.") + " " + protocol.baseline_question.get(lang),
            scale_rows("b:", 0, 10),
        )
        return
    await start_follow_up(session, ctx, outbox, episode, now)


async def set_baseline(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    episode: Episode,
    value: int,
    now: datetime,
) -> None:
    episode.baseline_pain = value
    episode.baseline_source = "patient"
    outbox.say(t(episode.language, "Noted: {value}/10.", value=value))
    await start_follow_up(session, ctx, outbox, episode, now)


async def start_follow_up(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    episode: Episode,
    now: datetime,
) -> None:
    episode.status = EpisodeStatus.ACTIVE
    episode.awaiting = None
    await plan_episode(session, ctx, episode)
    await session.flush()
    next_due = await session.scalar(
        select(CheckIn.due_at)
        .where(CheckIn.episode_id == episode.id, CheckIn.status == CheckInStatus.SCHEDULED)
        .order_by(CheckIn.due_at)
    )
    lang = episode.language
    if next_due is not None:
        outbox.say(
            t(
                lang,
                "Your follow-up has started. Next check-in: {when}.",
                when=format_local(next_due, lang, episode.time_zone),
            )
        )
    else:
        outbox.say(t(lang, "Your follow-up has started."))
    ctx.on_schedule_changed()


async def greet_known(
    session: AsyncSession, ctx: ServiceContext, outbox: Outbox, episode: Episode
) -> None:
    """``/start`` from an enrolled patient: say where they are, ask what we wait for."""
    lang = episode.language
    protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
    if episode.status == EpisodeStatus.REFUSED:
        outbox.say(refused_text(ctx, lang))
    elif episode.status == EpisodeStatus.STOPPED:
        outbox.say(
            t(
                lang,
                "Your follow-up is stopped. If you want to start it again, please ask the unit for a new link.",
            )
        )
    elif episode.status == EpisodeStatus.COMPLETED:
        outbox.say(
            t(
                lang,
                "Your follow-up is complete. Thank you! If you are worried, call the unit on {phone}.",
                phone=ctx.unit.unit_phone,
            )
        )
    elif episode.awaiting == CONSENT:
        outbox.messages.append(consent_for(ctx, protocol, episode))
    else:
        outbox.say(t(lang, "You are already enrolled. Type /help to see what I can do."))
        await resume(session, ctx, outbox, protocol, episode)


async def enrol_chat(
    ctx: ServiceContext, outbox: Outbox, *, token: str, chat_id: int, language: str
) -> None:
    try:
        episode = await link_chat(ctx, token=token, chat_id=chat_id)
    except EnrolmentError as exc:
        messages = {
            "unknown": t(
                language, "This link is not valid. Please check it, or ask the unit for a new one."
            ),
            "used": t(
                language,
                "This link has already been used. If you did not use it, please call the unit.",
            ),
            "expired": t(language, "This link has expired. Please ask the unit for a new one."),
            "linked": t(
                language,
                "This Telegram account is already linked to a follow-up. Please call the unit if this is not right.",
            ),
        }
        outbox.say(messages.get(exc.reason, messages["unknown"]))
        return
    async with ctx.sessions() as session:
        protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
    outbox.messages.append(consent_message(ctx, current_protocol(ctx, protocol), episode.language))
