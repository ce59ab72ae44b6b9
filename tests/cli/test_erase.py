"""``erase`` cannot be undone: it is confirmed by typing the label in a terminal (or ``--yes``),
refused without a terminal, and says whether the patient asked for it."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.cli.support import assert_refused, count, enrol
from tests.test_cli import ROOT, run_cli


def _erase_in_a_terminal(tmp_path: Path, typed: str) -> subprocess.CompletedProcess[str]:
    """``erase`` with a terminal as stdin (where the nurse types), output captured."""
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME", "LANG")}
    env["PYTHONPATH"] = str(ROOT)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "erase", "--label", "P-001"],
            cwd=tmp_path,
            env=env,
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(primary, typed.encode() + b"\n")
        stdout, stderr = process.communicate(timeout=60)
    finally:
        os.close(secondary)
        os.close(primary)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _erased(tmp_path: Path) -> int:
    return count(tmp_path, "patients WHERE erased_at IS NOT NULL")


def test_without_a_terminal_erase_needs_yes(tmp_path: Path) -> None:
    assert enrol(tmp_path).returncode == 0

    assert_refused(run_cli("erase", "--label", "P-001", cwd=tmp_path), "--yes", "cannot be undone")
    assert _erased(tmp_path) == 0


def test_in_a_terminal_erase_asks_and_says_whether_the_patient_asked(tmp_path: Path) -> None:
    assert enrol(tmp_path).returncode == 0
    declined = _erase_in_a_terminal(tmp_path, "y")
    assert declined.returncode == 1
    assert "The patient has not asked for it (no /delete request)" in declined.stdout
    assert "Type the label to confirm" in declined.stdout
    assert declined.stderr.strip() == "error: nothing erased: the answer was not P-001"
    assert _erased(tmp_path) == 0

    confirmed = _erase_in_a_terminal(tmp_path, "P-001")
    assert confirmed.returncode == 0, confirmed.stderr
    assert "P-001 erased: " in confirmed.stdout
    assert _erased(tmp_path) == 1
