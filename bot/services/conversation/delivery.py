"""Sending what a turn queued, once its transaction has committed.

The text messages a turn owes the patient are written as ``owed_messages`` rows **in the
update's own transaction** (:func:`owe_queued`), then sent after the commit
(:mod:`bot.services.owed`): a crash in between loses nothing, the next tick (or the redelivered
update) sends them. Patient messages go first (the safety advice must never wait for staff),
then alerts and notices to staff. Temporary failures are retried by the owed-message rows, the
one retry layer; photos are copied into MEDIA_DIR before anything is sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Answer
from bot.db.queries.owed import insert_owed
from bot.i18n import t
from bot.services import alerts, chat_health, claims, owed
from bot.services.context import ServiceContext
from bot.services.conversation.blocking import mark_blocked
from bot.services.conversation.turn import Outbox
from bot.services.ports import (
    DeliveryError,
    OutgoingMessage,
    RecipientBlocked,
    SentRef,
)

log = structlog.get_logger(__name__)


async def notify_staff(ctx: ServiceContext, text: str) -> None:
    """A short notice in the staff chat (on-call while the bot has lost it) about a refusal,
    a /stop, a /delete: best effort, logged."""
    if ctx.unit.staff_chat_id is None:
        return
    try:
        await chat_health.post(ctx, OutgoingMessage(text=text))
    except DeliveryError as exc:
        log.warning("staff_notice_failed", error=type(exc).__name__)


async def apologise(ctx: ServiceContext, *, chat_id: int, language: str) -> None:
    """After an unexpected error: the patient is told, never left without an answer."""
    outbox = Outbox(chat_id)
    outbox.say(
        t(
            language,
            "Sorry, something went wrong on my side. Please try again in a moment. If you are worried, call the unit on {phone}.",
            phone=ctx.unit.unit_phone,
        )
    )
    await flush(ctx, outbox)


def _owable(message: OutgoingMessage) -> bool:
    """Text with buttons is kept until sent; a file (a /mydata export) is sent directly."""
    return message.photo is None and message.document is None


async def owe_queued(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    *,
    episode_id: int | None,
) -> None:
    """Write the text messages queued so far as owed rows, in the caller's transaction."""
    queued = [m for m in outbox.messages if _owable(m)]
    if not queued:
        return
    urgent = any(alert.severity in ("urgent", "emergency") for alert in outbox.alerts)
    now = ctx.clock.now()
    rows = [
        owed.owed_row(
            chat_id=outbox.chat_id,
            message=message,
            episode_id=episode_id,
            now=now,
            claimed_by=ctx.process_id,
            claimed_at=claims.claim_time(ctx.clock),
            urgent=urgent,
        )
        for message in queued
    ]
    await insert_owed(session, rows)
    outbox.owed_ids.extend(row.id for row in rows)
    outbox.owed_rows.extend(rows)
    outbox.messages = [m for m in outbox.messages if not _owable(m)]


async def deliver(ctx: ServiceContext, outbox: Outbox) -> None:
    """The update's transaction has committed: run what needed it, then send what was queued."""
    try:
        for step in outbox.after_commit:
            await step()
        if any(_owable(m) for m in outbox.messages):  # queued after the commit (a linked chat)
            async with ctx.sessions.begin() as session:
                await owe_queued(session, ctx, outbox, episode_id=None)
        await flush(ctx, outbox)
    finally:
        if outbox.cards:  # a failure before they went: the next tick posts them, not in 2 min
            await alerts.release_cards(ctx, [job.alert_id for job in outbox.cards])


def _on_blocked(ctx: ServiceContext) -> owed.OnBlocked:
    """What a send does when the patient blocked the bot: stop sending, tell staff."""

    async def blocked(chat: int) -> None:
        await mark_blocked(ctx, chat_id=chat)

    return blocked


async def send_still_owed(ctx: ServiceContext, *, chat_id: int | None = None) -> int:
    """Send what is still owed to ``chat_id`` (a redelivered update handled before) or to
    every chat (the dispatcher's tick): safety advice first, in order per chat."""
    return await owed.send_owed(ctx, on_blocked=_on_blocked(ctx), chat_id=chat_id)


async def flush(ctx: ServiceContext, outbox: Outbox) -> None:
    """Send queued patient messages, then alerts and notices to staff (never the other way
    round: safety advice first)."""
    for message_id, message in outbox.edits:
        try:
            await ctx.messenger.edit(SentRef(outbox.chat_id, message_id), message)
        except DeliveryError as exc:
            log.warning("patient_edit_failed", error=type(exc).__name__)
    await owed.send_claimed(
        ctx,
        outbox.owed_ids,
        on_blocked=_on_blocked(ctx),
        rows=outbox.owed_rows,
        unsent_before=outbox.unsent_before,
    )
    for message in outbox.messages:
        try:
            await ctx.messenger.send(outbox.chat_id, message)
        except RecipientBlocked:
            await mark_blocked(ctx, chat_id=outbox.chat_id)
            break
        except DeliveryError as exc:
            log.warning("patient_message_failed", error=type(exc).__name__)
    cards, outbox.cards = outbox.cards, []
    await alerts.deliver_cards(ctx, cards)
    # The card first, then the photo (a reply to it) or the voice note it asks staff to hear.
    await owed.send_claimed(ctx, outbox.staff_owed_ids, on_blocked=_on_blocked(ctx))
    if outbox.forward_message_id is not None and ctx.unit.staff_chat_id is not None:
        try:
            await chat_health.forward(
                ctx, from_chat_id=outbox.chat_id, message_id=outbox.forward_message_id
            )
        except DeliveryError as exc:
            log.warning("forward_failed", error=type(exc).__name__)
    for notice in outbox.staff_notices:
        await notify_staff(ctx, notice)


async def keep_photo(
    ctx: ServiceContext, *, answer: Answer, file_id: str, file_size: int | None
) -> None:
    """Keep a local copy of a photo (within MEDIA_MAX_BYTES); the file id is always kept."""
    answer_id, episode_id = answer.id, answer.episode_id
    limit = ctx.unit.media_max_bytes
    if file_size is not None and file_size > limit:
        log.info("photo_not_copied", answer_id=answer_id, reason="too_big")
        return
    try:
        data = await ctx.messenger.download(file_id)
    except DeliveryError as exc:
        log.warning("photo_download_failed", answer_id=answer_id, error=type(exc).__name__)
        return
    if len(data) > limit:
        log.info("photo_not_copied", answer_id=answer_id, reason="too_big")
        return
    path = Path(ctx.unit.media_dir) / f"episode-{episode_id}" / f"answer-{answer_id}.{_ext(data)}"
    await asyncio.to_thread(_write_file, path, data)
    async with ctx.sessions.begin() as session:
        row = await session.get(Answer, answer_id)
        if row is not None:
            row.file_path = str(path)


def _ext(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    return "jpg"


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".part")
    temporary.write_bytes(data)
    temporary.replace(path)
