"""The conversation's entry points, one per kind of update, and the transaction around each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select

from bot.db.models import EnrolmentToken
from bot.domain.states import FOLLOW_UP_OVER, LIVE_STATUSES, EpisodeStatus
from bot.i18n import t
from bot.services.context import ServiceContext
from bot.services.conversation.consent import enrol_chat, greet_known
from bot.services.conversation.delivery import finish, flush, store_photos
from bot.services.conversation.languages import guess_language, unknown_chat_text
from bot.services.conversation.lookups import already_processed, patient_episode
from bot.services.conversation.media import route_media
from bot.services.conversation.routing import route_button, route_edit, route_text
from bot.services.conversation.turn import Outbox, Reply, Turn
from bot.services.enrolment import hash_token
from bot.services.questions import decode

Route = Callable[[Turn], Awaitable[None]]


async def _handle_update(
    ctx: ServiceContext,
    *,
    chat_id: int,
    update_id: int | None,
    language_code: str | None,
    route: Route,
) -> None:
    """The envelope of every patient message: skip a redelivered update, find the patient,
    route in one transaction, then send what was queued (after the commit)."""
    outbox = Outbox(chat_id)
    now = ctx.clock.now()
    language = guess_language(ctx, language_code)
    async with ctx.sessions.begin() as session:
        if await already_processed(session, update_id, now):
            return
        found = await patient_episode(session, chat_id)
        if found is None:
            outbox.say(unknown_chat_text(ctx, language_code))
        else:
            patient, episode = found
            language = episode.language
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            await route(
                Turn(
                    session=session,
                    ctx=ctx,
                    outbox=outbox,
                    protocol=protocol,
                    patient=patient,
                    episode=episode,
                    now=now,
                )
            )
    await finish(ctx, outbox, language)


async def handle_start(
    ctx: ServiceContext,
    *,
    chat_id: int,
    token: str | None,
    update_id: int | None,
    language_code: str | None,
) -> None:
    """``/start <token>``: link the chat and ask for consent, or explain why not."""
    outbox = Outbox(chat_id)
    now = ctx.clock.now()
    language = guess_language(ctx, language_code)
    link = False
    async with ctx.sessions.begin() as session:
        if await already_processed(session, update_id, now):
            return
        found = await patient_episode(session, chat_id)
        if found is not None:
            language = found[1].language
        if token and found is not None and found[1].status in LIVE_STATUSES:
            own = await session.scalar(
                select(EnrolmentToken.id).where(
                    EnrolmentToken.token_hash == hash_token(token),
                    EnrolmentToken.episode_id == found[1].id,
                )
            )
            if own is not None and found[1].status != EpisodeStatus.INVITED:
                token = None  # the patient opened their own link again
        if token:
            link = True
        elif found is None or found[1].status == EpisodeStatus.INVITED:
            outbox.say(unknown_chat_text(ctx, language_code))
        else:
            patient, episode = found
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            await greet_known(
                Turn(
                    session=session,
                    ctx=ctx,
                    outbox=outbox,
                    protocol=protocol,
                    patient=patient,
                    episode=episode,
                    now=now,
                )
            )
    if link:
        assert token is not None
        await enrol_chat(ctx, outbox, token=token, language=language)
    await flush(ctx, outbox)


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

    await _handle_update(
        ctx, chat_id=chat_id, update_id=update_id, language_code=language_code, route=route
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

    await _handle_update(
        ctx, chat_id=chat_id, update_id=update_id, language_code=language_code, route=route
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
    outbox = Outbox(chat_id)
    now = ctx.clock.now()
    press = decode(data)
    toast: str | None = None
    async with ctx.sessions.begin() as session:
        if await already_processed(session, update_id, now):
            return Reply()
        found = await patient_episode(session, chat_id)
        if found is None:
            return Reply(
                toast=t(guess_language(ctx, language_code), "This button is no longer active.")
            )
        patient, episode = found
        if press is None or episode.status in (EpisodeStatus.REFUSED, *FOLLOW_UP_OVER):
            return Reply(toast=t(episode.language, "This question is closed. Thank you!"))
        protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
        turn = Turn(
            session=session,
            ctx=ctx,
            outbox=outbox,
            protocol=protocol,
            patient=patient,
            episode=episode,
            now=now,
        )
        toast = await route_button(turn, press=press, message_id=message_id)
    await store_photos(ctx, outbox)
    await flush(ctx, outbox)
    return Reply(toast=toast)


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
    silently ignored. Only the kind and Telegram's file id are kept (never a location's
    coordinates or a shared contact's phone number); photos also get a local copy."""

    async def route(turn: Turn) -> None:
        await route_media(
            turn,
            kind=kind,
            message_id=message_id,
            file_id=file_id,
            file_size=file_size,
            caption=caption,
        )

    await _handle_update(
        ctx, chat_id=chat_id, update_id=update_id, language_code=language_code, route=route
    )
