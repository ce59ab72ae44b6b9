"""Messages the bot owes a patient, kept in the database until Telegram has them.

A reply used to be sent after the commit of the answer that caused it, from memory: a process
killed between the two (SIGKILL, out of memory) left the answer saved and the patient without
the next question or, worse, without the safety advice (63 of 100 patients in a kill test).
Now each message is an :class:`~bot.db.models.OwedMessage` row written **in the same
transaction** as the answer, claimed by the process that wrote it; after the commit that
process sends them at once (:func:`send_claimed`). Whatever is still owed (a crash, a temporary
failure, a redelivered update whose first handling died before sending) is sent by
:func:`send_owed`, which the dispatcher runs at every tick and the intake runs when an update
turns out to be already handled.

Rules:

- one chat's messages go out in ``id`` order; a message waits while an earlier one of the same
  chat is unsent, so "Noted" never arrives after the next question;
- urgent rows (safety advice) are taken first across chats, never within a chat out of order;
- a temporary failure (429, 5xx, network) reschedules the chat's next message with backoff,
  honouring Telegram's ``retry_after``: this is the one retry layer for patient messages;
- a blocked bot drops what is owed to that chat (and the caller's ``on_blocked`` alerts staff);
  a message Telegram rejects for good is dropped after :data:`MAX_ATTEMPTS`, and logged;
- a crash after Telegram took a message and before ``sent_at`` was written sends it again:
  at least once, never lost.

Staff are owed messages too (a patient's photo, re-sent by its file id): such a row is marked
``to_staff``, so a lost or refused staff chat only delays it (the alert delivery's rule), and it
may wait for the staff card it answers (``reply_to_alert``) for up to :data:`CARD_WAIT`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import structlog
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Alert, OwedMessage
from bot.metrics import MESSAGES_FAILED
from bot.services import claims
from bot.services.context import ServiceContext
from bot.services.ports import (
    Button,
    ChatLost,
    ChatNotFound,
    DeliveryError,
    OutgoingMessage,
    RecipientBlocked,
    SentRef,
    TemporaryFailure,
)
from bot.services.sent_log import SentLog

log = structlog.get_logger(__name__)

#: A claim older than this (real time, see :mod:`bot.services.claims`) belongs to a process
#: that died or hung: anyone may take it over.
STALE_CLAIM = timedelta(seconds=30)
#: Tries of a message Telegram keeps refusing (not a temporary failure) before it is dropped.
MAX_ATTEMPTS = 5
#: Backoff of a failed send, in real time (the server's pace, whatever the service clock does).
RETRY_BASE = timedelta(seconds=2)
RETRY_MAX = timedelta(minutes=5)
#: How long a message that replies to a staff card waits for that card before going without.
CARD_WAIT = timedelta(minutes=10)
#: How often it looks again for the card meanwhile.
CARD_POLL = timedelta(seconds=5)

OnBlocked = Callable[[int], Awaitable[None]]


def encode(message: OutgoingMessage) -> dict[str, object]:
    """The JSON payload of a text message with buttons, or of a photo Telegram already has (by
    its file id); uploads (bytes) are never owed: see callers."""
    payload: dict[str, object] = {
        "text": message.text,
        "buttons": [[[b.label, b.data] for b in row] for row in message.buttons],
    }
    if message.photo_id is not None:
        payload["photo_id"] = message.photo_id
    if message.question_id is not None:
        payload["question"] = message.question_id
    return payload


def decode(payload: dict[str, object]) -> OutgoingMessage:
    """The message a payload describes."""
    rows = payload.get("buttons") or []
    assert isinstance(rows, list)
    photo_id = payload.get("photo_id")
    question = payload.get("question")
    return OutgoingMessage(
        text=str(payload["text"]),
        buttons=tuple(tuple(Button(str(label), str(data)) for label, data in row) for row in rows),
        photo_id=str(photo_id) if photo_id is not None else None,
        question_id=str(question) if question is not None else None,
    )


def owed_row(
    *,
    chat_id: int,
    message: OutgoingMessage,
    episode_id: int | None,
    now: datetime,
    claimed_by: str,
    claimed_at: datetime,
    urgent: bool = False,
    to_staff: bool = False,
    reply_to_alert: int | None = None,
) -> OwedMessage:
    """The row of a message owed to ``chat_id``, claimed by the writer (it sends it after the
    commit), for the caller to write in its transaction.

    ``to_staff``: a staff chat, where failures only delay; ``reply_to_alert``: sent as a reply
    to that alert's card once the card is posted.
    """
    payload = encode(message)
    if to_staff:
        payload["to_staff"] = True
    if reply_to_alert is not None:
        payload["reply_to_alert"] = reply_to_alert
    return OwedMessage(
        chat_id=chat_id,
        episode_id=episode_id,
        payload=payload,
        urgent=urgent,
        created_at=now,
        claimed_by=claimed_by,
        claimed_at=claimed_at,
        attempts=0,
    )


async def send_claimed(
    ctx: ServiceContext,
    ids: Sequence[int],
    *,
    on_blocked: OnBlocked,
    rows: Sequence[OwedMessage] = (),
    unsent_before: int | None = None,
) -> None:
    """After the commit: send the rows this process just wrote, in order (the fast path).

    ``unsent_before``: the chat's unsent messages when the update began. When every one of
    them is a send of this process not yet written (:mod:`.sent_log`), nothing earlier waits:
    ``rows`` go at once, without reading them again."""
    if not ids:
        return
    chats = {row.chat_id for row in rows}
    if (
        unsent_before is not None
        and len(rows) == len(ids)
        and len(chats) == 1
        and unsent_before == ctx.sent_log.pending_for(next(iter(chats)))
    ):
        await _send_in_order(ctx, rows, on_blocked=on_blocked)
        return
    await _send_ready(ctx, set(ids), on_blocked=on_blocked)


async def send_owed(
    ctx: ServiceContext,
    *,
    on_blocked: OnBlocked,
    chat_id: int | None = None,
    limit: int = 200,
    holder_is_dead: Callable[[str], bool] = claims.holder_is_dead,
) -> int:
    """Send what is still owed (to ``chat_id``, or to everyone); the number sent.

    A row is taken when nobody holds it, its claim is stale, or its holder is known dead.
    """
    now = ctx.clock.now()
    claimed_at = claims.claim_time(ctx.clock)
    async with ctx.sessions.begin() as session:
        unsent = and_(OwedMessage.sent_at.is_(None), OwedMessage.dropped_at.is_(None))
        query = select(
            OwedMessage.id, OwedMessage.chat_id, OwedMessage.claimed_by, OwedMessage.claimed_at
        ).where(unsent)
        if chat_id is not None:
            query = query.where(OwedMessage.chat_id == chat_id)
        candidates = list(
            await session.execute(
                query.order_by(OwedMessage.urgent.desc(), OwedMessage.id).limit(limit)
            )
        )
        dead = {h for _id, _chat, h, _at in candidates if h is not None and holder_is_dead(h)}
        takeable = or_(
            OwedMessage.claimed_by.is_(None),
            OwedMessage.claimed_at < claims.stale_before(ctx.clock, STALE_CLAIM),
            OwedMessage.claimed_by.in_(dead),
        )
        free = [row_id for row_id, *_rest in candidates if not ctx.sent_log.is_sent(row_id)]
        if not free:
            return 0
        claimed = list(
            await session.scalars(
                update(OwedMessage)
                .where(
                    OwedMessage.id.in_(free),
                    unsent,
                    # Checked again in the UPDATE: a concurrent claim makes the row not ours.
                    takeable,
                    or_(OwedMessage.next_attempt_at.is_(None), OwedMessage.next_attempt_at <= now),
                )
                .values(claimed_by=ctx.process_id, claimed_at=claimed_at)
                .returning(OwedMessage.id)
                .execution_options(synchronize_session=False)
            )
        )
    return await _send_ready(ctx, set(claimed), on_blocked=on_blocked) if claimed else 0


async def _send_ready(ctx: ServiceContext, mine: set[int], *, on_blocked: OnBlocked) -> int:
    """Send the rows we hold that may go now; give back the others."""
    async with ctx.sessions() as session:
        rows = {
            row.id: row
            for row in await session.scalars(select(OwedMessage).where(OwedMessage.id.in_(mine)))
        }
        unsent_by_chat = await _unsent_per_chat(
            session, {row.chat_id for row in rows.values()}, ctx.sent_log
        )
    # Per chat, only the run of our rows from its earliest unsent message: a message waits while
    # an earlier one of its chat is unsent and not ours (held elsewhere, or waiting to retry).
    ready = []
    for ids in unsent_by_chat.values():
        for row_id in ids:
            if row_id not in mine:
                break
            ready.append(rows[row_id])
    for row_id in mine - {row.id for row in ready}:
        await _release(ctx, row_id)
    return await _send_in_order(ctx, ready, on_blocked=on_blocked)


async def _unsent_per_chat(
    session: AsyncSession, chats: set[int], sent_log: SentLog
) -> dict[int, list[int]]:
    if not chats:
        return {}
    rows = await session.execute(
        select(OwedMessage.chat_id, OwedMessage.id)
        .where(
            OwedMessage.chat_id.in_(chats),
            OwedMessage.sent_at.is_(None),
            OwedMessage.dropped_at.is_(None),
        )
        .order_by(OwedMessage.id)
    )
    unsent: dict[int, list[int]] = {}
    for chat, row_id in rows:
        unsent.setdefault(chat, [])
        if not sent_log.is_sent(row_id):  # taken by Telegram, written soon: not waiting
            unsent[chat].append(row_id)
    return unsent


async def _send_in_order(
    ctx: ServiceContext, rows: Sequence[OwedMessage], *, on_blocked: OnBlocked
) -> int:
    """Send each chat's rows in order; a chat stops at its first failure (the rest wait)."""
    stopped: set[int] = set()
    sent = 0
    # Chats with safety advice first; inside a chat, strictly in id order (never reordered).
    urgent_chats = {row.chat_id for row in rows if row.urgent}
    for row in sorted(rows, key=lambda r: (r.chat_id not in urgent_chats, r.chat_id, r.id)):
        if row.chat_id in stopped:
            await _release(ctx, row.id)
            continue
        message = await _with_reply(ctx, row)
        if message is None:  # its card is not posted yet: the chat's next messages wait too
            stopped.add(row.chat_id)
            await _wait_for_card(ctx, row.id)
            continue
        to_staff = bool(row.payload.get("to_staff"))
        try:
            ref = await ctx.messenger.send(row.chat_id, message)
        except RecipientBlocked:
            stopped.add(row.chat_id)
            if to_staff:  # the bot is out of the staff group: keep it until it is back
                await _retry_later(ctx, row, retry_after=None, give_up=False)
                continue
            await _drop_chat(ctx, row.chat_id, reason="blocked")
            await on_blocked(row.chat_id)
            continue
        except TemporaryFailure as exc:
            stopped.add(row.chat_id)
            await _retry_later(ctx, row, retry_after=exc.retry_after, give_up=False)
            continue
        except DeliveryError as exc:
            stopped.add(row.chat_id)
            MESSAGES_FAILED.labels(reason=type(exc).__name__).inc()
            # A team chat the bot has lost is announced (chat_health): keep it until it is back.
            lost_chat = to_staff and isinstance(exc, ChatNotFound | ChatLost)
            await _retry_later(ctx, row, retry_after=None, give_up=not lost_chat)
            continue
        _mark_sent(ctx, row, ref)
        sent += 1
    return sent


