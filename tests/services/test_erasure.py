"""Erasure: after a patient's /delete, ``python -m bot erase --label L`` really removes their
answers and identifiers (chat id, raw texts, local photo copies) and keeps only an audit stub;
another patient's data is untouched. Runs on SQLite and, when TEST_DATABASE_URL is set,
PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.db.models import (
    Answer,
    AuditEvent,
    Base,
    DeadLetter,
    EnrolmentToken,
    Episode,
    Patient,
)
from bot.errors import UsageError
from bot.services import dead_letters, erasure
from bot.services.inbox import Inbox
from tests.harness import PARIS, BotHarness, eventually
from tests.test_cli import run_cli

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)
CHAT = 987_654
SECRET = "Mme Dupontel du 3e étage"
PHOTO_CAPTION = "cliché pris par ma fille Zoé-Anne"


async def _everything_as_text(harness: BotHarness) -> str:
    """Every row of every table, as text: what a database dump would reveal."""
    lines = []
    async with harness.ctx.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in await session.execute(select(table)):
                lines.append(f"{table.name} {tuple(row)}")
    return "\n".join(lines)


async def _patient_with_data(harness: BotHarness) -> Path:
    """P-001 with a note, a photo kept locally, an urgent alert and a deletion request."""
    patient = await harness.consented_patient(CHAT, language="fr")
    patient.say(f"c'est {SECRET}, le genou tire un peu")
    await patient.until("votre message est enregistré")
    harness.server.send_photo(CHAT, caption=PHOTO_CAPTION)
    await patient.until("photo est enregistrée")
    await harness.advance_to(EVENING)
    patient.tap(await patient.until("douleur"), "9")
    await patient.until("vérifié aujourd'hui")
    await harness.staff_message("P-001")
    patient.say("/delete")
    patient.tap(await patient.until("effacer vos données"), "Oui, demander l'effacement")
    await patient.until("Votre demande est enregistrée")
    async with harness.ctx.sessions() as session:
        path = await session.scalar(select(Answer.file_path).where(Answer.kind == "photo"))
    assert path is not None
    return Path(path)


@pytest.mark.slow
async def test_erase_command_removes_answers_identifiers_and_photos(
    harness: BotHarness, tmp_path: Path
) -> None:
    photo = await _patient_with_data(harness)
    assert await asyncio.to_thread(photo.exists)
    other = await harness.consented_patient(2222, language="en", label="P-002")
    other.say("all fine here")
    await other.until("saved")
    before = await _everything_as_text(harness)
    assert SECRET in before and str(CHAT) in before

    env = {
        "DATABASE_URL": harness.database.url,
        "MEDIA_DIR": str(harness.tmp_path / "media"),
    }
    if harness.database.schema:
        env["DATABASE_SCHEMA"] = harness.database.schema
    result = await asyncio.to_thread(
        run_cli, "erase", "--label", "P-001", "--yes", cwd=tmp_path, **env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("P-001 erased: ")
    assert "\nThe patient asked for it with /delete on " in result.stdout
    assert "1 local file(s) deleted" in result.stdout

    after = await _everything_as_text(harness)
    assert SECRET not in after
    assert PHOTO_CAPTION not in after
    assert str(CHAT) not in after
    assert "all fine here" in after  # the other patient keeps everything
    assert not await asyncio.to_thread(photo.exists)
    assert not await asyncio.to_thread(photo.parent.exists)
    async with harness.ctx.sessions() as session:
        stub = await session.scalar(select(Patient).where(Patient.label == "P-001"))
        assert stub is not None
        assert stub.chat_id is None and stub.erased_at is not None
        assert stub.erasure_requested_at is not None
        assert (
            await session.scalar(
                select(func.count()).select_from(Episode).where(Episode.patient_id == stub.id)
            )
            == 0
        )
        assert await session.scalar(select(func.count()).select_from(EnrolmentToken)) == 1
        remaining = {
            (a.kind, a.raw_text)
            for a in await session.scalars(select(Answer).where(Answer.raw_text.is_not(None)))
        }
        assert remaining == {("note", "all fine here")}
        (event,) = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == "patient_erased")
        )
        assert (event.actor, event.episode_id) == ("cli", None)
        assert event.details["patient_id"] == stub.id
        assert event.details["rows"]["answers"] >= 4
        assert event.details["files"] == 1
        assert event.details["requested_at"] is not None
        kept = list(await session.scalars(select(AuditEvent.action)))
    assert {"consent_given", "erasure_requested", "safety_advice_sent"} <= set(kept)

    # The chat is a stranger now: nothing new is stored about it.
    harness.server.send_text(CHAT, "bonjour ?")
    reply = await harness.server.wait_for(
        lambda m: m.chat_id == CHAT and "Pour commencer votre suivi" in (m.text or "")
    )
    assert reply.text


async def test_erase_refuses_unknown_labels_and_a_second_run(harness: BotHarness) -> None:
    await harness.consented_patient(3333, language="fr")
    with pytest.raises(UsageError, match="no patient has the label"):
        await erasure.erase(harness.ctx, label="P-404")
    report = await erasure.erase(harness.ctx, label="P-001")
    assert report.rows["answers"] == 1  # the baseline
    assert report.requested_at is None  # staff may erase without a request (retention policy)
    with pytest.raises(UsageError, match="already erased"):
        await erasure.erase(harness.ctx, label="P-001")
    with pytest.raises(UsageError, match="was erased"):
        await harness.enrol("P-001")


def test_every_table_that_hangs_off_a_patient_can_be_erased() -> None:
    reachable = {"patients"}
    for table in Base.metadata.sorted_tables:
        if table.name == "audit_events":
            continue
        if any(fk.column.table.name in reachable for fk in table.foreign_keys):
            reachable.add(table.name)
            erasure._primary_key(table)  # raises when the walk could not delete its rows
    assert {"episodes", "answers", "checkins", "alerts", "enrolment_tokens"} <= reachable


async def test_erase_removes_the_patients_updates_set_aside_and_no_one_elses(
    harness: BotHarness,
) -> None:
    """An unreadable update keeps its raw JSON (the patient's words) as a dead letter: erasure
    used to leave it behind."""
    patient = await harness.consented_patient(CHAT, language="fr")
    other = await harness.consented_patient(4444, label="P-002", language="fr")
    mine = harness.server.send_content(patient.user_id, {"poll": {"id": "p1", "question": SECRET}})
    theirs = harness.server.send_content(other.user_id, {"poll": {"id": "p2", "question": "x"}})
    await dead_letters.set_aside(
        harness.ctx, update_id=10**9, raw_json=f'{{"broken": {CHAT}', reason="test", tries=3
    )

    async def both_set_aside() -> None:
        async with harness.ctx.sessions() as session:
            kept = set(await session.scalars(select(DeadLetter.update_id)))
        assert {mine["update_id"], theirs["update_id"]} <= kept

    await eventually(both_set_aside)
    report = await erasure.erase(harness.ctx, label="P-001")
    assert report.rows["dead_letters"] == 2
    async with harness.ctx.sessions() as session:
        kept = set(await session.scalars(select(DeadLetter.update_id)))
    assert kept == {theirs["update_id"]}
    assert SECRET not in await _everything_as_text(harness)


async def test_erase_removes_the_patients_updates_waiting_in_the_polling_inbox(
    harness: BotHarness,
) -> None:
    """An update kept in the polling inbox (fetched, not yet handled: a process died) holds the
    patient's words until the next poller handles it; erasure removes it, and no one else's."""
    patient = await harness.consented_patient(CHAT, language="fr")
    other = await harness.consented_patient(4444, label="P-002", language="fr")
    raw = {"update_id": 9_000_001, "message": {"message_id": 1, "date": 0, "text": SECRET}}
    mine = {
        **raw,
        "message": {**raw["message"], "chat": {"id": patient.user_id, "type": "private"}},
    }
    theirs = {
        **raw,
        "update_id": 9_000_002,
        "message": {
            **raw["message"],
            "text": "4",
            "chat": {"id": other.user_id, "type": "private"},
        },
    }
    await Inbox(harness.ctx, bot_id=1).keep([mine, theirs])
    report = await erasure.erase(harness.ctx, label="P-001")
    assert report.rows["inbox_updates"] >= 1  # and the bot's own, handled, not yet forgotten
    assert [u["update_id"] for u in await Inbox(harness.ctx, bot_id=1).waiting()] == [9_000_002]
    assert SECRET not in await _everything_as_text(harness)
