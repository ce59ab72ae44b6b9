"""``audit --action`` tells a typo from an action with no event yet: its list of actions is every
action the code records, no more and no less."""

from __future__ import annotations

import re
from pathlib import Path

from bot.cli.commands import AUDIT_ACTIONS

BOT = Path(__file__).resolve().parents[2] / "bot"
#: argparse's own ``action=`` values, which are not audit actions.
ARGPARSE_ACTIONS = {"store_true", "store_false", "store_const", "append", "count", "version"}


def test_the_known_actions_are_the_ones_the_code_records() -> None:
    recorded = set()
    for path in BOT.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        recorded |= set(re.findall(r'\baction="([a-z_]+)"', text))
        recorded |= set(re.findall(r'\bturn\.audit\(\s*"([a-z_]+)"', text))  # a turn's own events
    assert recorded - ARGPARSE_ACTIONS == AUDIT_ACTIONS
