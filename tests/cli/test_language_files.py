"""A language is files, not code: Spanish added from a temporary folder (LOCALES_DIR: a catalog
and a parsing.yaml, shipped in tests/fixtures/locales) and the protocol's ``es`` entries
(SCHEDULES_DIR), then a short course played by ``python -m bot run`` (a real process, on a
rehearsal clock) against the fake Telegram server.

Before, such a language passed ``protocol check`` yet "sin fiebre" raised a certain fever flag,
"siete" was not read as 7 and dates read "martes 1 diciembre at 18:00".
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bot.db.models import Alert, Answer
from bot.protocols import default_schedules_dir
from bot.sandbox.fake_api import SentMessage
from tests.cli.rehearsal import rehearsal
from tests.harness import STAFF_CHAT, TestDatabase
from tests.harness import Patient as VirtualPatient
from tests.test_cli import run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "locales"
#: The protocol's Spanish wording where the test reads it (elsewhere the English is copied).
SPANISH = {
    "Good evening! Here is your follow-up check-in.": "¡Buenas tardes! Aquí está su control.",
    "Hello! Here is your follow-up check-in.": "¡Hola! Aquí está su control.",
    "How much does your knee hurt right now, from 0 (none) to 10 (worst imaginable)?": "¿Cuánto "
    "le duele la rodilla ahora, de 0 (nada) a 10 (lo peor imaginable)?",
}
FEVER_PHRASES = ["fiebre", "tengo fiebre", "febril", "escalofríos", "tiritona"]
#: A Spanish date as CLDR writes it: "martes, 1 de diciembre, 18:00".
SPANISH_DATE = re.compile(
    r"(lunes|martes|miércoles|jueves|viernes|sábado|domingo), \d{1,2} de "
    r"(enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre)"
    r", 18:00"
)
WAIT = 60.0


async def until(patient: VirtualPatient, needle: str) -> SentMessage:
    """The patient's next message containing ``needle``; what they got so far if none comes."""
    try:
        return await patient.until(needle, timeout=WAIT)
    except TimeoutError:
        raise AssertionError(f"no {needle!r} for the patient: {patient.all_texts()}") from None


def with_spanish(node: Any, path: tuple[str, ...] = ()) -> Any:
    """The protocol with an ``es`` entry beside every ``en`` one (Spanish where the test reads
    it, the English copied elsewhere) and Spanish fever phrases."""
    if isinstance(node, dict):
        if "en" in node and "fr" in node:
            english = node["en"]
            if path[-3:] == ("red_flags", "R3", "phrases"):
                return {**node, "es": FEVER_PHRASES}
            return {
                **node,
                "es": SPANISH.get(english, english) if isinstance(english, str) else english,
            }
        return {key: with_spanish(value, (*path, str(key))) for key, value in node.items()}
    if isinstance(node, list):
        return [with_spanish(item, path) for item in node]
    return node


