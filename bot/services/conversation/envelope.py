"""The one envelope of every patient update, and the conversation's entry points.

Every update (``/start``, a command, a button, a text, an edit, a photo or a voice note) is:
one query for whether its update id was handled before, the chat's patient and episode, the
open check-in and what the chat is still owed (:func:`~bot.db.queries.episodes.turn_start`) →
the history the rules read → build the :class:`~.turn.Turn` → run its route, and record the
update id last, all in one transaction (reads first, writes together at the end) → after the
commit, run what needed the commit and send what was queued. An ordinary reply costs about 6
statements and one commit (it was 15 and four). A crash never leaves an answer half-saved, and a
failure to send never loses one. The kinds of update differ only in their route and in what a
chat we do not know is told (:data:`Stranger`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.queries import answers, episodes, updates
from bot.i18n import t
from bot.services import alerts
from bot.services.context import ServiceContext
from bot.services.conversation.consent import start, start_unknown_chat
from bot.services.conversation.delivery import deliver, owe_queued, send_still_owed
from bot.services.conversation.languages import guess_language, unknown_chat_text
from bot.services.conversation.media import route_media
from bot.services.conversation.routing import route_button, route_edit, route_text
from bot.services.conversation.turn import Outbox, Reply, Turn
from bot.services.questions import decode


async def already_processed(session: AsyncSession, update_id: int | None, now: datetime) -> bool:
    """True when Telegram delivered this update before; otherwise it is recorded now, so a
    webhook retry or a redelivery after a restart is handled once (staff commands too)."""
    return update_id is not None and await updates.already_processed(
        session, update_id=update_id, now=now
    )


#: What an update does for an enrolled patient, inside the transaction.
Route = Callable[[Turn], Awaitable[None]]
#: What a chat with no patient (never enrolled, or erased) is told, in its Telegram language.
Stranger = Callable[[Outbox, str], None]


async def run(
    ctx: ServiceContext,
    *,
    chat_id: int,
    update_id: int | None,
    language_code: str | None,
    route: Route,
    stranger: Stranger,
) -> Reply:
    """Handle one update: ``route`` for a known patient, ``stranger`` for anyone else."""
    outbox = Outbox(chat_id)
    now = ctx.clock.now()
    async with ctx.turn_gate.slot(), ctx.sessions.begin() as session:
        start = await episodes.turn_start(session, chat_id=chat_id, update_id=update_id)
        redelivered = start.redelivered
        found = None if redelivered else start.found
        if found is None and not redelivered:
            stranger(outbox, guess_language(ctx, language_code))
            _record(session, update_id, now)
            await owe_queued(session, ctx, outbox, episode_id=None)
        elif found is not None:
            patient, episode = found
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            # The history the rules read, before anything is written (read once: answers.py).
            await answers.prefetch_history(session, episode_id=episode.id)
            turn = Turn(
                session=session,
                ctx=ctx,
                outbox=outbox,
                protocol=protocol,
                patient=patient,
                episode=episode,
                now=now,
            )
            await route(turn)
            outbox.cards = await alerts.claim_cards(
                session,
                ctx,
                outbox.alerts,
                protocol=protocol,
                episode=episode,
                patient=patient,
                now=now,
            )
            _record(session, update_id, now)
            await owe_queued(session, ctx, outbox, episode_id=episode.id)
    outbox.unsent_before = start.unsent
    if redelivered:
        # Handled before (Telegram sent it again): only what that handling still owes.
        await send_still_owed(ctx, chat_id=chat_id)
        return Reply()
    await deliver(ctx, outbox)
    return Reply(toast=outbox.toast)


def _record(session: AsyncSession, update_id: int | None, now: datetime) -> None:
    """Record the update id last, with the turn's other rows: the turn's reads come before its
    first write (on SQLite, the one write lock is then held only for the writes)."""
    if update_id is not None:
        episodes.record_update(session, update_id=update_id, now=now)


def how_to_enrol(outbox: Outbox, language: str) -> None:
    """A message from someone not enrolled: how to enrol."""
    outbox.say(unknown_chat_text(language))


def inactive_button(outbox: Outbox, language: str) -> None:
    """A button pressed in a chat with no patient (erased since, or never enrolled)."""
    outbox.toast = t(language, "This button is no longer active.")


def _never_silent(turn: Turn) -> None:
    """Every message gets an answer: one that was only saved is acknowledged."""
    if turn.outbox.silent:
        turn.outbox.say(t(turn.language, "Thank you, noted."))


async def handle_start(
    ctx: ServiceContext,
    *,
    chat_id: int,
    token: str | None,
    update_id: int | None,
    language_code: str | None,
) -> None:
    """``/start <token>``: link the chat and ask for consent, or explain why not."""
    await run(
        ctx,
        chat_id=chat_id,
        update_id=update_id,
        language_code=language_code,
        route=partial(start, token=token, telegram_language=guess_language(ctx, language_code)),
        stranger=partial(start_unknown_chat, ctx=ctx, token=token),
    )


async def handle_text(
    ctx: ServiceContext,
    *,
    chat_id: int,
    text: str,
    update_id: int | None,
    message_id: int | None,
    language_code: str | None = None,
) -> None:
    """A typed message: an answer to what we wait for, or a note read for red flags."""

    async def route(turn: Turn) -> None:
        await route_text(turn, text=text, message_id=message_id)
        _never_silent(turn)

    await run(
        ctx,
        chat_id=chat_id,
        update_id=update_id,
        language_code=language_code,
        route=route,
        stranger=how_to_enrol,
    )


async def handle_edit(
    ctx: ServiceContext,
    *,
    chat_id: int,
    text: str,
    update_id: int | None,
    message_id: int | None,
    language_code: str | None = None,
) -> None:
    """An edited message: saved as a correction of what it edited, re-read for red flags."""

    async def route(turn: Turn) -> None:
        await route_edit(turn, text=text, message_id=message_id)
        _never_silent(turn)

    await run(
        ctx,
        chat_id=chat_id,
        update_id=update_id,
        language_code=language_code,
        route=route,
        stranger=how_to_enrol,
    )


async def handle_media(
    ctx: ServiceContext,
    *,
    chat_id: int,
    kind: str,
    update_id: int | None,
    message_id: int | None,
    file_id: str | None = None,
    file_size: int | None = None,
    caption: str | None = None,
    language_code: str | None = None,
) -> None:
    """Photos, voice notes, videos, stickers, documents, locations, contacts, polls...: never
    silently ignored (see :mod:`.media`)."""

    async def route(turn: Turn) -> None:
        await route_media(
            turn,
            kind=kind,
            message_id=message_id,
            file_id=file_id,
            file_size=file_size,
            caption=caption,
        )
        _never_silent(turn)

    await run(
        ctx,
        chat_id=chat_id,
        update_id=update_id,
        language_code=language_code,
        route=route,
        stranger=how_to_enrol,
    )


async def handle_button(
    ctx: ServiceContext,
    *,
    chat_id: int,
    data: str,
    update_id: int | None,
    message_id: int | None,
    language_code: str | None = None,
) -> Reply:
    """A button press from a patient; stale and forged presses are refused politely."""
    press = decode(data)

    async def route(turn: Turn) -> None:
        turn.outbox.toast = await route_button(turn, press=press, message_id=message_id)

    return await run(
        ctx,
        chat_id=chat_id,
        update_id=update_id,
        language_code=language_code,
        route=route,
        stranger=inactive_button,
    )
