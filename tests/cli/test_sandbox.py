"""The sandbox keeps its data in DATABASE_URL when it is set (so ``export`` and ``report`` show the
demo afterwards), and otherwise in a temporary folder that it deletes at exit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.support import assert_refused
from tests.test_cli import run_cli

pytestmark = pytest.mark.slow  # each test plays the whole demo script


def test_without_database_url_the_demo_leaves_nothing_behind(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    work = tmp_path / "work"
    temporary.mkdir()
    work.mkdir()
    demo = run_cli("demo", cwd=work, TMPDIR=str(temporary))
    assert demo.returncode == 0, demo.stderr[-2000:]
    found = re.search(r"Its database is temporary, in (\S+), and deleted at exit", demo.stdout)
    assert found is not None, demo.stdout[:500]
    assert Path(found.group(1)).parent == temporary
    assert list(temporary.iterdir()) == []
    assert list(work.iterdir()) == []
    assert_refused(run_cli("export", "--format", "csv", "--out", "a.csv", cwd=work), "no database")


def test_with_database_url_export_and_report_show_the_demo(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    demo = run_cli("demo", cwd=tmp_path, DATABASE_URL=url)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert f"Its data is kept in DATABASE_URL ({url})" in demo.stdout

    export = run_cli(
        "export", "--format", "csv", "--out", "answers.csv", cwd=tmp_path, DATABASE_URL=url
    )
    assert export.returncode == 0, export.stderr
    answers = int(export.stdout.split()[0])
    assert answers > 10
    assert "P-001" in (tmp_path / "answers.csv").read_text(encoding="utf-8")
    report = run_cli("report", "--language", "en", cwd=tmp_path, DATABASE_URL=url)
    assert report.returncode == 0, report.stderr
    assert "pain_high" in report.stdout  # the demo's pain of 9
    # One painkiller question answered in words, and an outcomes report from the demo's data.
    assert "patient P-001    du doliprane, 3 jours" in demo.stdout
    assert "Noté : paracétamol — 3 jours sur 7" in demo.stdout
    outcomes = run_cli("outcomes", "--language", "en", cwd=tmp_path, DATABASE_URL=url)
    assert outcomes.returncode == 0, outcomes.stderr
    assert "All patients — n = 2" in outcomes.stdout
    assert (tmp_path / "outcomes.html").exists() and (tmp_path / "outcomes.png").exists()

    again = run_cli("demo", cwd=tmp_path, DATABASE_URL=url)
    assert_refused(again, "already holds 2 patient(s)", "unset it")
