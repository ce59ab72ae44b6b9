"""Start, link, consent and baseline: how a chat becomes a running follow-up.

``/start <token>`` links the chat to its invitation; consent is asked (and asked again when the
protocol's consent text is newer than the one accepted); the baseline pain is the last step
before the check-ins are planned. :func:`gate` is what every incoming message passes first."""

from __future__ import annotations

from functools import partial

from bot.db.models import Episode
from bot.db.queries import episodes
from bot.domain.protocol import Protocol
from bot.domain.states import (
    BASELINE,
    CONSENT,
    LIVE_STATUSES,
    RUNNING,
    EpisodeStatus,
)
from bot.errors import EnrolmentError
from bot.i18n import format_local, t
from bot.services.context import ServiceContext
from bot.services.conversation.blocking import unblock
from bot.services.conversation.languages import unknown_chat_text
from bot.services.conversation.prompts import (
    consent_for,
    consent_message,
    current_protocol,
    refused_text,
    resume,
)
from bot.services.conversation.stop import stop_episode
from bot.services.conversation.turn import Outbox, Turn
from bot.services.enrolment import hash_token, link_chat, plan_episode
from bot.services.questions import scale_rows


def consent_outdated(ctx: ServiceContext, protocol: Protocol, episode: Episode) -> bool:
    """True when the consent in force is newer than the one the patient accepted."""
    required = current_protocol(ctx, protocol).consent.version
    return episode.consent_version is None or episode.consent_version < required


async def gate(turn: Turn) -> bool:
    """What every incoming message passes first; True when it was fully handled here.

    A refused follow-up stores nothing; a blocked bot that hears from the patient is unblocked;
    a consent text newer than the one accepted is asked again before anything else.
    """
    ctx, episode = turn.ctx, turn.episode
    if episode.status == EpisodeStatus.REFUSED:
        turn.outbox.say(refused_text(ctx, turn.language))
        return True
    unblock(turn)
    if (
        episode.status in RUNNING
        and episode.awaiting != CONSENT
        and consent_outdated(ctx, turn.protocol, episode)
    ):
        episode.awaiting = CONSENT
        turn.audit(
            "consent_renewal_asked",
            consent_version=current_protocol(ctx, turn.protocol).consent.version,
        )
        turn.outbox.messages.append(consent_for(turn))
        return True
    return False


async def answer_consent(turn: Turn, *, accepted: bool) -> None:
    """Consent given or refused; a renewal (newer consent text) keeps the follow-up's place."""
    episode, outbox, lang = turn.episode, turn.outbox, turn.language
    version = current_protocol(turn.ctx, turn.protocol).consent.version
    renewal = episode.status in RUNNING
    if not accepted:
        turn.audit("consent_refused", actor="patient", consent_version=version)
        if renewal:
            await stop_episode(turn, reason="consent_refused")
        else:
            episode.status = EpisodeStatus.REFUSED
        episode.awaiting = None
        outbox.say(
            t(
                lang,
                "Understood: you will not receive any follow-up messages. If you change your mind, ask the unit for a new link. Take care!",
            )
        )
        outbox.staff_notices.append(
            t(
                turn.ctx.unit.staff_language,
                "ℹ️ {label} refused the follow-up.",
                label=turn.patient.label,
            )
        )
        return
    episode.consent_version = version
    if episode.consented_at is None:
        episode.consented_at = turn.now
    turn.audit("consent_given", actor="patient", consent_version=version)
    if renewal:
        episode.awaiting = None
        outbox.say(t(lang, "Thank you, your follow-up goes on."))
        await resume(turn)
        return
    if episode.baseline_pain is None:
        episode.awaiting = BASELINE
        outbox.say(
            t(lang, "Thank you.") + " " + turn.protocol.baseline_question.get(lang),
            scale_rows("b:", 0, 10),
        )
        return
    await start_follow_up(turn)


async def set_baseline(turn: Turn, *, value: int) -> None:
    """The patient's own pain before the procedure: the last step before the check-ins."""
    turn.episode.baseline_pain = value
    turn.episode.baseline_source = "patient"
    turn.outbox.say(t(turn.language, "Noted: {value}/10.", value=value))
    await start_follow_up(turn)


async def start_follow_up(turn: Turn) -> None:
    """Plan the check-ins and tell the patient when the first one comes."""
    session, episode, lang = turn.session, turn.episode, turn.language
    episode.status = EpisodeStatus.ACTIVE
    episode.awaiting = None
    await plan_episode(session, turn.ctx, episode)
    await session.flush()
    next_due = await episodes.next_checkin_due(session, episode_id=episode.id)
    if next_due is not None:
        turn.outbox.say(
            t(
                lang,
                "Your follow-up has started. Next check-in: {when}.",
                when=format_local(next_due, lang, episode.time_zone),
            )
        )
    else:
        turn.outbox.say(t(lang, "Your follow-up has started."))
    turn.ctx.on_schedule_changed()


async def start(turn: Turn, *, token: str | None, telegram_language: str) -> None:
    """``/start [token]`` from a chat we know: link it to a new invitation, or say where the
    patient is. ``telegram_language`` is for an invitation not opened yet."""
    episode = turn.episode
    if (
        token
        and episode.status in LIVE_STATUSES
        and episode.status != EpisodeStatus.INVITED
        and await episodes.is_episode_link(
            turn.session, episode_id=episode.id, token_hash=hash_token(token)
        )
    ):
        token = None  # the patient opened their own link again
    if token:
        _link_after_commit(turn.ctx, turn.outbox, token=token, language=turn.language)
    elif episode.status == EpisodeStatus.INVITED:
        turn.outbox.say(unknown_chat_text(telegram_language))
    else:
        await _greet(turn)


def start_unknown_chat(
    outbox: Outbox, language: str, *, ctx: ServiceContext, token: str | None
) -> None:
    """``/start [token]`` from a chat we do not know: link it, or say how to enrol."""
    if token:
        _link_after_commit(ctx, outbox, token=token, language=language)
    else:
        outbox.say(unknown_chat_text(language))


def _link_after_commit(ctx: ServiceContext, outbox: Outbox, *, token: str, language: str) -> None:
    """Link once the update's transaction has committed: linking claims the invitation in a
    transaction of its own."""
    outbox.after_commit.append(partial(_link, ctx, outbox, token=token, language=language))


async def _greet(turn: Turn) -> None:
    """``/start`` from an enrolled patient: say where they are, ask what we wait for."""
    episode, outbox, lang = turn.episode, turn.outbox, turn.language
    if episode.status == EpisodeStatus.REFUSED:
        outbox.say(refused_text(turn.ctx, lang))
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
                phone=turn.ctx.unit.unit_phone,
            )
        )
    elif episode.awaiting == CONSENT:
        outbox.messages.append(consent_for(turn))
    else:
        outbox.say(t(lang, "You are already enrolled. Type /help to see what I can do."))
        await resume(turn)


async def _link(ctx: ServiceContext, outbox: Outbox, *, token: str, language: str) -> None:
    """Link the chat to the invitation ``token`` names and ask for consent, or say why not."""
    try:
        episode = await link_chat(ctx, token=token, chat_id=outbox.chat_id)
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
    outbox.messages.append(
        consent_message(ctx, protocol=current_protocol(ctx, protocol), language=episode.language)
    )