def spanish_files(tmp_path: Path) -> tuple[Path, Path]:
    """(LOCALES_DIR, SCHEDULES_DIR) in ``tmp_path``: Spanish as files only."""
    locales = tmp_path / "locales"
    shutil.copytree(FIXTURES, locales)
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    source = default_schedules_dir() / "knee-cryoneurolysis.yaml"
    protocol = with_spanish(yaml.safe_load(source.read_text(encoding="utf-8")))
    protocol["languages"] = [*protocol["languages"], "es"]
    (schedules / source.name).write_text(
        yaml.safe_dump(protocol, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return locales, schedules


# What it tests is a language added from files, not the database (the same rows and queries
# run on PostgreSQL in the e2e tests): SQLite only, to keep the suite within its time budget.
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_spanish_from_files_reads_negation_number_words_and_writes_its_dates(
    database: TestDatabase, tmp_path: Path
) -> None:
    locales, schedules = spanish_files(tmp_path)
    files = {"LOCALES_DIR": str(locales), "SCHEDULES_DIR": str(schedules)}
    database_env = {"DATABASE_URL": database.url, "DATABASE_SCHEMA": database.schema or ""}
    checked = run_cli(
        "protocol", "check", str(schedules / "knee-cryoneurolysis.yaml"), cwd=tmp_path, **files
    )
    assert checked.returncode == 0, checked.stderr
    # Enrolment checks the procedure against today: the rehearsal starts tomorrow morning.
    day = f"{datetime.now() + timedelta(days=1):%Y-%m-%d}"
    enrolled = run_cli(
        "enroll",
        *("--label", "ES-1", "--procedure-at", f"{day} 09:30", "--side", "left"),
        *("--indication", "osteoarthritis", "--language", "es", "--baseline-pain", "5"),
        cwd=tmp_path,
        **files,
        **database_env,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    token = enrolled.stdout.splitlines()[0].split("start=")[1]

    async with rehearsal(
        database, tmp_path, speed=3600, CLOCK_START=f"{day}T07:00", **files
    ) as running:
        patient = VirtualPatient(running.server, 4201, "es")
        patient.say(f"/start {token}")
        patient.tap(await patient.next(timeout=WAIT), "Acepto")
        started = await until(patient, "Próximo control")
        assert SPANISH_DATE.search(started.text or ""), started.text
        assert " at " not in (started.text or "")

        patient.say("sin fiebre, solo un poco cansada")
        await until(patient, "saved")  # a note (the reply is not translated)
        patient.say("tengo fiebre desde ayer")
        await running.server.wait_for(
            lambda m: m.chat_id == STAFF_CHAT and "URGENT" in (m.text or ""), timeout=WAIT
        )

        await until(patient, "Aquí está su control")
        patient.say("siete")
        await until(patient, "Anotado: 7/10.")
        running.alive()
        async with running.sessions() as session:
            alerts = [(a.rule_id, a.created_at) for a in await session.scalars(select(Alert))]
            notes = [
                (note.raw_text, note.created_at)
                for note in await session.scalars(
                    select(Answer).where(Answer.kind == "note").order_by(Answer.id)
                )
            ]
            pain = await session.scalar(
                select(Answer.value).where(Answer.question_id == "pain_evening")
            )
    # One alert, raised by the second note: "sin" negated the first.
    assert [text for text, _at in notes] == [
        "sin fiebre, solo un poco cansada",
        "tengo fiebre desde ayer",
    ]
    assert [rule for rule, _at in alerts] == ["fever"]
    assert alerts[0][1] >= notes[1][1]
    assert pain == 7


def test_a_protocol_language_without_its_files_is_refused(tmp_path: Path) -> None:
    locales, schedules = spanish_files(tmp_path)
    files = {"LOCALES_DIR": str(locales), "SCHEDULES_DIR": str(schedules)}
    vocabulary = locales / "es" / "parsing.yaml"
    kept = vocabulary.read_text(encoding="utf-8")
    vocabulary.unlink()
    checked = run_cli(
        "protocol", "check", str(schedules / "knee-cryoneurolysis.yaml"), cwd=tmp_path, **files
    )
    assert checked.returncode == 2
    assert "no es/parsing.yaml" in checked.stderr

    vocabulary.write_text(kept, encoding="utf-8")
    (locales / "es" / "LC_MESSAGES" / "messages.po").unlink()
    enrolled = run_cli(
        *("enroll", "--label", "ES-1", "--procedure-at", "2026-12-01 09:30", "--side", "left"),
        *("--indication", "osteoarthritis", "--language", "es"),
        cwd=tmp_path,
        **files,
    )
    assert enrolled.returncode == 2, enrolled.stderr
    assert "es: no LC_MESSAGES/messages.po in es/ of LOCALES_DIR" in enrolled.stderr
    assert not (tmp_path / "cryo-followup.db").exists()
