"""The check-in queries on both databases: what each claim takes and leaves, what the lookups
find, and that concurrent PostgreSQL claims skip each other's rows instead of waiting."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import CheckIn
from bot.db.queries.checkins import (
    awaiting_by_episode,
    checkins_by_id,
    claim_due_checkins,
    claim_due_reminders,
    claim_expired_checkins,
    claim_holders,
    claimed_to_open,
    episodes_by_id,
    has_answers,
    missed_in_row,
    next_checkin_event,
    next_scheduled,
    oldest_unsent_due,
    open_checkins,
    release_claims,
    replannable_checkins,
    scheduled_checkins,
    with_episode,
    with_episode_and_patient,
)
from bot.domain.states import CheckInStatus
from tests.db.rows import NOW, answer, checkin, follow_up

Sessions = async_sessionmaker[AsyncSession]
MINUTE = timedelta(minutes=1)


async def _statuses(sessions: Sessions) -> dict[str, CheckInStatus]:
    async with sessions() as session:
        return {row.def_id: row.status for row in await session.scalars(select(CheckIn))}


async def test_claim_due_checkins_takes_due_rows_oldest_first_once(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        checkin(session, episode, "late", due_at=NOW - 2 * MINUTE)
        checkin(session, episode, "early", due_at=NOW - 9 * MINUTE)
        checkin(session, episode, "middle", due_at=NOW - 5 * MINUTE)
        checkin(session, episode, "future", due_at=NOW + MINUTE)
        checkin(session, episode, "expired", due_at=NOW - 20 * MINUTE, window=10 * MINUTE)
        checkin(session, episode, "retry_later", due_at=NOW - 30 * MINUTE, retry_at=NOW + MINUTE)
        checkin(session, episode, "retry_now", due_at=NOW - 3 * MINUTE, retry_at=NOW)
        checkin(session, episode, "open", due_at=NOW - 4 * MINUTE, status=CheckInStatus.AWAITING)

    async with sessions.begin() as session:
        first = await claim_due_checkins(session, now=NOW, limit=2, worker="w1")
    async with sessions.begin() as session:
        rest = await claim_due_checkins(session, now=NOW, limit=10, worker="w2")
    async with sessions.begin() as session:
        again = await claim_due_checkins(session, now=NOW, limit=10, worker="w3")

    async with sessions() as session:
        by_id = {row.id: row for row in await session.scalars(select(CheckIn))}
    assert [by_id[i].def_id for i in first] == ["early", "middle"]
    assert sorted(by_id[i].def_id for i in rest) == ["late", "retry_now"]
    assert again == []
    assert {
        (row.def_id, row.status, row.claimed_by, row.claimed_at, row.attempts)
        for row in by_id.values()
        if row.id in first + rest
    } == {
        ("early", CheckInStatus.SENDING, "w1", NOW, 1),
        ("middle", CheckInStatus.SENDING, "w1", NOW, 1),
        ("late", CheckInStatus.SENDING, "w2", NOW, 1),
        ("retry_now", CheckInStatus.SENDING, "w2", NOW, 1),
    }
    untouched = {"future", "expired", "retry_later", "open"}
    assert all(by_id[i].def_id not in untouched for i in first + rest)


async def test_concurrent_claims_skip_locked_rows_on_postgresql(
    backend: str, sessions: Sessions
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has a single writer: its claims are serialised, never concurrent")
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        for minutes in range(6):
            checkin(session, episode, f"c{minutes}", due_at=NOW - (10 - minutes) * MINUTE)

    async with sessions.begin() as holding:
        held = await claim_due_checkins(holding, now=NOW, limit=2, worker="w1")
        # The first transaction still holds its rows: the second neither waits nor takes them.
        async with sessions.begin() as other:
            taken = await asyncio.wait_for(
                claim_due_checkins(other, now=NOW, limit=10, worker="w2"), timeout=10
            )
    assert len(held) == 2
    assert len(taken) == 4
    assert not set(held) & set(taken)


async def test_claim_holders_and_release_claims_give_back_unconfirmed_rows(
    sessions: Sessions,
) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        sending = {"status": CheckInStatus.SENDING}
        checkin(
            session,
            episode,
            "old",
            due_at=NOW,
            claimed_by="a",
            claimed_at=NOW - 10 * MINUTE,
            **sending,
        )
        checkin(session, episode, "dead", due_at=NOW, claimed_by="b", claimed_at=NOW, **sending)
        checkin(session, episode, "alive", due_at=NOW, claimed_by="c", claimed_at=NOW, **sending)
        checkin(
            session,
            episode,
            "opened",
            due_at=NOW,
            status=CheckInStatus.AWAITING,
            claimed_by="b",
            claimed_at=NOW,
        )
        # Sent (or answered into): confirmed, never released.
        checkin(
            session,
            episode,
            "confirmed",
            due_at=NOW,
            status=CheckInStatus.AWAITING,
            claimed_by="d",
            claimed_at=NOW - 10 * MINUTE,
            sent_at=NOW,
        )
        checkin(
            session,
            episode,
            "answering",
            due_at=NOW,
            status=CheckInStatus.AWAITING,
            claimed_by="d",
            claimed_at=NOW - 10 * MINUTE,
            question_index=1,
        )

    async with sessions.begin() as session:
        assert sorted(await claim_holders(session)) == ["a", "b", "c"]
        released = await release_claims(session, claimed_before=NOW - 5 * MINUTE, holders=["b"])
    assert released == 3
    async with sessions() as session:
        rows = {row.def_id: row for row in await session.scalars(select(CheckIn))}
    for def_id in ("old", "dead", "opened"):
        row = rows[def_id]
        assert (row.status, row.claimed_by, row.retry_at) == (CheckInStatus.SCHEDULED, None, None)
    assert rows["alive"].status == CheckInStatus.SENDING
    assert rows["confirmed"].status == rows["answering"].status == CheckInStatus.AWAITING

    async with sessions.begin() as session:
        # No dead holder: only claims older than the cut-off come back.
        assert await release_claims(session, claimed_before=NOW + MINUTE, holders=[]) == 1
    assert (await _statuses(sessions))["alive"] == CheckInStatus.SCHEDULED


async def test_claimed_to_open_keeps_sending_rows_latest_first(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1", chat_id=42)
        early = checkin(session, episode, "d1", due_at=NOW - MINUTE, status=CheckInStatus.SENDING)
        late = checkin(session, episode, "d2", due_at=NOW, status=CheckInStatus.SENDING)
        gone = checkin(session, episode, "d3", due_at=NOW, status=CheckInStatus.CANCELLED)
        await session.flush()
        ids = [early.id, late.id, gone.id]

    async with sessions() as session:
        rows = await claimed_to_open(session, ids=ids)
    assert [(c.def_id, e.id, p.chat_id) for c, e, p in rows] == [
        ("d2", episode.id, 42),
        ("d1", episode.id, 42),
    ]


async def test_lookups_by_id_and_with_their_episode(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        first = await follow_up(session, "P-1", chat_id=1)
        second = await follow_up(session, "P-2", chat_id=2)
        a = checkin(session, first, "d2", due_at=NOW)
        b = checkin(session, second, "d1", due_at=NOW - MINUTE)
        checkin(session, second, "d2", due_at=NOW)
        await session.flush()
        ids = {a.id, b.id}

    async with sessions() as session:
        assert {c.def_id for c in (await checkins_by_id(session, ids=ids)).values()} == {"d1", "d2"}
        assert set(await checkins_by_id(session, ids=[])) == set()
        episodes = await episodes_by_id(session, ids={first.id, second.id})
        assert {e.patient_id for e in episodes.values()} == {first.patient_id, second.patient_id}
        joined = await with_episode_and_patient(session, ids=ids)
        assert {(c.id, e.id, p.chat_id) for c, e, p in joined} == {
            (a.id, first.id, 1),
            (b.id, second.id, 2),
        }
        ordered = await with_episode(session, ids=ids)
        assert [(c.id, e.id) for c, e in ordered] == [(b.id, second.id), (a.id, first.id)]


async def test_awaiting_by_episode_and_open_checkins(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        first = await follow_up(session, "P-1")
        second = await follow_up(session, "P-2")
        checkin(session, first, "d1", due_at=NOW - MINUTE, status=CheckInStatus.AWAITING)
        checkin(session, first, "d2", due_at=NOW, status=CheckInStatus.SENDING)
        checkin(session, first, "d3", due_at=NOW, status=CheckInStatus.SCHEDULED)
        checkin(session, second, "d1", due_at=NOW, status=CheckInStatus.ANSWERED)

    async with sessions() as session:
        grouped = await awaiting_by_episode(session, episode_ids={first.id, second.id})
        assert {key: [c.def_id for c in rows] for key, rows in grouped.items()} == {
            first.id: ["d1"]
        }
        assert sorted(c.def_id for c in await open_checkins(session, episode_id=first.id)) == [
            "d1",
            "d2",
        ]
        assert await open_checkins(session, episode_id=second.id) == []


async def test_has_answers_ignores_unclear_replies(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        silent = checkin(session, episode, "d1", due_at=NOW - MINUTE)
        unclear = checkin(session, episode, "d2", due_at=NOW)
        answered = checkin(session, episode, "d3", due_at=NOW)
        await session.flush()
        answer(session, episode, checkin=unclear, status="unclear", value=None)
        answer(session, episode, checkin=answered)
        answer(session, episode, checkin=None)  # a note belongs to no check-in

    async with sessions() as session:
        assert not await has_answers(session, checkin_id=silent.id)
        assert not await has_answers(session, checkin_id=unclear.id)
        assert await has_answers(session, checkin_id=answered.id)


async def test_claim_due_reminders_counts_each_reminder_once(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        awaiting = {"status": CheckInStatus.AWAITING}
        checkin(session, episode, "due", due_at=NOW, next_reminder_at=NOW - MINUTE, **awaiting)
        checkin(
            session, episode, "now", due_at=NOW, next_reminder_at=NOW, reminders_sent=1, **awaiting
        )
        checkin(session, episode, "later", due_at=NOW, next_reminder_at=NOW + MINUTE, **awaiting)
        checkin(session, episode, "none", due_at=NOW, **awaiting)
        checkin(
            session,
            episode,
            "closed",
            due_at=NOW,
            next_reminder_at=NOW - MINUTE,
            status=CheckInStatus.ANSWERED,
        )

    # On a small table PostgreSQL used to plan a nested-loop semi join that re-ran the LIMIT
    # subquery for each row it updated, so one statement claimed more than ``limit`` reminders.
    async with sessions.begin() as session:
        first = await claim_due_reminders(session, now=NOW, limit=1)
    assert len(first) == 1
    async with sessions.begin() as session:
        second = await claim_due_reminders(session, now=NOW, limit=10)
    async with sessions.begin() as session:
        assert await claim_due_reminders(session, now=NOW, limit=10) == []

    async with sessions() as session:
        rows = {row.id: row for row in await session.scalars(select(CheckIn))}
    assert first
    assert sorted(rows[i].def_id for i in first + second) == ["due", "now"]
    assert {
        (rows[i].def_id, rows[i].reminders_sent, rows[i].next_reminder_at) for i in first + second
    } == {
        ("due", 1, None),
        ("now", 2, None),
    }
    others = {
        row.def_id: row.next_reminder_at for row in rows.values() if row.id not in first + second
    }
    assert others == {"later": NOW + MINUTE, "none": None, "closed": NOW - MINUTE}


async def test_claim_expired_checkins_takes_open_and_unsent_rows_past_their_window(
    sessions: Sessions,
) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        past = {"due_at": NOW - 2 * MINUTE, "window": MINUTE}
        checkin(session, episode, "open", status=CheckInStatus.AWAITING, **past)
        checkin(session, episode, "unsent", status=CheckInStatus.SCHEDULED, **past)
        checkin(session, episode, "edge", due_at=NOW - MINUTE, window=MINUTE)  # ends now
        checkin(session, episode, "answered", status=CheckInStatus.ANSWERED, **past)
        checkin(session, episode, "sending", status=CheckInStatus.SENDING, **past)
        checkin(session, episode, "running", due_at=NOW - MINUTE, status=CheckInStatus.AWAITING)

    async with sessions.begin() as session:
        first = await claim_expired_checkins(session, now=NOW, limit=2)
    async with sessions.begin() as session:
        second = await claim_expired_checkins(session, now=NOW, limit=10)
    assert (len(first), len(second)) == (2, 1)
    statuses = await _statuses(sessions)
    assert {name for name, status in statuses.items() if status == CheckInStatus.CLOSING} == {
        "open",
        "unsent",
        "edge",
    }
    assert statuses["answered"] == CheckInStatus.ANSWERED
    assert statuses["sending"] == CheckInStatus.SENDING
    assert statuses["running"] == CheckInStatus.AWAITING


async def test_missed_in_row_counts_the_latest_closed_checkins(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        other = await follow_up(session, "P-2")
        for day, status in enumerate(
            (
                CheckInStatus.MISSED,
                CheckInStatus.ANSWERED,
                CheckInStatus.MISSED,
                CheckInStatus.CANCELLED,  # not the patient's silence: skipped, not a break
                CheckInStatus.MISSED,
                CheckInStatus.SCHEDULED,
            )
        ):
            checkin(session, episode, f"d{day}", due_at=NOW + day * MINUTE, status=status)
        checkin(session, other, "d0", due_at=NOW, status=CheckInStatus.MISSED)
        checkin(session, other, "d1", due_at=NOW + MINUTE, status=CheckInStatus.PARTIAL)
        fresh = await follow_up(session, "P-3")

    async with sessions() as session:
        assert await missed_in_row(session, episode_id=episode.id) == 2
        assert await missed_in_row(session, episode_id=other.id) == 0
        assert await missed_in_row(session, episode_id=fresh.id) == 0


async def test_next_checkin_event_is_the_earliest_send_reminder_or_window_end(
    sessions: Sessions,
) -> None:
    async with sessions() as session:
        assert await next_checkin_event(session) is None
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        # Due long ago but waiting for its retry: counts at retry_at.
        checkin(session, episode, "retry", due_at=NOW - 60 * MINUTE, retry_at=NOW + 30 * MINUTE)
        checkin(session, episode, "done", due_at=NOW - 90 * MINUTE, status=CheckInStatus.ANSWERED)
    async with sessions() as session:
        assert await next_checkin_event(session) == NOW + 30 * MINUTE

    async with sessions.begin() as session:
        checkin(
            session,
            episode,
            "open",
            due_at=NOW - 60 * MINUTE,
            window=80 * MINUTE,
            status=CheckInStatus.AWAITING,
            next_reminder_at=NOW + 25 * MINUTE,
        )
    async with sessions() as session:
        assert await next_checkin_event(session) == NOW + 20 * MINUTE  # the window end
    async with sessions.begin() as session:
        checkin(
            session,
            episode,
            "nudge",
            due_at=NOW - 60 * MINUTE,
            window=120 * MINUTE,
            status=CheckInStatus.AWAITING,
            next_reminder_at=NOW + 10 * MINUTE,
        )
        checkin(session, episode, "next", due_at=NOW + 15 * MINUTE)
    async with sessions() as session:
        assert await next_checkin_event(session) == NOW + 10 * MINUTE  # the reminder


async def test_oldest_unsent_due_is_the_dispatcher_lag(sessions: Sessions) -> None:
    async with sessions() as session:
        assert await oldest_unsent_due(session, now=NOW) is None
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        checkin(session, episode, "sent", due_at=NOW - 60 * MINUTE, status=CheckInStatus.AWAITING)
        checkin(session, episode, "future", due_at=NOW + MINUTE)
        checkin(session, episode, "due", due_at=NOW - 5 * MINUTE)
    async with sessions() as session:
        assert await oldest_unsent_due(session, now=NOW) == NOW - 5 * MINUTE
    async with sessions.begin() as session:
        checkin(session, episode, "claimed", due_at=NOW - 7 * MINUTE, status=CheckInStatus.SENDING)
    async with sessions() as session:
        assert await oldest_unsent_due(session, now=NOW) == NOW - 7 * MINUTE
    # Held for the patient's quiet hours (no attempt counted): not the dispatcher's lag, which
    # would otherwise page at night after every downtime.
    async with sessions.begin() as session:
        checkin(session, episode, "held", due_at=NOW - 9 * 60 * MINUTE, retry_at=NOW + 60 * MINUTE)
    async with sessions() as session:
        assert await oldest_unsent_due(session, now=NOW) == NOW - 7 * MINUTE
    # Waiting to retry a failed send: lag (what a Telegram outage must show).
    async with sessions.begin() as session:
        checkin(
            session,
            episode,
            "failing",
            due_at=NOW - 8 * MINUTE,
            retry_at=NOW + MINUTE,
            attempts=2,
        )
    async with sessions() as session:
        assert await oldest_unsent_due(session, now=NOW) == NOW - 8 * MINUTE


async def test_scheduled_replannable_and_next_scheduled_checkins_of_an_episode(
    sessions: Sessions,
) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        other = await follow_up(session, "P-2")
        checkin(session, episode, "past", due_at=NOW - MINUTE)
        checkin(session, episode, "now", due_at=NOW)
        checkin(session, episode, "soon", due_at=NOW + 2 * MINUTE)
        checkin(session, episode, "later", due_at=NOW + 5 * MINUTE)
        checkin(
            session,
            episode,
            "quiet",
            due_at=NOW + MINUTE,
            status=CheckInStatus.CANCELLED,
            status_reason="quiet_hours",
        )
        checkin(
            session,
            episode,
            "paused",
            due_at=NOW + 3 * MINUTE,
            status=CheckInStatus.CANCELLED,
            status_reason="episode_paused",
        )
        checkin(session, episode, "open", due_at=NOW + 4 * MINUTE, status=CheckInStatus.AWAITING)
        checkin(session, other, "soon", due_at=NOW + MINUTE)

    async with sessions() as session:
        every = await scheduled_checkins(session, episode_id=episode.id)
        stale = await scheduled_checkins(session, episode_id=episode.id, due_by=NOW)
        replannable = await replannable_checkins(session, episode_id=episode.id, after=NOW)
        upcoming = await next_scheduled(session, episode_id=episode.id, limit=2)
    assert sorted(c.def_id for c in every) == ["later", "now", "past", "soon"]
    assert sorted(c.def_id for c in stale) == ["now", "past"]
    assert sorted(c.def_id for c in replannable) == ["later", "quiet", "soon"]
    assert [c.def_id for c in upcoming] == ["past", "now"]
