"""Logs carry ids, never personal or health data: the whole sandbox demo runs with JSON logs at
DEBUG level, and its logs are searched for what the transcript shows the patients said and who
they are (labels, free texts, enrolment tokens, Telegram names)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

#: Keys that would carry a person's data or an answer's value if a log call ever added them.
FORBIDDEN_KEYS = {
    "text",
    "raw_text",
    "label",
    "value",
    "values",
    "answer",
    "caption",
    "name",
    "first_name",
    "full_name",
    "staff_name",
    "phone",
    "token",
    "flags",
    "note",
}
NAMES = ("Anne", "John", "Claire", "Martin")


def _secrets_from_transcript(transcript: str) -> set[str]:
    """What patients typed, their labels and tokens, as the demo printed them."""
    secrets = set(re.findall(r"\bP-\d{3}\b", transcript))
    for said in re.findall(r"^patient P-\d{3}\s+(.+)$", transcript, re.MULTILINE):
        if said.startswith("(taps"):
            continue
        if said.startswith("/start "):
            secrets.add(said.split(" ", 1)[1].strip())
        else:
            secrets.add(said.strip())
    return secrets


def test_demo_logs_hold_no_label_free_text_token_or_name(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "DATABASE_", "LOG_", "STAFF_", "WEBHOOK_"))
    }
    env.update({"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"})
    done = subprocess.run(
        [sys.executable, "-m", "bot", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    secrets = _secrets_from_transcript(done.stdout)
    # The script's patients really spoke: labels, a token and free texts are in the transcript.
    assert {"P-001", "P-002", "un peu gonflé", "about 3"} <= secrets
    assert any(len(s) > 30 for s in secrets), "no enrolment token found in the transcript"

    events = []
    for line in done.stderr.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)  # every line is JSON (LOG_FORMAT=json)
        events.append(record["event"])
        leaked_keys = FORBIDDEN_KEYS & set(record)
        assert not leaked_keys, f"log event {record['event']!r} carries {leaked_keys}"
        for secret in secrets | set(NAMES):
            assert secret not in line, f"log event {record['event']!r} mentions {secret!r}"
    assert {"bot_started", "dispatched", "findings", "alert_delivered"} <= set(events)
