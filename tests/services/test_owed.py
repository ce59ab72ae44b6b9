"""Messages owed to patients: sent in order per chat, retried on a temporary failure, taken over
from a dead process, dropped when the bot is blocked; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.db.models import OwedMessage
from bot.services import owed
from bot.services.ports import OutgoingMessage
from tests.harness import BotHarness, owe

CHAT_A, CHAT_B = 7001, 7002


async def _owe(
    harness: BotHarness, chat: int, texts: list[str], *, holder: str | None
) -> list[int]:
    now = harness.clock.now()
    async with harness.ctx.sessions.begin() as session:
        rows = [
            owe(
                session,
                chat_id=chat,
                message=OutgoingMessage(text=text),
                episode_id=None,
                now=now,
                claimed_by=holder or "nobody",
                claimed_at=now,
            )
            for text in texts
        ]
        await session.flush()
        if holder is None:
            for row in rows:
                row.claimed_by, row.claimed_at = None, None
        return [row.id for row in rows]


def _texts(harness: BotHarness, chat: int) -> list[str]:
    return [m.text or "" for m in harness.server.sent(chat)]


async def _never_blocked(_chat: int) -> None:
    raise AssertionError("nobody blocked the bot")


async def test_owed_messages_go_out_in_order_per_chat_and_once(harness: BotHarness) -> None:
    for chat in (CHAT_A, CHAT_B):
        harness.server.add_user(chat)
    await _owe(harness, CHAT_A, ["a1", "a2", "a3"], holder=None)
    await _owe(harness, CHAT_B, ["b1"], holder=None)
    assert await owed.send_owed(harness.ctx, on_blocked=_never_blocked) == 4
    assert _texts(harness, CHAT_A) == ["a1", "a2", "a3"]
    assert _texts(harness, CHAT_B) == ["b1"]
    assert await owed.send_owed(harness.ctx, on_blocked=_never_blocked) == 0


async def test_a_temporary_failure_holds_the_chat_back_and_is_retried(harness: BotHarness) -> None:
    harness.server.add_user(CHAT_A)
    await _owe(harness, CHAT_A, ["first", "second"], holder=None)
    harness.server.inject_fault("500", chat_id=CHAT_A, count=1)
    assert await owed.send_owed(harness.ctx, on_blocked=_never_blocked) == 0
    assert _texts(harness, CHAT_A) == []  # "second" never overtakes "first"
    assert await owed.send_owed(harness.ctx, on_blocked=_never_blocked) == 0  # backoff
    harness.clock.set(harness.clock.now() + timedelta(seconds=3))
    assert await owed.send_owed(harness.ctx, on_blocked=_never_blocked) == 2
    assert _texts(harness, CHAT_A) == ["first", "second"]


async def test_a_live_claim_is_left_alone_and_a_stale_or_dead_one_is_taken_over(
    harness: BotHarness,
) -> None:
    harness.server.add_user(CHAT_A)
    await _owe(harness, CHAT_A, ["owed"], holder="elsewhere:1:1")
    assert await owed.send_owed(harness.ctx, on_blocked=_never_blocked) == 0
    assert (
        await owed.send_owed(
            harness.ctx, on_blocked=_never_blocked, holder_is_dead=lambda h: h == "elsewhere:1:1"
        )
        == 1
    )
    await _owe(harness, CHAT_A, ["stale"], holder="elsewhere:2:2")
    harness.clock.set(harness.clock.now() + owed.STALE_CLAIM + timedelta(seconds=1))
    assert await owed.send_owed(harness.ctx, on_blocked=_never_blocked) == 1
    assert _texts(harness, CHAT_A) == ["owed", "stale"]


async def test_a_blocked_bot_drops_what_is_owed_and_says_so(harness: BotHarness) -> None:
    harness.server.add_user(CHAT_A)
    harness.server.block_bot(CHAT_A)
    await _owe(harness, CHAT_A, ["x", "y"], holder=None)
    blocked: list[int] = []

    async def on_blocked(chat: int) -> None:
        blocked.append(chat)

    assert await owed.send_owed(harness.ctx, on_blocked=on_blocked) == 0
    assert blocked == [CHAT_A]
    async with harness.ctx.sessions() as session:
        reasons = set(await session.scalars(select(OwedMessage.drop_reason)))
    assert reasons == {"blocked"}


async def test_advice_goes_first_across_chats_but_never_overtakes_its_own_chat(
    harness: BotHarness,
) -> None:
    for chat in (CHAT_A, CHAT_B):
        harness.server.add_user(chat)
    await _owe(harness, CHAT_B, ["b ordinary"], holder=None)
    await _owe(harness, CHAT_A, ["a noted"], holder=None)
    async with harness.ctx.sessions.begin() as session:
        advice = owe(
            session,
            chat_id=CHAT_A,
            message=OutgoingMessage(text="a advice"),
            episode_id=None,
            now=harness.clock.now(),
            claimed_by="nobody",
            claimed_at=harness.clock.now(),
            urgent=True,
        )
        await session.flush()
        advice.claimed_by, advice.claimed_at = None, None
    assert await owed.send_owed(harness.ctx, on_blocked=_never_blocked) == 3
    order = [m.text for m in harness.server.sent() if m.chat_id in (CHAT_A, CHAT_B)]
    assert order == ["a noted", "a advice", "b ordinary"]
