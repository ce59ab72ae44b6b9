"""Sending what a turn queued, once its transaction has committed.

Patient messages go first (the safety advice must never wait for staff), then alerts and notices
to staff. Temporary failures of a patient message are retried a few times; photos are copied
into MEDIA_DIR before anything is sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from bot.db.models import Answer
from bot.i18n import t
from bot.services import alerts
from bot.services.context import ServiceContext
from bot.services.conversation.blocking import mark_blocked
from bot.services.conversation.turn import Outbox
from bot.services.ports import (
    DeliveryError,
    OutgoingMessage,
    RecipientBlocked,
    SentRef,
    TemporaryFailure,
)

log = structlog.get_logger(__name__)


async def notify_staff(ctx: ServiceContext, text: str) -> None:
    """A short notice in the staff chat (refusal, /stop, /delete): best effort, logged."""
    if ctx.unit.staff_chat_id is None:
        return
    try:
        await ctx.messenger.send(ctx.unit.staff_chat_id, OutgoingMessage(text=text))
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


async def deliver(ctx: ServiceContext, outbox: Outbox) -> None:
    """The update's transaction has committed: run what needed it, then send what was queued."""
    for step in outbox.after_commit:
        await step()
    await flush(ctx, outbox)


async def flush(ctx: ServiceContext, outbox: Outbox) -> None:
    """Send queued patient messages, then alerts and notices to staff (never the other way
    round: safety advice first)."""
    for message_id, message in outbox.edits:
        try:
            await ctx.messenger.edit(SentRef(outbox.chat_id, message_id), message)
        except DeliveryError as exc:
            log.warning("patient_edit_failed", error=type(exc).__name__)
    for message in outbox.messages:
        try:
            await _send_with_retries(ctx, outbox.chat_id, message)
        except RecipientBlocked:
            await mark_blocked(ctx, chat_id=outbox.chat_id)
            break
        except DeliveryError as exc:
            # Keep going: the next message may be the safety advice. Staff alerts are stored
            # and retried on their own, so a patient message lost here never hides a finding.
            log.warning("patient_message_failed", error=type(exc).__name__)
    if outbox.alerts:
        await alerts.deliver_pending(ctx)
    # The card first, then the voice note it asks staff to listen to.
    if outbox.forward_message_id is not None and ctx.unit.staff_chat_id is not None:
        try:
            await ctx.messenger.forward(
                ctx.unit.staff_chat_id, outbox.chat_id, outbox.forward_message_id
            )
        except DeliveryError as exc:
            log.warning("forward_failed", error=type(exc).__name__)
    for notice in outbox.staff_notices:
        await notify_staff(ctx, notice)


#: Waits before retrying a patient message that hit a temporary failure (429, 5xx, network).
PATIENT_RETRY_DELAYS = (1.0, 2.0, 5.0)


#: A 429 asking to wait longer than this is not waited for in the handler.
PATIENT_RETRY_MAX_WAIT = 30.0


async def _send_with_retries(ctx: ServiceContext, chat_id: int, message: OutgoingMessage) -> None:
    """Send a reply, retrying temporary failures a few times (honouring Telegram's retry_after)."""
    for delay in (*PATIENT_RETRY_DELAYS, None):
        try:
            await ctx.messenger.send(chat_id, message)
            return
        except TemporaryFailure as exc:
            wait = max(delay or 0.0, exc.retry_after or 0.0)
            if delay is None or wait > PATIENT_RETRY_MAX_WAIT:
                raise
            await asyncio.sleep(wait)


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
