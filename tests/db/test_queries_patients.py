"""The patient queries on both databases: lookups by label and chat, the latest and the live
follow-up, invitation tokens, and the rows an erasure rewrites."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import AuditEvent, EnrolmentToken
from bot.db.queries.patients import (
    anonymise_chat_actor,
    latest_episode,
    live_episode,
    patient_by_chat,
    patient_by_label,
    stored_file_paths,
    token_by_hash,
    unused_tokens,
)
from bot.domain.states import EpisodeStatus
from tests.db.rows import NOW, answer, follow_up

Sessions = async_sessionmaker[AsyncSession]


async def test_patients_by_label_and_by_chat(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        linked = await follow_up(session, "P-1", chat_id=4242)
        await follow_up(session, "P-2")

    async with sessions() as session:
        by_label = await patient_by_label(session, label="P-1")
        assert by_label is not None and by_label.id == linked.patient_id
        assert await patient_by_label(session, label="p-1") is None
        by_chat = await patient_by_chat(session, chat_id=4242)
        assert by_chat is not None and by_chat.label == "P-1"
        assert await patient_by_chat(session, chat_id=1) is None


async def test_latest_and_live_episode_of_a_patient(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        stopped = await follow_up(session, "P-1", status=EpisodeStatus.STOPPED)
        running = await follow_up(session, "P-1", status=EpisodeStatus.PAUSED)
        finished = await follow_up(session, "P-2", status=EpisodeStatus.COMPLETED)
        await follow_up(session, "P-3", status=EpisodeStatus.INVITED)

    async with sessions() as session:
        latest = await latest_episode(session, patient_id=stopped.patient_id)
        assert latest is not None and latest.id == running.id
        live = await live_episode(session, patient_id=stopped.patient_id)
        assert live is not None and live.id == running.id
        assert await live_episode(session, patient_id=finished.patient_id) is None
        assert await latest_episode(session, patient_id=finished.patient_id + 100) is None


async def test_latest_episode_for_update_waits_for_the_holder_on_postgresql(
    backend: str, sessions: Sessions
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no row locks: its single writer serialises the changes")
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")

    async with sessions.begin() as holding:
        assert await latest_episode(holding, patient_id=episode.patient_id, for_update=True)
        async with sessions() as other:
            # A plain read does not wait; a locking one does, until the holder commits (here
            # it gives up after lock_timeout instead).
            assert await latest_episode(other, patient_id=episode.patient_id) is not None
            await other.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(DBAPIError, match="lock"):
                await latest_episode(other, patient_id=episode.patient_id, for_update=True)
            await other.rollback()


async def test_unused_tokens_and_token_by_hash(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        other = await follow_up(session, "P-2")
        for token_hash, used_at, owner in (
            ("a" * 64, None, episode),
            ("b" * 64, NOW, episode),
            ("c" * 64, None, other),
        ):
            session.add(
                EnrolmentToken(
                    episode_id=owner.id,
                    token_hash=token_hash,
                    created_at=NOW,
                    expires_at=NOW + timedelta(days=7),
                    used_at=used_at,
                )
            )

    async with sessions() as session:
        assert [t.token_hash for t in await unused_tokens(session, episode_id=episode.id)] == [
            "a" * 64
        ]
        used = await token_by_hash(session, token_hash="b" * 64)
        assert used is not None and (used.episode_id, used.used_at) == (episode.id, NOW)
        assert await token_by_hash(session, token_hash="d" * 64) is None


async def test_stored_file_paths_and_anonymise_chat_actor(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1", chat_id=77)
        photo = answer(session, episode, question_id=None, value=None, file_path="/media/1.jpg")
        empty = answer(session, episode, question_id=None, value=None, file_path="")
        text = answer(session, episode)
        other = answer(session, episode, question_id=None, value=None, file_path="/media/2.jpg")
        for actor in ("chat:77", "chat:78", "staff:5001"):
            session.add(AuditEvent(at=NOW, actor=actor, action="test", details={}))
        await session.flush()
        ids = {photo.id, empty.id, text.id}

    async with sessions.begin() as session:
        assert await stored_file_paths(session, answer_ids=ids) == ["/media/1.jpg"]
        assert await stored_file_paths(session, answer_ids={other.id}) == ["/media/2.jpg"]
        await anonymise_chat_actor(session, chat_id=77)
    async with sessions() as session:
        actors = sorted(await session.scalars(select(AuditEvent.actor)))
    assert actors == ["chat:78", "chat:erased", "staff:5001"]
