"""On a rehearsal clock (CLOCK_SPEED: an AcceleratedClock), what protects against a dead process
and what a server asks for stay in real time: a claim is not taken from a live process after
simulated hours, a retry waits real seconds; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import AcceleratedClock, ManualClock
from bot.services import claims, owed
from bot.services.ports import OutgoingMessage
from tests.harness import BotHarness, owe

CHAT = 7101
SPEED = 3600


def rehearsal_clock(harness: BotHarness) -> ManualClock:
    """Put the bot on a clock 3,600 times faster than ``wall``, which the test moves."""
    wall = ManualClock(harness.clock.now())
    harness.ctx.clock = AcceleratedClock(harness.clock.now(), SPEED, base=wall)
    return wall


async def _never_blocked(_chat: int) -> None:
    raise AssertionError("nobody blocked the bot")


async def test_a_live_claim_is_not_taken_over_after_simulated_hours(harness: BotHarness) -> None:
    harness.server.add_user(CHAT)
    wall = rehearsal_clock(harness)
    ctx = harness.ctx
    async with ctx.sessions.begin() as session:
        owe(
            session,
            chat_id=CHAT,
            message=OutgoingMessage(text="owed"),
            episode_id=None,
            now=ctx.clock.now(),
            claimed_by="elsewhere:1:1",
            claimed_at=claims.claim_time(ctx.clock),
        )
    wall.advance(timedelta(seconds=10))  # ten simulated hours, ten real seconds
    assert await owed.send_owed(ctx, on_blocked=_never_blocked) == 0
    wall.advance(owed.STALE_CLAIM)
    assert await owed.send_owed(ctx, on_blocked=_never_blocked) == 1
    assert [m.text for m in harness.server.sent(CHAT)] == ["owed"]


async def test_a_retry_waits_real_seconds_on_a_fast_clock(harness: BotHarness) -> None:
    harness.server.add_user(CHAT)
    wall = rehearsal_clock(harness)
    ctx = harness.ctx
    async with ctx.sessions.begin() as session:
        row = owe(
            session,
            chat_id=CHAT,
            message=OutgoingMessage(text="retried"),
            episode_id=None,
            now=ctx.clock.now(),
            claimed_by="nobody",
            claimed_at=claims.claim_time(ctx.clock),
        )
        await session.flush()
        row.claimed_by, row.claimed_at = None, None
    harness.server.inject_fault("500", chat_id=CHAT, count=1)
    assert await owed.send_owed(ctx, on_blocked=_never_blocked) == 0
    wall.advance(owed.RETRY_BASE / 2)  # an hour simulated: still within the real backoff
    assert await owed.send_owed(ctx, on_blocked=_never_blocked) == 0
    wall.advance(owed.RETRY_BASE)
    assert await owed.send_owed(ctx, on_blocked=_never_blocked) == 1
