"""What the command line prints is for people: results, "no events" when there are none, and no
structured log line in between; ``--since`` takes a date, or a date and a time, everywhere."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.cli.support import enrol
from tests.test_cli import run_cli

# The command line reads a date in the unit's time zone (Paris), not the machine's: from 23:00
# UTC, the machine's "tomorrow" is already today in Paris.
_NOW = datetime.now(ZoneInfo("Europe/Paris"))
TODAY = f"{_NOW:%Y-%m-%d}"
TOMORROW = f"{_NOW + timedelta(days=1):%Y-%m-%d}"


def test_changes_print_their_result_and_no_log_line(tmp_path: Path) -> None:
    assert enrol(tmp_path).returncode == 0
    stopped = run_cli("followup", "stop", "--label", "P-001", cwd=tmp_path)
    assert (stopped.returncode, stopped.stderr) == (0, "")
    assert stopped.stdout == (
        "P-001: follow-up stopped. The patient was not told: call them if needed.\n"
    )
    erased = run_cli("erase", "--label", "P-001", "--yes", cwd=tmp_path)
    assert (erased.returncode, erased.stderr) == (0, "")
    assert erased.stdout.startswith("P-001 erased: ")
    assert "\nThe patient has not asked for it (no /delete request).\n" in erased.stdout


def test_empty_results_are_said(tmp_path: Path) -> None:
    assert enrol(tmp_path).returncode == 0
    staff = run_cli("staff", "list", cwd=tmp_path)
    assert staff.returncode == 0
    assert staff.stdout.startswith("no staff members: ")
    assert "staff add" in staff.stdout
    no_consent = run_cli("audit", "--action", "consent_given", cwd=tmp_path)
    assert (no_consent.returncode, no_consent.stdout) == (0, "no events\n")


def test_since_takes_a_date_or_a_date_and_time_in_every_command(tmp_path: Path) -> None:
    assert enrol(tmp_path).returncode == 0
    for since in (TODAY, f"{TODAY} 00:00"):
        audit = run_cli("audit", "--since", since, cwd=tmp_path)
        assert audit.returncode == 0, audit.stderr
        assert "\tenrol\t" in audit.stdout
    assert run_cli("audit", "--since", TOMORROW, cwd=tmp_path).stdout == "no events\n"
    export = run_cli(
        "export", "--format", "csv", "--since", f"{TODAY} 08:00", "--out", "a.csv", cwd=tmp_path
    )
    assert export.returncode == 0, export.stderr
    report = run_cli("report", "--since", TODAY, "--language", "en", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert f"since {TODAY}" in report.stdout
