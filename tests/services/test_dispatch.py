"""The dispatcher's claims, on both databases: concurrent ticks never send a check-in twice,
claims of dead processes come back at once (other hosts' after STALE_CLAIM), retries wait for
``retry_at`` without the waker spinning, and rows nobody may be asked are cancelled, not missed."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import select, update

from bot.db.models import Alert, CheckIn, Episode
from bot.services import claims, dispatch
from tests.harness import BotHarness, eventually
from tests.services.population import populate


def _add_users(harness: BotHarness, chats: list[int]) -> None:
    for chat_id in chats:
        harness.server.add_user(chat_id, first_name="P", language_code="fr")


def _questions(harness: BotHarness, chat_id: int) -> list[str]:
    return [
        m.text or "" for m in harness.server.sent(chat_id) if "point de suivi" in (m.text or "")
    ]


async def test_concurrent_ticks_send_each_checkin_exactly_once(harness: BotHarness) -> None:
    chats = await populate(harness.ctx.sessions, count=100, due_at=harness.clock.now())
    _add_users(harness, chats)

    reports = await asyncio.gather(*(dispatch.tick(harness.ctx) for _ in range(4)))

    assert sum(report.sent for report in reports) == 100
    assert [len(_questions(harness, chat_id)) for chat_id in chats] == [1] * 100
    async with harness.ctx.sessions() as session:
        rows = list(await session.scalars(select(CheckIn)))
    assert {(row.status, row.sent_at is not None, row.attempts) for row in rows} == {
        ("awaiting", True, 1)
    }


def _dead_pid() -> int:
    """The pid of a process that has just exited (and was reaped)."""
    finished = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert finished.returncode == 0
    probe = subprocess.Popen([sys.executable, "-c", "pass"])
    probe.wait()
    return probe.pid


async def test_claims_of_a_dead_local_process_are_released_at_once(harness: BotHarness) -> None:
    now = harness.clock.now()
    chats = await populate(harness.ctx.sessions, count=3, due_at=now)
    _add_users(harness, chats)
    dead_here = f"{socket.gethostname()}:{_dead_pid()}:1"
    elsewhere = "another-host:4242:1"
    async with harness.ctx.sessions.begin() as session:
        first, second, third = list(await session.scalars(select(CheckIn).order_by(CheckIn.id)))
        first.status, first.claimed_by, first.claimed_at = "sending", dead_here, now
        # Opened but not confirmed: the dead process may or may not have sent it.
        second.status, second.claimed_by, second.claimed_at = "awaiting", dead_here, now
        third.status, third.claimed_by, third.claimed_at = "sending", elsewhere, now

    report = await harness.tick()
    assert (report.released, report.sent) == (2, 2)
    assert [len(_questions(harness, chat_id)) for chat_id in chats] == [1, 1, 0]

    # Another host's process cannot be checked from here: its claim waits for STALE_CLAIM.
    harness.clock.advance(dispatch.STALE_CLAIM - timedelta(seconds=1))
    assert (await harness.tick()).sent == 0
    harness.clock.advance(timedelta(seconds=2))
    report = await harness.tick()
    assert (report.released, report.sent) == (1, 1)
    assert [len(_questions(harness, chat_id)) for chat_id in chats] == [1, 1, 1]


def test_holder_identity_tells_live_dead_and_foreign_processes() -> None:
    host = socket.gethostname()
    assert not claims.holder_is_dead(claims.process_identity())
    # Same pid, other start time: the pid was reused (a restarted container's pid 1).
    assert claims.holder_is_dead(f"{host}:{os.getpid()}:1")
    assert claims.holder_is_dead(f"{host}:{_dead_pid()}:1")
    assert not claims.holder_is_dead(f"not-{host}:1:1")
    assert not claims.holder_is_dead("main")
    assert not claims.holder_is_dead(f"{host}:pid:start")


async def test_a_retry_waits_for_retry_at_and_the_waker_does_not_spin(
    harness: BotHarness,
) -> None:
    now = harness.clock.now()
    (chat,) = await populate(harness.ctx.sessions, count=1, due_at=now - timedelta(minutes=5))
    _add_users(harness, [chat])
    retry_at = now + timedelta(seconds=40)
    async with harness.ctx.sessions.begin() as session:
        await session.execute(update(CheckIn).values(retry_at=retry_at))

    assert await dispatch.next_wakeup(harness.ctx) == retry_at
    assert (await harness.tick()).sent == 0
    assert (await harness.advance_to(retry_at)).sent == 1
    assert len(_questions(harness, chat)) == 1


async def test_two_checkins_of_one_episode_due_together_send_only_the_latest(
    harness: BotHarness,
) -> None:
    now = harness.clock.now()
    (chat,) = await populate(harness.ctx.sessions, count=1, due_at=now - timedelta(hours=1))
    _add_users(harness, [chat])
    async with harness.ctx.sessions.begin() as session:
        earlier = await session.scalar(select(CheckIn))
        assert earlier is not None
        session.add(
            CheckIn(
                episode_id=earlier.episode_id,
                def_id="d2",
                due_at=now,
                window_ends_at=now + timedelta(hours=10),
                status="scheduled",
                attempts=0,
                question_index=0,
                reask_count=0,
                selection=[],
                reminders_sent=0,
                opening_sent=0,
            )
        )

    assert (await harness.tick()).sent == 1
    assert len(_questions(harness, chat)) == 1
    async with harness.ctx.sessions() as session:
        states = [
            (row.def_id, row.status, row.status_reason)
            for row in await session.scalars(select(CheckIn).order_by(CheckIn.due_at))
        ]
    assert states == [("d1", "cancelled", "superseded"), ("d2", "awaiting", None)]


async def test_rows_of_paused_or_blocked_follow_ups_expire_cancelled_without_alert(
    harness: BotHarness,
) -> None:
    now = harness.clock.now()
    chats = await populate(harness.ctx.sessions, count=2, due_at=now, window=timedelta(hours=1))
    _add_users(harness, chats)
    async with harness.ctx.sessions.begin() as session:
        paused, blocked = list(await session.scalars(select(Episode).order_by(Episode.id)))
        paused.status = "paused"
        blocked.blocked_at = now

    await harness.advance_to(now + timedelta(hours=2))

    async with harness.ctx.sessions() as session:
        states = [
            (row.status, row.status_reason)
            for row in await session.scalars(select(CheckIn).order_by(CheckIn.id))
        ]
        alerts = list(await session.scalars(select(Alert)))
    assert states == [("cancelled", "episode_paused"), ("cancelled", "blocked")]
    assert alerts == []
    assert all(harness.server.sent(chat_id) == [] for chat_id in chats)


async def test_a_stale_claim_of_this_very_process_is_left_alone(harness: BotHarness) -> None:
    """A live process's own fresh claim is never taken from it (it is mid-send)."""
    now = harness.clock.now()
    (chat,) = await populate(harness.ctx.sessions, count=1, due_at=now)
    _add_users(harness, [chat])
    async with harness.ctx.sessions.begin() as session:
        await session.execute(
            update(CheckIn).values(
                status="sending", claimed_by=harness.ctx.process_id, claimed_at=now
            )
        )
    assert (await harness.tick()).released == 0

    async def untouched() -> None:
        async with harness.ctx.sessions() as session:
            assert await session.scalar(select(CheckIn.status)) == "sending"

    await eventually(untouched)
    assert harness.server.sent(chat) == []
