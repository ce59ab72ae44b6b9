"""The read-side queries on both databases: what the staff views, the digest, the report, the
exports and the ops gauges find, in which order, and what they leave out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Episode, UnitMessage
from bot.db.queries.views import (
    alert_timings,
    alerts_of_episode,
    answer_rows,
    answers_of_episode,
    checkin_counts_by_status,
    checkins_of_episode,
    closed_checkin_counts,
    episode_ids_with_answers,
    last_pain_by_episode,
    last_past_checkin_by_episode,
    live_follow_ups,
    oldest_unacknowledged,
    pain_answers,
    past_checkins,
    unit_messages_of_episode,
    unresolved_alert_count,
    unresolved_alerts,
    unresolved_severities_by_episode,
)
from bot.domain.states import LIVE_STATUSES, AlertStatus, CheckInStatus, EpisodeStatus
from tests.db.rows import NOW, alert, answer, checkin, follow_up

Sessions = async_sessionmaker[AsyncSession]
HOUR = timedelta(hours=1)


async def _erased(session: AsyncSession, label: str) -> Episode:
    """A follow-up whose patient has been erased."""
    episode = await follow_up(session, label)
    episode.patient.erased_at = NOW
    return episode


async def test_live_follow_ups_leave_out_finished_ones_and_erased_patients(
    sessions: Sessions,
) -> None:
    async with sessions.begin() as session:
        for status in EpisodeStatus:
            await follow_up(session, f"P-{status}", status=status)
        await _erased(session, "P-erased")

    async with sessions() as session:
        rows = await live_follow_ups(session)
    assert sorted(label for _, label in rows) == sorted(f"P-{s}" for s in LIVE_STATUSES)
    assert all(label == f"P-{episode.status}" for episode, label in rows)


async def test_last_pain_by_episode_is_the_latest_valid_pain_answer(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        first = await follow_up(session, "P-1")
        second = await follow_up(session, "P-2")
        silent = await follow_up(session, "P-3")
        answer(session, first, question_id="pain_avg", value=7)
        answer(session, first, question_id="pain_evening", value=4)
        answer(session, first, question_id="pain_avg", value=None, status="unclear")
        answer(session, first, question_id="swelling", value=2)
        answer(session, second, question_id="pain_avg", value=3)
        answer(session, silent, question_id="swelling", value=1)

    async with sessions() as session:
        pains = await last_pain_by_episode(
            session,
            episode_ids=[first.id, second.id, silent.id],
            question_ids={"pain_avg", "pain_evening"},
        )
    assert pains == {first.id: 4, second.id: 3}


async def test_last_past_checkin_and_unresolved_severities_by_episode(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        first = await follow_up(session, "P-1")
        second = await follow_up(session, "P-2")
        checkin(session, first, "d1", due_at=NOW - 2 * HOUR, status=CheckInStatus.ANSWERED)
        checkin(session, first, "d2", due_at=NOW - HOUR, status=CheckInStatus.MISSED)
        checkin(session, first, "d3", due_at=NOW, status=CheckInStatus.CANCELLED)
        checkin(session, first, "d4", due_at=NOW + HOUR)
        checkin(session, second, "d1", due_at=NOW, status=CheckInStatus.SCHEDULED)
        alert(session, first, "pain_high", severity="review")
        alert(session, first, "fever", severity="urgent", status=AlertStatus.ACKNOWLEDGED)
        alert(session, first, "missed", severity="urgent", status=AlertStatus.RESOLVED)
        alert(session, second, "missed", severity="review", status=AlertStatus.RESOLVED)

    ids = [first.id, second.id]
    async with sessions() as session:
        last = await last_past_checkin_by_episode(session, episode_ids=ids)
        severities = await unresolved_severities_by_episode(session, episode_ids=ids)
    assert {episode_id: row.def_id for episode_id, row in last.items()} == {first.id: "d2"}
    assert {key: sorted(values) for key, values in severities.items()} == {
        first.id: ["review", "urgent"]
    }


async def test_unresolved_alerts_oldest_first_with_episode_and_patient(
    sessions: Sessions,
) -> None:
    async with sessions.begin() as session:
        first = await follow_up(session, "P-1")
        second = await follow_up(session, "P-2")
        alert(session, second, "late", created_at=NOW + HOUR)
        alert(session, first, "tie_a", created_at=NOW)
        alert(session, second, "tie_b", created_at=NOW, status=AlertStatus.ACKNOWLEDGED)
        alert(session, first, "done", created_at=NOW - HOUR, status=AlertStatus.RESOLVED)

    async with sessions() as session:
        rows = await unresolved_alerts(session)
    assert [(a.rule_id, e.id, p.label) for a, e, p in rows] == [
        ("tie_a", first.id, "P-1"),
        ("tie_b", second.id, "P-2"),
        ("late", second.id, "P-2"),
    ]


async def test_one_patients_timeline(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        other = await follow_up(session, "P-2")
        checkin(session, episode, "d2", due_at=NOW + HOUR, status=CheckInStatus.AWAITING)
        checkin(session, episode, "d1", due_at=NOW, status=CheckInStatus.PARTIAL)
        checkin(session, episode, "d0", due_at=NOW - HOUR, status=CheckInStatus.CANCELLED)
        checkin(session, episode, "d3", due_at=NOW + 2 * HOUR)
        checkin(session, other, "d1", due_at=NOW, status=CheckInStatus.ANSWERED)
        second = answer(session, episode, question_id="b", created_at=NOW)
        late = answer(session, episode, question_id="c", created_at=NOW + HOUR)
        first = answer(session, episode, question_id="a", created_at=NOW)
        answer(session, other, created_at=NOW)
        alert(session, episode, "b", created_at=NOW + HOUR)
        alert(session, episode, "a", created_at=NOW, status=AlertStatus.RESOLVED)
        alert(session, other, "c", created_at=NOW)
        for text, created_at in (("later", NOW + HOUR), ("sooner", NOW)):
            session.add(
                UnitMessage(
                    episode_id=episode.id,
                    sent_by="staff:1",
                    text=text,
                    status="sent",
                    created_at=created_at,
                )
            )
        await session.flush()
        # Same time: the order they were saved in (ids) decides.
        expected_answers = [*sorted([first, second], key=lambda row: row.id), late]

    async with sessions() as session:
        past = await past_checkins(session, episode_id=episode.id)
        every = await checkins_of_episode(session, episode_id=episode.id)
        answers = await answers_of_episode(session, episode_id=episode.id)
        recent = await answers_of_episode(session, episode_id=episode.id, since=NOW + HOUR)
        alerts = await alerts_of_episode(session, episode_id=episode.id)
        messages = await unit_messages_of_episode(session, episode_id=episode.id)
    assert [row.def_id for row in past] == ["d1", "d2"]
    assert [row.def_id for row in every] == ["d0", "d1", "d2", "d3"]
    assert [row.id for row in answers] == [row.id for row in expected_answers]
    assert [row.question_id for row in recent] == ["c"]
    assert [row.rule_id for row in alerts] == ["a", "b"]
    assert [row.text for row in messages] == ["sooner", "later"]


async def test_checkin_counts_by_status_for_the_digest(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        for index, status in enumerate(
            (
                CheckInStatus.ANSWERED,
                CheckInStatus.ANSWERED,
                CheckInStatus.MISSED,
                CheckInStatus.CANCELLED,
                CheckInStatus.AWAITING,
            )
        ):
            checkin(session, episode, f"in{index}", due_at=NOW + index * HOUR, status=status)
        checkin(session, episode, "before", due_at=NOW - HOUR, status=CheckInStatus.MISSED)
        checkin(session, episode, "at_end", due_at=NOW + 24 * HOUR, status=CheckInStatus.MISSED)

    async with sessions() as session:
        counts = await checkin_counts_by_status(session, due_from=NOW, due_before=NOW + 24 * HOUR)
    assert counts == {CheckInStatus.ANSWERED: 2, CheckInStatus.MISSED: 1, CheckInStatus.AWAITING: 1}


async def test_report_counts_pain_and_alert_timings(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        checkin(session, episode, "d1", due_at=NOW - HOUR, status=CheckInStatus.ANSWERED)
        checkin(session, episode, "d2", due_at=NOW, status=CheckInStatus.MISSED)
        checkin(session, episode, "d3", due_at=NOW + HOUR, status=CheckInStatus.PARTIAL)
        checkin(session, episode, "d7", due_at=NOW, status=CheckInStatus.AWAITING)
        other = await follow_up(session, "P-2")
        checkin(session, other, "d2", due_at=NOW, status=CheckInStatus.MISSED)
        answer(session, episode, question_id="pain_avg", value=6, day=1, created_at=NOW - HOUR)
        answer(session, episode, question_id="pain_avg", value=4, day=2, created_at=NOW)
        answer(session, episode, question_id="pain_avg", value=None, status="unclear", day=2)
        answer(session, episode, question_id="swelling", value=1, day=2)
        alert(session, episode, "old", created_at=NOW - HOUR, status=AlertStatus.RESOLVED)
        alert(
            session,
            episode,
            "taken",
            severity="urgent",
            created_at=NOW,
            status=AlertStatus.ACKNOWLEDGED,
            acknowledged_at=NOW + HOUR,
        )

    async with sessions() as session:
        every = await closed_checkin_counts(session, since=None)
        recent = await closed_checkin_counts(session, since=NOW)
        pains = [
            row
            async for row in pain_answers(session, question_ids=["pain_avg"], since=None, chunk=1)
        ]
        later = [
            row
            async for row in pain_answers(session, question_ids=["pain_avg"], since=NOW, chunk=1)
        ]
        timings = await alert_timings(session, since=None)
        recent_timings = await alert_timings(session, since=NOW)
    assert sorted(tuple(row) for row in every) == [
        ("d1", CheckInStatus.ANSWERED, 1),
        ("d2", CheckInStatus.MISSED, 2),
        ("d3", CheckInStatus.PARTIAL, 1),
    ]
    assert sorted(tuple(row) for row in recent) == [
        ("d2", CheckInStatus.MISSED, 2),
        ("d3", CheckInStatus.PARTIAL, 1),
    ]
    assert sorted(pains) == [(1, 6), (2, 4)]
    assert later == [(2, 4)]
    assert sorted(tuple(row) for row in timings) == [
        ("old", "review", AlertStatus.RESOLVED, NOW - HOUR, None),
        ("taken", "urgent", AlertStatus.ACKNOWLEDGED, NOW, NOW + HOUR),
    ]
    assert [row[0] for row in recent_timings] == ["taken"]


async def test_export_rows_leave_out_erased_patients(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        second = await follow_up(session, "P-2")
        first = await follow_up(session, "P-1")
        gone = await _erased(session, "P-gone")
        silent = await follow_up(session, "P-3")
        d1 = checkin(session, first, "d1", due_at=NOW, status=CheckInStatus.ANSWERED)
        checkin(session, silent, "d1", due_at=NOW, status=CheckInStatus.MISSED)
        await session.flush()
        answer(session, first, checkin=d1, question_id="pain_avg", value=5, created_at=NOW)
        answer(
            session,
            first,
            question_id=None,
            value=None,
            kind="text",
            raw_text="a note",
            created_at=NOW - HOUR,
        )
        answer(session, second, question_id="pain_avg", value=2, score=2.5, created_at=NOW + HOUR)
        answer(session, gone, question_id="pain_avg", value=9, created_at=NOW)

    async with sessions() as session:
        rows = [tuple(row) async for row in answer_rows(session, since=None, chunk=1)]
        recent = [row[0] async for row in answer_rows(session, since=NOW + HOUR, chunk=1)]
        with_answers = await episode_ids_with_answers(session, since=None)
        answered_later = await episode_ids_with_answers(session, since=NOW + HOUR)
    assert [(row[0], row[1], row[2], row[4], row[6], row[8]) for row in rows] == [
        (second.id, "P-2", None, "pain_avg", None, 2.5),
        (first.id, "P-1", None, None, "a note", None),
        (first.id, "P-1", "d1", "pain_avg", None, None),
    ]
    assert rows[0][12] == NOW + HOUR and len(rows[0]) == 14  # 13: choices (painkillers)
    assert recent == [second.id]
    assert with_answers == sorted([first.id, second.id])
    assert answered_later == [second.id]


async def test_ops_gauges_of_alerts(sessions: Sessions) -> None:
    async with sessions() as session:
        assert await unresolved_alert_count(session) == 0
        assert await oldest_unacknowledged(session, severities=("urgent",)) is None
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        alert(session, episode, "review", severity="review", created_at=NOW - 3 * HOUR)
        alert(
            session,
            episode,
            "taken",
            severity="urgent",
            created_at=NOW - 2 * HOUR,
            status=AlertStatus.ACKNOWLEDGED,
        )
        alert(session, episode, "urgent", severity="urgent", created_at=NOW - HOUR)
        alert(session, episode, "emergency", severity="emergency", created_at=NOW)
        alert(session, episode, "done", severity="urgent", status=AlertStatus.RESOLVED)

    async with sessions() as session:
        assert await unresolved_alert_count(session) == 4
        urgent = ("urgent", "emergency")
        assert await oldest_unacknowledged(session, severities=urgent) == NOW - HOUR
        assert await oldest_unacknowledged(session, severities=("review",)) == NOW - 3 * HOUR
