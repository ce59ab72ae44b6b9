"""The conversation's queries (bot/db/queries: episodes, updates, answers), each on SQLite and,
when TEST_DATABASE_URL is set, PostgreSQL, against the migrated schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import (
    Alert,
    Answer,
    AuditEvent,
    CheckIn,
    EnrolmentToken,
    Episode,
    Patient,
    ProtocolVersion,
)
from bot.db.queries import answers, episodes, updates
from bot.db.session import create_engine, make_sessionmaker, upgrade_database
from bot.domain.states import AlertDelivery, AlertStatus, CheckInStatus, EpisodeStatus
from tests import harness

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CHAT = 424_242


@pytest.fixture
async def sessions(
    database: harness.TestDatabase,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a freshly migrated database."""
    engine = create_engine(database.url, schema=database.schema)
    try:
        await upgrade_database(engine)
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def _episode(
    session: AsyncSession,
    *,
    label: str = "P-001",
    chat_id: int | None = CHAT,
    status: EpisodeStatus = EpisodeStatus.ACTIVE,
    patient: Patient | None = None,
) -> Episode:
    """An episode (and its patient, unless given) on a stored protocol version."""
    version = await session.get(ProtocolVersion, 1)
    if version is None:
        version = ProtocolVersion(
            id=1, protocol_id="p", version=1, sha256="0" * 64, content="{}", loaded_at=NOW
        )
        session.add(version)
    if patient is None:
        patient = Patient(label=label, chat_id=chat_id, created_at=NOW)
    episode = Episode(
        patient=patient,
        protocol_version_id=1,
        procedure_at=NOW - timedelta(days=1),
        time_zone="Europe/Paris",
        side="left",
        indication="oa",
        language="fr",
        status=status,
        created_at=NOW,
        created_by="test",
    )
    session.add(episode)
    await session.flush()
    return episode


def _checkin(episode: Episode, def_id: str, *, due: timedelta, status: CheckInStatus) -> CheckIn:
    return CheckIn(
        episode_id=episode.id,
        def_id=def_id,
        due_at=NOW + due,
        window_ends_at=NOW + due + timedelta(hours=10),
        status=status,
    )


def _answer(
    episode: Episode,
    *,
    checkin: CheckIn | None = None,
    question_id: str | None = None,
    status: str = "ok",
    at: timedelta = timedelta(0),
    message_id: int | None = None,
    value: int | None = None,
) -> Answer:
    return Answer(
        episode_id=episode.id,
        checkin_id=checkin.id if checkin is not None else None,
        question_id=question_id,
        kind="text",
        value=value,
        status=status,
        day=1,
        telegram_message_id=message_id,
        created_at=NOW + at,
    )


# ------------------------------------------------------------------------------ updates


async def test_an_update_id_is_recorded_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        assert await updates.already_processed(session, update_id=7, now=NOW) is False
        assert await updates.already_processed(session, update_id=7, now=NOW) is True
    async with sessions.begin() as session:
        assert await updates.already_processed(session, update_id=7, now=NOW) is True
        assert await updates.already_processed(session, update_id=8, now=NOW) is False


# ------------------------------------------------------------------------------ episodes


