"""CSV and FHIR R4 exports of a real six-month course: the Bundle validates with fhir.resources'
R4B models, the CSV reads back to the same values, and a 100,000-answer export streams."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import delete, func, insert, select

from bot.cli import parse_local_date
from bot.db.models import Answer, CheckIn, OwedMessage
from bot.errors import UsageError
from bot.services import export
from tests.harness import TestDatabase as Database
from tests.services.course import PARIS, Services, play_course, services
from tests.test_cli import run_cli

START = datetime(2026, 12, 1, 8, 0, tzinfo=PARIS)


def _resources(bundle: Bundle, kind: str) -> list[Any]:
    return [e.resource for e in bundle.entry or [] if e.resource.get_resource_type() == kind]


def _codes(observation: Any) -> list[str]:
    return [coding.code for coding in observation.code.coding]


async def _fhir(svc: Services, **kwargs: Any) -> Bundle:
    out = io.StringIO()
    count = await export.write_fhir(svc.ctx, out, **kwargs)
    bundle = Bundle.model_validate_json(out.getvalue())
    assert len(bundle.entry or []) == count
    return bundle


async def test_fhir_bundle_of_a_six_month_course_validates(database: Database) -> None:
    async with services(database, START) as svc:
        await play_course(svc, label="P-100", chat_id=7001, baseline=6)
        bundle = await _fhir(svc)

    assert bundle.type == "collection"
    urls = {entry.fullUrl for entry in bundle.entry or []}
    assert len(urls) == len(bundle.entry or [])
    (patient,) = _resources(bundle, "Patient")
    assert [(i.system, i.value) for i in patient.identifier] == [(export.LABEL_SYSTEM, "P-100")]
    assert patient.name is None and patient.telecom is None and patient.birthDate is None
    (procedure,) = _resources(bundle, "Procedure")
    assert procedure.status == "completed"
    assert procedure.performedDateTime.isoformat().startswith("2026-12-01T08:30:00")
    assert [c.code for c in procedure.bodySite[0].coding] == ["82169009"]

    responses = _resources(bundle, "QuestionnaireResponse")
    assert len(responses) == 9
    assert {r.status for r in responses} == {"completed"}
    day2 = next(r for r in responses if r.questionnaire.rsplit("|", 1)[0].endswith(":d2"))
    pain = next(item for item in day2.item if item.linkId == "pain_avg")
    assert pain.answer[0].valueInteger == 8
    swelling = next(item for item in day2.item if item.linkId == "swelling")
    assert swelling.answer[0].valueCoding.code == "mild"

    observations = _resources(bundle, "Observation")
    pains = [o for o in observations if _codes(o) == ["72514-3"]]
    # baseline + pain_avg at d1, d2, d3, d7, d14, w6, m3, m6 (the day-0 evening item has no LOINC)
    assert sorted(o.valueInteger for o in pains) == sorted([6, 5, 8, 5, 4, 3, 2, 3, 5])
    koos = [o for o in observations if _codes(o) == ["82332-8"]]
    assert [float(o.valueQuantity.value) for o in koos] == [
        pytest.approx(68.284),
        pytest.approx(68.284),
        pytest.approx(52.465),
    ]
    for observation in [*pains, *koos]:
        assert observation.subject.reference in urls
        for reference in observation.derivedFrom or []:
            assert reference.reference in urls
    assert all(r.subject.reference == observation.subject.reference for r in responses)


async def test_fhir_without_koos_answers_has_no_koos_observation(database: Database) -> None:
    async with services(database, START) as svc:
        await play_course(svc, until="d14")
        bundle = await _fhir(svc)
    observations = _resources(bundle, "Observation")
    assert observations
    assert not [o for o in observations if "82332-8" in _codes(o)]
    assert len(_resources(bundle, "QuestionnaireResponse")) == 6


async def test_fhir_computes_koos_jr_when_no_score_row_was_stored(database: Database) -> None:
    async with services(database, START) as svc:
        await play_course(svc)
        async with svc.ctx.sessions.begin() as session:
            await session.execute(delete(Answer).where(Answer.question_id == "koos_jr_score"))
        bundle = await _fhir(svc)
    koos = [o for o in _resources(bundle, "Observation") if _codes(o) == ["82332-8"]]
    assert sorted(float(o.valueQuantity.value) for o in koos) == [
        pytest.approx(52.465),
        pytest.approx(68.284),
        pytest.approx(68.284),
    ]


async def test_csv_round_trips_every_answer(database: Database) -> None:
    async with services(database, START) as svc:
        await play_course(svc, label="P-100", chat_id=7001)
        await play_course(svc, label="P-200", chat_id=7002, until="d3")
        out = io.StringIO()
        count = await export.write_csv(svc.ctx, out)
        async with svc.ctx.sessions() as session:
            rows = list(
                await session.execute(
                    select(Answer, CheckIn.def_id)
                    .outerjoin(CheckIn, Answer.checkin_id == CheckIn.id)
                    .order_by(Answer.episode_id, Answer.created_at, Answer.id)
                )
            )
    read = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert count == len(rows) == len(read)
    assert tuple(read[0]) == export.CSV_COLUMNS
    assert {r["patient_label"] for r in read} == {"P-100", "P-200"}
    for line, (answer, def_id) in zip(read, rows, strict=True):
        assert int(line["episode_id"]) == answer.episode_id
        assert line["time_point"] == (def_id or "")
        assert int(line["day"]) == answer.day
        assert line["question_id"] == (answer.question_id or "")
        assert line["raw_text"] == (answer.raw_text or "")
        assert (int(line["value"]) if line["value"] else None) == answer.value
        assert (float(line["score"]) if line["score"] else None) == answer.score
        assert (line["option_id"] or None) == answer.option_id
        assert (line["flags"].split("|") if line["flags"] else []) == answer.flags
        assert line["status"] == answer.status
        answered = datetime.fromisoformat(line["answered_at_utc"].replace("Z", "+00:00"))
        assert answered == answer.created_at.replace(microsecond=0)
    comments = [r["raw_text"] for r in read if r["question_id"] == "comment"]
    assert "RAS, merci (d1)" in comments


async def test_since_keeps_only_later_answers(database: Database) -> None:
    async with services(database, START) as svc:
        await play_course(svc, until="d14")
        since = datetime(2026, 12, 8, 0, 0, tzinfo=PARIS)
        out = io.StringIO()
        await export.write_csv(svc.ctx, out, since=since)
        bundle = await _fhir(svc, since=since)
    days = {int(row["day"]) for row in csv.DictReader(io.StringIO(out.getvalue()))}
    assert days == {7, 14}
    assert len(_resources(bundle, "QuestionnaireResponse")) == 2
    assert len(_resources(bundle, "Patient")) == 1


async def test_export_of_nothing_is_a_header_and_an_empty_bundle(database: Database) -> None:
    async with services(database, START) as svc:
        out = io.StringIO()
        assert await export.write_csv(svc.ctx, out) == 0
        bundle = await _fhir(svc)
    assert out.getvalue() == ",".join(export.CSV_COLUMNS) + "\n"
    assert bundle.entry is None


class _Sink(io.TextIOBase):
    """A file that forgets what is written: only the export's own memory is measured."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


