"""What every CLI test checks: a refusal is one line on stderr, exit code 2, nothing on stdout."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from tests.test_cli import ENROL, run_cli

DATABASE = "cryo-followup.db"


def assert_refused(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The one error line (without ``error: ``), after checking its shape and its words."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert result.stdout == ""
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0].removeprefix("error: ")


def enrol(tmp_path: Path, *extra: str, label: str = "P-001") -> subprocess.CompletedProcess[str]:
    """``enroll`` with the standard details; ``extra`` adds or overrides options."""
    args = list(ENROL)
    args[args.index("--label") + 1] = label
    return run_cli(*args, *extra, cwd=tmp_path)


def count(tmp_path: Path, table: str) -> int:
    """Rows in a table of the CLI's SQLite database (read directly, as a DBA would)."""
    with sqlite3.connect(tmp_path / DATABASE) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
