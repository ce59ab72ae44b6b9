"""What a typed text, an edit or a button press is an answer to, and who handles it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import CheckIn, Episode
from bot.domain.parsing import Parsed, parse_scale, parse_yes_no
from bot.domain.protocol import Indication, Protocol
from bot.domain.states import BASELINE, CONSENT, FOLLOW_UP_OVER, Awaiting, CheckInStatus
from bot.i18n import t
from bot.services.context import ServiceContext
from bot.services.conversation.answers import answer_button, answer_question, parse_typed
from bot.services.conversation.clarify import clarified
from bot.services.conversation.consent import answer_consent, gate, set_baseline
from bot.services.conversation.corrections import correct
from bot.services.conversation.evaluation import save_answer
from bot.services.conversation.lookups import open_checkin
from bot.services.conversation.notes import save_note, scan_free_text
from bot.services.conversation.prompts import consent_for, current_protocol
from bot.services.conversation.turn import Outbox
from bot.services.ports import Button
from bot.services.questions import ButtonPress, scale_rows


async def route_text(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    text: str,
    message_id: int | None,
    now: datetime,
) -> None:
    lang = episode.language
    if await gate(session, ctx, outbox, protocol, episode, now):
        return
    if episode.status in FOLLOW_UP_OVER:
        await save_note(session, ctx, outbox, protocol, episode, text, message_id, now)
        return
    awaiting = episode.awaiting
    if awaiting == CONSENT:
        parsed = parse_yes_no(text)
        if parsed.status == "ok":
            await answer_consent(session, ctx, outbox, protocol, episode, parsed.value == 1, now)
        else:
            outbox.messages.append(consent_for(ctx, protocol, episode))
        return
    if awaiting == BASELINE:
        parsed = parse_scale(text, minimum=0, maximum=10)
        save_answer(session, episode, None, "baseline", "text", text, parsed, now, message_id)
        if parsed.status == "ok" and parsed.value is not None:
            await set_baseline(session, ctx, outbox, episode, parsed.value, now)
        else:
            outbox.say(
                t(lang, "Sorry, I did not understand. Could you choose a number from 0 to 10?"),
                scale_rows("b:", 0, 10),
            )
        await scan_free_text(session, ctx, outbox, protocol, episode, text, now)
        return
    if awaiting is not None and awaiting.flag is not None:
        flag = awaiting.flag
        parsed = parse_yes_no(text)
        if parsed.value == 1:
            parsed = Parsed("ok", value=1, option_id="yes", flags=frozenset({flag}))
        save_answer(
            session, episode, None, f"clarify_{flag}", "text", text, parsed, now, message_id
        )
        await clarified(session, ctx, outbox, protocol, episode, flag, parsed, now)
        return
    checkin = await open_checkin(session, episode.id)
    if checkin is not None:
        questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
        if checkin.question_index < len(questions):
            question = questions[checkin.question_index]
            parsed = parse_typed(protocol, question, text, lang)
            await answer_question(
                session,
                ctx,
                outbox,
                protocol,
                episode,
                checkin,
                question,
                parsed,
                "text",
                text,
                message_id,
                now,
            )
            return
    await save_note(session, ctx, outbox, protocol, episode, text, message_id, now)


async def route_edit(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    text: str,
    message_id: int | None,
    now: datetime,
) -> None:
    """An edited message: a correction of what it edited, else read as a new message."""
    if not await correct(session, ctx, outbox, protocol, episode, text, message_id, now):
        await route_text(session, ctx, outbox, protocol, episode, text, message_id, now)


async def route_button(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    press: ButtonPress,
    message_id: int | None,
    now: datetime,
) -> str | None:
    lang = episode.language
    stale = t(lang, "This question is closed. Thank you!")
    if press.kind == "c":
        if episode.awaiting != CONSENT:
            return stale
        if press.value == "i":
            outbox.say(
                current_protocol(ctx, protocol).consent.details.get(lang),
                ((Button(t(lang, "I agree"), "c:y"), Button(t(lang, "I refuse"), "c:n")),),
            )
            return None
        await answer_consent(session, ctx, outbox, protocol, episode, press.value == "y", now)
        return None
    if await gate(session, ctx, outbox, protocol, episode, now):
        return None
    if episode.awaiting == CONSENT:
        outbox.messages.append(consent_for(ctx, protocol, episode))
        return t(lang, "Please answer the consent question first.")
    if press.kind == "b":
        if episode.awaiting != BASELINE or press.value is None or not press.value.isdigit():
            return stale
        value = int(press.value)
        if not 0 <= value <= 10:
            return stale
        save_answer(
            session,
            episode,
            None,
            "baseline",
            "button",
            None,
            Parsed(status="ok", value=value),
            now,
            message_id,
        )
        await set_baseline(session, ctx, outbox, episode, value, now)
        return None
    if press.kind == "f":
        assert press.value is not None
        flag, answer = press.value.split(":")
        if episode.awaiting != Awaiting.clarify(flag):
            return stale
        parsed = Parsed(
            status="ok",
            value=1 if answer == "y" else 0,
            option_id="yes" if answer == "y" else "no",
            flags=frozenset({flag}) if answer == "y" else frozenset(),
        )
        save_answer(
            session, episode, None, f"clarify_{flag}", "button", None, parsed, now, message_id
        )
        await clarified(session, ctx, outbox, protocol, episode, flag, parsed, now)
        return None
    if press.kind in ("a", "t", "d", "n"):
        checkin = await session.get(CheckIn, press.checkin_id)
        if (
            checkin is None
            or checkin.episode_id != episode.id
            or checkin.status != CheckInStatus.AWAITING
            or checkin.question_index != press.question_index
        ):
            return stale
        questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
        if checkin.question_index >= len(questions):
            return stale
        question = questions[checkin.question_index]
        return await answer_button(
            session, ctx, outbox, protocol, episode, checkin, question, press, message_id, now
        )
    return stale