async def _with_reply(ctx: ServiceContext, row: OwedMessage) -> OutgoingMessage | None:
    """The row's message, as a reply to its alert's card when it has one; None while that card
    is not posted yet (for :data:`CARD_WAIT` at most: then it goes on its own)."""
    message = decode(row.payload)
    alert_id = row.payload.get("reply_to_alert")
    if not isinstance(alert_id, int):
        return message
    async with ctx.sessions() as session:
        alert = await session.get(Alert, alert_id)
        card = (alert.staff_chat_id, alert.staff_message_id) if alert is not None else None
    if card is None:
        return message
    chat_id, message_id = card
    if message_id is None:
        # CARD_WAIT is real time (the card's delivery), also on a rehearsal clock.
        return None if row.created_at > ctx.clock.after_real(-CARD_WAIT) else message
    return replace(message, reply_to=message_id) if chat_id == row.chat_id else message


async def _wait_for_card(ctx: ServiceContext, row_id: int) -> None:
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(OwedMessage)
            .where(OwedMessage.id == row_id)
            .values(
                next_attempt_at=ctx.clock.after_real(CARD_POLL), claimed_by=None, claimed_at=None
            )
        )
    ctx.on_schedule_changed()


def _mark_sent(ctx: ServiceContext, row: OwedMessage, ref: SentRef) -> None:
    ctx.sent_log.note(
        ctx.sessions,
        row_id=row.id,
        chat_id=row.chat_id,
        message_id=ref.message_id,
        at=ctx.clock.now(),
    )


