"""What the parsers return, and how much of a message they read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Only this many characters of a message are parsed (a pasted novel cannot slow the bot down;
#: a red flag on line 40 of a long message is the staff's job when they read the note).
MAX_CHARS = 2000


@dataclass(frozen=True)
class Parsed:
    """What an answer meant.

    ``value``: the scale value; the option value of a choice; 1/0 for yes/no.
    ``option_id``: the choice option id; ``"yes"``/``"no"`` for yes/no.
    ``flags``: the red flags this answer reports (yes to a flagged yes/no, an option with a
    flag, checklist items read in the text).
    ``contradiction``: unclear because the answer says one thing and its words another ("no, it
    won't stop"): the bot asks again with buttons, never saving the answer word.
    ``items``: what a multi-choice answer chose (painkiller classes; empty: none).
    """

    status: Literal["ok", "unclear", "skip"]
    value: int | None = None
    option_id: str | None = None
    flags: frozenset[str] = frozenset()
    contradiction: bool = False
    items: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FlagMention:
    """A red flag read in free text; ``doubtful`` means: ask the flag's yes/no question."""

    flag: str
    certainty: Literal["certain", "doubtful"]
    temperature: float | None = None


UNCLEAR = Parsed("unclear")
CONTRADICTION = Parsed("unclear", contradiction=True)
SKIP = Parsed("skip")
