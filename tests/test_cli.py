"""The command line as a user runs it: one clear line and exit code 2 on any bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot`` in ``cwd`` with a clean environment (no DATABASE_URL, no .env)."""
    clean = {
        k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME", "LANG")
    }
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


#: Tomorrow morning: enrolment refuses a procedure date far from today (a typo in the year).
PROCEDURE_AT = f"{datetime.now() + timedelta(days=1):%Y-%m-%d} 09:30"
ENROL = [
    "enroll",
    "--label",
    "P-001",
    "--procedure-at",
    PROCEDURE_AT,
    "--side",
    "left",
    "--indication",
    "osteoarthritis",
    "--language",
    "fr",
]


def test_enroll_prints_a_deep_link_and_a_qr_code(tmp_path: Path) -> None:
    result = run_cli(*ENROL, "--baseline-pain", "6", "--qr", str(tmp_path / "qr.png"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    link = result.stdout.splitlines()[0]
    assert link.startswith("https://t.me/cryo_followup_bot?start=")
    token = link.split("start=")[1]
    assert 1 <= len(token) <= 64
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    assert (tmp_path / "qr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "cryo-followup.db").exists()
    audit = run_cli("audit", cwd=tmp_path)
    assert "\tenrol\t" in audit.stdout
    assert token not in audit.stdout


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TELEGRAM_API_BASE_URL": "ftp://example"}, "TELEGRAM_API_BASE_URL"),
        ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        ({"STAFF_USER_IDS": "12,abc"}, "STAFF_USER_IDS"),
        ({"STAFF_CHAT_ID": "staff"}, "STAFF_CHAT_ID"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"TELEGRAM_BOT_TOKEN": "not-a-token"}, "TELEGRAM_BOT_TOKEN"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ],
)
def test_bad_setting_is_one_line_naming_the_variable(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    result = run_cli(*ENROL, cwd=tmp_path, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_setting_in_dotenv_is_reported_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TIMEZONE=Nowhere/Else\n")
    result = run_cli(*ENROL, cwd=tmp_path)
    assert result.returncode == 2
    assert "TIMEZONE" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        [
            "enroll",
            "--label",
            "P-1",
            "--procedure-at",
            "tomorrow",
            "--side",
            "left",
            "--indication",
            "osteoarthritis",
            "--language",
            "fr",
        ],
        [
            "enroll",
            "--label",
            "P-1",
            "--procedure-at",
            PROCEDURE_AT,
            "--side",
            "middle",
            "--indication",
            "osteoarthritis",
            "--language",
            "fr",
        ],
        [
            "enroll",
            "--label",
            "Jean Dupont",
            "--procedure-at",
            PROCEDURE_AT,
            "--side",
            "left",
            "--indication",
            "osteoarthritis",
            "--language",
            "fr",
        ],
        [
            "enroll",
            "--label",
            "P-1",
            "--procedure-at",
            PROCEDURE_AT,
            "--side",
            "left",
            "--indication",
            "osteoarthritis",
            "--language",
            "de",
        ],
        [
            "enroll",
            "--label",
            "P-1",
            "--procedure-at",
            PROCEDURE_AT,
            "--side",
            "left",
            "--indication",
            "osteoarthritis",
            "--language",
            "fr",
            "--baseline-pain",
            "11",
        ],
        [
            "enroll",
            "--label",
            "P-1",
            "--procedure-at",
            PROCEDURE_AT,
            "--side",
            "left",
            "--indication",
            "osteoarthritis",
            "--language",
            "fr",
            "--protocol",
            "hip",
        ],
        ["frobnicate"],
    ],
)
def test_bad_arguments_are_one_clear_line(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade(tmp_path: Path) -> None:
    result = run_cli("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "revision" in result.stdout


def test_protocol_check_reports_file_and_path(tmp_path: Path) -> None:
    good = (ROOT / "schedules" / "knee-cryoneurolysis.yaml").read_text()
    assert (
        run_cli(
            "protocol", "check", str(ROOT / "schedules" / "knee-cryoneurolysis.yaml"), cwd=tmp_path
        ).returncode
        == 0
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        good.replace(
            "questions: [pain_avg, pain_worst, swelling, bruise,",
            "questions: [pain_avg, pain_wrost, swelling, bruise,",
        )
    )
    result = run_cli("protocol", "check", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{bad}: checkins[1].questions[1]: no question 'pain_wrost'" in result.stderr
    assert "Traceback" not in result.stderr
