"""Every mistake on the command line is one English line on stderr and exit code 2, and changes
nothing: no database is created or migrated, no patient enrolled, no file written."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.support import assert_refused, enrol
from tests.test_cli import PROCEDURE_AT, run_cli

LONG_AGO = f"{datetime.now() - timedelta(days=31):%Y-%m-%d} 09:30"
FAR_AHEAD = f"{datetime.now() + timedelta(days=181):%Y-%m-%d} 09:30"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--qr", "/nonexistent/dir/q.png"], ["--qr", "/nonexistent/dir", "does not exist"]),
        (["--timezone", "Mars/Olympus"], ["--timezone 'Mars/Olympus'", "Europe/Paris"]),
        (["--language", "de"], ["'de'", "fr, en"]),
        (["--label", ""], ["label"]),
        (["--protocol", "nope"], ["--protocol 'nope'", "knee-cryoneurolysis"]),
        (["--procedure-at", "2020-03-01 09:30"], ["2020-03-01", "more than 30 days ago"]),
        (["--procedure-at", LONG_AGO], ["more than 30 days ago"]),
        (["--procedure-at", FAR_AHEAD], ["more than 180 days ahead"]),
    ],
    ids=[
        "qr folder",
        "time zone",
        "language",
        "empty label",
        "protocol",
        "2020",
        "31 days",
        "181 days",
    ],
)
def test_a_bad_enrolment_is_refused_before_anything_is_created(
    tmp_path: Path, extra: list[str], words: list[str]
) -> None:
    assert_refused(enrol(tmp_path, *extra), *words)
    assert list(tmp_path.iterdir()) == []  # no database, no QR code


def test_a_procedure_a_few_days_ago_is_enrolled(tmp_path: Path) -> None:
    result = enrol(
        tmp_path, "--procedure-at", f"{datetime.now() - timedelta(days=5):%Y-%m-%d} 09:30"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("https://t.me/")


@pytest.mark.parametrize(
    "args",
    [
        ["audit"],
        ["export", "--format", "csv", "--out", "answers.csv"],
        ["report"],
        ["followup", "pause", "--label", "P-001"],
        ["erase", "--label", "P-001", "--yes"],
        ["staff", "list"],
    ],
    ids=lambda args: args[0],
)
def test_commands_that_read_the_database_refuse_one_that_does_not_exist(
    tmp_path: Path, args: list[str]
) -> None:
    assert_refused(run_cli(*args, cwd=tmp_path), "no database at", "DATABASE_URL")
    assert list(tmp_path.iterdir()) == []  # no empty database made to report on


def test_mistakes_on_an_existing_database_are_english_lines_and_exit_2(tmp_path: Path) -> None:
    assert enrol(tmp_path).returncode == 0
    assert_refused(
        run_cli("followup", "stop", "--label", "NOPE", cwd=tmp_path),
        "no patient has the label 'NOPE'",
    )
    assert_refused(
        run_cli("erase", "--label", "NOPE", "--yes", cwd=tmp_path),
        "no patient has the label 'NOPE'",
    )
    assert_refused(
        run_cli("audit", "--action", "nope", cwd=tmp_path),
        "--action 'nope' is unknown; known actions: ",
        "enrol",
    )
    assert_refused(
        run_cli("audit", "--since", "01/12/2026", cwd=tmp_path),
        "--since '01/12/2026'",
        "YYYY-MM-DD",
    )
    assert_refused(
        run_cli("export", "--format", "csv", "--out", "/nonexistent/a.csv", cwd=tmp_path),
        "--out",
        "does not exist",
    )
    assert_refused(run_cli("report", "--language", "de", cwd=tmp_path), "--language 'de'", "en, fr")
    assert not (tmp_path / "report.png").exists()


def test_protocol_show_refuses_an_unknown_time_zone(tmp_path: Path) -> None:
    schedules = Path(__file__).resolve().parents[2] / "schedules" / "knee-cryoneurolysis.yaml"
    result = run_cli(
        "protocol",
        "show",
        str(schedules),
        "--procedure-at",
        PROCEDURE_AT,
        "--timezone",
        "Mars/Olympus",
        cwd=tmp_path,
    )
    assert_refused(result, "--timezone 'Mars/Olympus'")


@pytest.mark.parametrize("value", ["de", "french", "fr,en"])
def test_an_unknown_staff_language_stops_the_bot_in_one_line(tmp_path: Path, value: str) -> None:
    result = run_cli("doctor", cwd=tmp_path, STAFF_LANGUAGE=value)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: STAFF_LANGUAGE is invalid: expected fr or en "
        "(the language of everything the unit's staff read)"
    ]