async def _release(ctx: ServiceContext, row_id: int) -> None:
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(OwedMessage)
            .where(OwedMessage.id == row_id)
            .values(claimed_by=None, claimed_at=None)
        )


async def _retry_later(
    ctx: ServiceContext, row: OwedMessage, *, retry_after: float | None, give_up: bool
) -> None:
    now = ctx.clock.now()
    attempts = row.attempts + 1
    async with ctx.sessions.begin() as session:
        if give_up and attempts >= MAX_ATTEMPTS:
            await session.execute(
                update(OwedMessage)
                .where(OwedMessage.id == row.id)
                .values(dropped_at=now, drop_reason="rejected", attempts=attempts, claimed_by=None)
            )
            log.error("owed_message_dropped", owed_id=row.id, attempts=attempts)
            return
        backoff = min(RETRY_BASE * (2 ** (attempts - 1)), RETRY_MAX)
        if retry_after is not None:
            backoff = max(backoff, timedelta(seconds=retry_after))
        await session.execute(
            update(OwedMessage)
            .where(OwedMessage.id == row.id)
            .values(
                attempts=attempts,
                next_attempt_at=ctx.clock.after_real(backoff),
                claimed_by=None,
                claimed_at=None,
            )
        )
    log.warning("owed_message_retry", owed_id=row.id, attempts=attempts)
    ctx.on_schedule_changed()  # the dispatcher wakes for the retry, not at its next safety tick


async def _drop_chat(ctx: ServiceContext, chat_id: int, *, reason: str) -> None:
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(OwedMessage)
            .where(
                OwedMessage.chat_id == chat_id,
                OwedMessage.sent_at.is_(None),
                OwedMessage.dropped_at.is_(None),
            )
            .values(dropped_at=ctx.clock.now(), drop_reason=reason, claimed_by=None)
        )


async def next_attempt(ctx: ServiceContext) -> datetime | None:
    """When the next owed message may be retried, for the dispatcher's wake-up."""
    async with ctx.sessions() as session:
        return await session.scalar(
            select(func.min(OwedMessage.next_attempt_at)).where(
                OwedMessage.sent_at.is_(None), OwedMessage.dropped_at.is_(None)
            )
        )