async def _peak_bytes(svc: Services, since: datetime) -> tuple[int, int]:
    sink = _Sink()
    tracemalloc.start()
    try:
        count = await export.write_csv(svc.ctx, sink, since=since)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


@pytest.mark.slow
async def test_csv_export_of_100k_answers_streams_in_flat_memory(database: Database) -> None:
    """Exporting 100,000 answers takes about as much memory as exporting 10,000: rows are
    fetched in chunks and written as they come, never gathered in a list."""
    total = 100_000
    async with services(database, START) as svc:
        episode_id = await play_course(svc, until="d0_evening")
        base = datetime(2027, 1, 1, tzinfo=PARIS)
        async with svc.ctx.sessions.begin() as session:
            for first in range(0, total, 10_000):
                await session.execute(
                    insert(Answer),
                    [
                        {
                            "episode_id": episode_id,
                            "question_id": "pain_avg",
                            "kind": "text",
                            "raw_text": f"douleur à {i % 11} aujourd'hui, réponse {i}",
                            "value": i % 11,
                            "flags": [],
                            "status": "ok",
                            "day": 31 + i // 1000,
                            "created_at": base + timedelta(minutes=i),
                        }
                        for i in range(first, first + 10_000)
                    ],
                )
        async with svc.ctx.sessions() as session:
            existing = await session.scalar(select(func.count()).select_from(Answer))
        assert existing is not None and existing > total
        small_count, small_peak = await _peak_bytes(svc, base + timedelta(minutes=total - 10_000))
        full_count, full_peak = await _peak_bytes(svc, base)
    assert (small_count, full_count) == (10_000, total)
    # Gathering 100,000 rows would take well over 50 MB; streaming stays near the 10k figure.
    assert full_peak < 3 * small_peak + 2_000_000, (small_peak, full_peak)
    assert full_peak < 20_000_000, full_peak


