"""The states a follow-up, a check-in and an alert move through, as types (not bare strings).

They are stored as their string values (so the database stays readable and the migrations
unchanged), but every comparison in the code goes through these enums, so ``mypy --strict``
catches a typo that a string literal would hide.

Episode: ``invited`` (link printed) → ``consent`` (chat linked, consent asked) → ``active`` ⇄
``paused`` → ``stopped`` | ``completed``; or ``refused`` at the consent question.

Check-in: ``scheduled`` → ``sending`` (claimed by one dispatcher) → ``awaiting`` (first question
sent) → ``answered`` | ``partial`` | ``missed``; ``cancelled`` before consent or in quiet hours;
``closing`` is the dispatcher's short-lived claim of a check-in whose window has passed.

Alert: ``open`` → ``acknowledged`` → ``resolved``; its delivery to the staff chat is
``pending`` until Telegram accepted the card, then ``sent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EpisodeStatus(StrEnum):
    """Where a patient's follow-up stands."""

    INVITED = "invited"
    CONSENT = "consent"
    ACTIVE = "active"
    PAUSED = "paused"
    REFUSED = "refused"
    STOPPED = "stopped"
    COMPLETED = "completed"


#: A follow-up that still belongs to its patient's chat (a new enrolment must wait).
LIVE_STATUSES = frozenset(
    {EpisodeStatus.INVITED, EpisodeStatus.CONSENT, EpisodeStatus.ACTIVE, EpisodeStatus.PAUSED}
)
#: A follow-up that no longer sends check-ins (the patient can still write and be read).
FOLLOW_UP_OVER = frozenset({EpisodeStatus.STOPPED, EpisodeStatus.COMPLETED})
#: A follow-up that is running, paused or not.
RUNNING = frozenset({EpisodeStatus.ACTIVE, EpisodeStatus.PAUSED})


class CheckInStatus(StrEnum):
    """Where one time point of a follow-up stands."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    AWAITING = "awaiting"
    ANSWERED = "answered"
    PARTIAL = "partial"
    MISSED = "missed"
    CANCELLED = "cancelled"
    CLOSING = "closing"


#: Check-ins whose time has come and gone (they count in response rates).
DUE_STATES = frozenset({CheckInStatus.ANSWERED, CheckInStatus.PARTIAL, CheckInStatus.MISSED})
#: Check-ins still to be sent (or being sent right now).
PENDING_STATES = frozenset({CheckInStatus.SCHEDULED, CheckInStatus.SENDING})


class AlertStatus(StrEnum):
    """The closed loop of an alert."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertDelivery(StrEnum):
    """Whether the staff chat has the alert's card (an alert is never dropped)."""

    PENDING = "pending"
    SENT = "sent"


class AwaitingKind(StrEnum):
    """What kind of answer the conversation waits for outside a check-in question."""

    CONSENT = "consent"
    BASELINE = "baseline"
    CLARIFY = "clarify"


@dataclass(frozen=True)
class Awaiting:
    """What the bot waits for from a patient: consent, the baseline pain, or a yes/no that
    clarifies one red flag (``flag`` names it). Stored as ``consent``, ``baseline`` or
    ``clarify:<flag>``."""

    kind: AwaitingKind
    flag: str | None = None

    def __post_init__(self) -> None:
        """A clarification names its flag; nothing else does."""
        if (self.kind is AwaitingKind.CLARIFY) != (self.flag is not None):
            raise ValueError(f"awaiting {self.kind} with flag {self.flag!r}")

    @classmethod
    def clarify(cls, flag: str) -> Awaiting:
        """Waiting for the yes/no that confirms or rules out ``flag``."""
        return cls(AwaitingKind.CLARIFY, flag)

    @classmethod
    def parse(cls, stored: str) -> Awaiting:
        """Read the stored form back (``ValueError`` on anything else)."""
        kind, _, flag = stored.partition(":")
        return cls(AwaitingKind(kind), flag or None)

    def stored(self) -> str:
        """The string kept in the database."""
        return f"{self.kind}:{self.flag}" if self.flag is not None else str(self.kind)


CONSENT = Awaiting(AwaitingKind.CONSENT)
BASELINE = Awaiting(AwaitingKind.BASELINE)