async def test_patient_episode_is_the_chats_latest_episode_unless_erased(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        first = await _episode(session, status=EpisodeStatus.COMPLETED)
        latest = await _episode(session, status=EpisodeStatus.INVITED, patient=first.patient)
        erased = await _episode(session, label="P-002", chat_id=CHAT + 1)
        erased.patient.erased_at = NOW
        await _episode(session, label="P-003", chat_id=None)
    async with sessions() as session:
        found = await episodes.patient_episode(session, chat_id=CHAT)
        assert found is not None
        assert (found[0].label, found[1].id) == ("P-001", latest.id)
        assert await episodes.patient_episode(session, chat_id=CHAT + 1) is None
        assert await episodes.patient_episode(session, chat_id=CHAT + 2) is None


async def test_a_patient_without_an_episode_is_not_found(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        session.add(Patient(label="P-009", chat_id=CHAT, created_at=NOW))
    async with sessions() as session:
        assert await episodes.patient_episode(session, chat_id=CHAT) is None


async def test_open_checkin_is_the_one_awaiting_answers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        episode = await _episode(session)
        other = await _episode(session, label="P-002", chat_id=CHAT + 1)
        session.add_all(
            [
                _checkin(episode, "d0", due=timedelta(hours=-20), status=CheckInStatus.ANSWERED),
                _checkin(episode, "d1", due=timedelta(hours=-1), status=CheckInStatus.AWAITING),
                _checkin(episode, "d2", due=timedelta(days=1), status=CheckInStatus.SCHEDULED),
                _checkin(other, "d2", due=timedelta(days=1), status=CheckInStatus.SCHEDULED),
            ]
        )
    async with sessions() as session:
        found = await episodes.open_checkin(session, episode_id=episode.id)
        assert found is not None and found.def_id == "d1"
        assert await episodes.open_checkin(session, episode_id=other.id) is None


async def test_next_checkin_due_is_the_earliest_scheduled_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        episode = await _episode(session)
        empty = await _episode(session, label="P-002", chat_id=CHAT + 1)
        session.add_all(
            [
                _checkin(episode, "d0", due=timedelta(hours=-2), status=CheckInStatus.SCHEDULED),
                _checkin(episode, "d1", due=timedelta(hours=1), status=CheckInStatus.AWAITING),
                _checkin(episode, "d3", due=timedelta(days=3), status=CheckInStatus.SCHEDULED),
                _checkin(episode, "d2", due=timedelta(days=2), status=CheckInStatus.SCHEDULED),
            ]
        )
    async with sessions() as session:
        due = await episodes.next_checkin_due(session, episode_id=episode.id)
        assert due is not None and due == NOW - timedelta(hours=2)
        later = await episodes.next_checkin_due(session, episode_id=episode.id, after=NOW)
        assert later is not None and later == NOW + timedelta(days=2)
        assert await episodes.next_checkin_due(session, episode_id=empty.id) is None


async def test_unfinished_checkins_are_those_to_send_sending_or_awaiting(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        episode = await _episode(session)
        other = await _episode(session, label="P-002", chat_id=CHAT + 1)
        statuses = [
            CheckInStatus.ANSWERED,
            CheckInStatus.AWAITING,
            CheckInStatus.SENDING,
            CheckInStatus.SCHEDULED,
            CheckInStatus.MISSED,
            CheckInStatus.CANCELLED,
            CheckInStatus.PARTIAL,
        ]
        for index, status in enumerate(statuses):
            session.add(_checkin(episode, f"d{index}", due=timedelta(days=index), status=status))
        session.add(_checkin(other, "d9", due=timedelta(days=1), status=CheckInStatus.SCHEDULED))
    async with sessions() as session:
        rows = await episodes.unfinished_checkins(session, episode_id=episode.id)
    assert [(row.def_id, row.status) for row in rows] == [
        ("d1", CheckInStatus.AWAITING),
        ("d2", CheckInStatus.SENDING),
        ("d3", CheckInStatus.SCHEDULED),
    ]


async def test_links_of_an_episode_and_the_unused_ones(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        episode = await _episode(session)
        other = await _episode(session, label="P-002", chat_id=CHAT + 1)
        expires = NOW + timedelta(days=7)
        session.add_all(
            [
                EnrolmentToken(
                    episode_id=episode.id,
                    token_hash="used",
                    created_at=NOW,
                    expires_at=expires,
                    used_at=NOW,
                ),
                EnrolmentToken(
                    episode_id=episode.id, token_hash="fresh", created_at=NOW, expires_at=expires
                ),
                EnrolmentToken(
                    episode_id=other.id, token_hash="theirs", created_at=NOW, expires_at=expires
                ),
            ]
        )
    async with sessions() as session:
        assert await episodes.is_episode_link(session, episode_id=episode.id, token_hash="used")
        assert await episodes.is_episode_link(session, episode_id=episode.id, token_hash="fresh")
        assert not await episodes.is_episode_link(
            session, episode_id=episode.id, token_hash="theirs"
        )
        assert not await episodes.is_episode_link(
            session, episode_id=episode.id, token_hash="nobody"
        )
        unused = await episodes.unused_links(session, episode_id=episode.id)
        assert [link.token_hash for link in unused] == ["fresh"]


async def test_episodes_of_a_patient_oldest_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        first = await _episode(session, status=EpisodeStatus.STOPPED)
        second = await _episode(session, patient=first.patient)
        await _episode(session, label="P-002", chat_id=CHAT + 1)
    async with sessions() as session:
        rows = await episodes.episodes_of_patient(session, patient_id=first.patient_id)
    assert [row.id for row in rows] == [first.id, second.id]


async def test_episode_record_holds_everything_of_that_episode_in_time_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        episode = await _episode(session)
        other = await _episode(session, label="P-002", chat_id=CHAT + 1)
        later = _checkin(episode, "d2", due=timedelta(days=2), status=CheckInStatus.SCHEDULED)
        sooner = _checkin(episode, "d1", due=timedelta(days=1), status=CheckInStatus.SCHEDULED)
        session.add_all([later, sooner])
        session.add_all(
            [
                _answer(episode, question_id="b", at=timedelta(minutes=5)),
                _answer(episode, question_id="a", at=timedelta(minutes=1)),
                _answer(other, question_id="x"),
            ]
        )
        for rule, minutes in (("late", 9), ("early", 2)):
            session.add(
                Alert(
                    episode_id=episode.id,
                    rule_id=rule,
                    severity="urgent",
                    status=AlertStatus.OPEN,
                    evidence=[],
                    created_at=NOW + timedelta(minutes=minutes),
                    updated_at=NOW,
                    delivery=AlertDelivery.PENDING,
                )
            )
        for action, minutes in (("second", 3), ("first", 1)):
            session.add(
                AuditEvent(
                    at=NOW + timedelta(minutes=minutes),
                    actor="test",
                    action=action,
                    episode_id=episode.id,
                )
            )
        session.add(AuditEvent(at=NOW, actor="test", action="theirs", episode_id=other.id))
    async with sessions() as session:
        record = await episodes.episode_record(session, episode_id=episode.id)
    assert [row.def_id for row in record.checkins] == ["d1", "d2"]
    assert [row.question_id for row in record.answers] == ["a", "b"]
    assert [row.rule_id for row in record.alerts] == ["early", "late"]
    assert [row.action for row in record.events] == ["first", "second"]


# ------------------------------------------------------------------------------ answers


async def test_answers_with_checkin_in_time_order_with_the_checkins_definition(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        episode = await _episode(session)
        other = await _episode(session, label="P-002", chat_id=CHAT + 1)
        checkin = _checkin(episode, "d1", due=timedelta(0), status=CheckInStatus.AWAITING)
        session.add(checkin)
        await session.flush()
        session.add_all(
            [
                _answer(episode, checkin=checkin, question_id="pain", at=timedelta(minutes=2)),
                _answer(episode, question_id=None, at=timedelta(minutes=1)),
                _answer(other, question_id="pain"),
            ]
        )
    async with sessions() as session:
        rows = await answers.answers_with_checkin(session, episode_id=episode.id)
    assert [(answer.question_id, def_id) for answer, def_id in rows] == [
        (None, None),
        ("pain", "d1"),
    ]


async def test_answer_from_message_is_the_latest_saved_from_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        episode = await _episode(session)
        other = await _episode(session, label="P-002", chat_id=CHAT + 1)
        session.add_all(
            [
                _answer(episode, question_id="first", message_id=55),
                _answer(episode, question_id="second", message_id=55),
                _answer(episode, question_id="elsewhere", message_id=56),
                _answer(other, question_id="theirs", message_id=57),
            ]
        )
    async with sessions() as session:
        found = await answers.answer_from_message(session, episode_id=episode.id, message_id=55)
        assert found is not None and found.question_id == "second"
        assert (
            await answers.answer_from_message(session, episode_id=episode.id, message_id=57) is None
        )


async def test_understood_answers_and_the_answer_to_one_question(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        episode = await _episode(session)
        checkin = _checkin(episode, "w6", due=timedelta(0), status=CheckInStatus.AWAITING)
        another = _checkin(episode, "m3", due=timedelta(days=40), status=CheckInStatus.SCHEDULED)
        session.add_all([checkin, another])
        await session.flush()
        session.add_all(
            [
                _answer(episode, checkin=checkin, question_id="k2", value=3, at=timedelta(3)),
                _answer(episode, checkin=checkin, question_id="k1", value=1, at=timedelta(1)),
                _answer(episode, checkin=checkin, question_id="k1", status="unclear"),
                _answer(episode, checkin=checkin, question_id="k3", status="skip"),
                _answer(episode, checkin=checkin, question_id="other", value=9),
                _answer(episode, checkin=another, question_id="k1", value=4),
            ]
        )
    async with sessions() as session:
        rows = await answers.understood_answers(
            session, checkin_id=checkin.id, question_ids=["k1", "k2", "k3"]
        )
        assert [(row.question_id, row.value) for row in rows] == [("k1", 1), ("k2", 3)]
        found = await answers.answer_to(session, checkin_id=checkin.id, question_id="other")
        assert found is not None and found.value == 9
        assert await answers.answer_to(session, checkin_id=another.id, question_id="k2") is None


async def test_has_understood_answer_counts_skips_but_not_unclear_answers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        episode = await _episode(session)
        checkins = [
            _checkin(episode, f"d{index}", due=timedelta(days=index), status=status)
            for index, status in enumerate([CheckInStatus.AWAITING] * 4)
        ]
        session.add_all(checkins)
        await session.flush()
        unclear, skipped, understood, empty = checkins
        session.add_all(
            [
                _answer(episode, checkin=unclear, question_id="q", status="unclear"),
                _answer(episode, checkin=skipped, question_id="q", status="skip"),
                _answer(episode, checkin=understood, question_id="q", status="unclear"),
                _answer(episode, checkin=understood, question_id="q", status="ok"),
            ]
        )
    async with sessions() as session:
        results = [
            await answers.has_understood_answer(session, checkin_id=checkin.id)
            for checkin in (unclear, skipped, understood, empty)
        ]
    assert results == [False, True, True, False]