def test_the_sends_of_a_closed_context_are_written_and_the_database_is_free(
    tmp_path: Path,
) -> None:
    """Seen in CI: the CLI's export, run right after a course was played in the test process,
    failed with "database is locked". The course's last sends were still in the sent log when
    its context ended; the log's writer then ran, or was cancelled by ``asyncio.run``, after the
    engine was disposed, and could leave a SQLite transaction open."""
    import asyncio
    import sqlite3

    path = tmp_path / "cryo-followup.db"
    noted: list[int] = []

    async def course() -> None:
        database = Database(url=f"sqlite+aiosqlite:///{path}", schema=None)
        async with services(database, START) as svc:
            await play_course(svc, until="d7")
            async with svc.ctx.sessions() as session:
                unwritten = await session.scalars(
                    select(OwedMessage.id).where(OwedMessage.sent_at.is_(None))
                )
                noted.extend(row for row in unwritten if svc.ctx.sent_log.is_sent(row))

    asyncio.run(course())
    assert noted  # the course ended with sends Telegram took and the log had not yet written
    other = sqlite3.connect(path, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # no transaction of the ended process holds the lock
        other.rollback()
        marks = ",".join("?" * len(noted))
        unsent = other.execute(
            f"SELECT id FROM owed_messages WHERE sent_at IS NULL AND id IN ({marks})", noted
        ).fetchall()
    finally:
        other.close()
    assert unsent == []


def test_cli_writes_csv_and_fhir_files(tmp_path: Path) -> None:
    import asyncio

    async def seed() -> None:
        database = Database(url=f"sqlite+aiosqlite:///{tmp_path / 'cryo-followup.db'}", schema=None)
        async with services(database, START) as svc:
            await play_course(svc, until="d7")

    asyncio.run(seed())
    csv_file, fhir_file = tmp_path / "answers.csv", tmp_path / "bundle.json"
    result = run_cli(
        "export", "--format", "csv", "--since", "2026-12-03", "--out", str(csv_file), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(csv_file.open(encoding="utf-8")))
    assert rows and {int(r["day"]) for r in rows} == {2, 3, 7}
    assert f"{len(rows)} answers written" in result.stdout
    result = run_cli("export", "--format", "fhir", "--out", str(fhir_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    bundle = Bundle.model_validate_json(fhir_file.read_text(encoding="utf-8"))
    assert json.loads(fhir_file.read_text())["resourceType"] == "Bundle"
    assert len(_resources(bundle, "QuestionnaireResponse")) == 5


def test_since_must_be_a_date() -> None:
    assert parse_local_date("2026-12-03", "Europe/Paris") == datetime(2026, 12, 3, tzinfo=PARIS)
    with pytest.raises(UsageError, match="YYYY-MM-DD"):
        parse_local_date("03/12/2026", "Europe/Paris")
