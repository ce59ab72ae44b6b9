"""The bot's exception tree: every error says what is wrong and what to fix.

BotError
├── ConfigError        a setting is missing or malformed (exit code 2)
├── ProtocolError      a file in schedules/ is invalid (file, path inside it, fix)
├── UsageError         a CLI argument is wrong (exit code 2)
├── EnrolmentError     a deep-link token is unknown, used or expired
└── NotFoundError      a patient label or alert that does not exist
"""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the bot raises on purpose; its message is shown as one line."""


class ConfigError(BotError):
    """A setting is missing or malformed; the message names the variable and what is expected."""


class ProtocolError(BotError):
    """A protocol file is invalid; the message names the file, the path inside it and the fix."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        lines = [f"{file}: {path or '<root>'}: {message}" for path, message in problems]
        super().__init__("\n".join(lines))


class UsageError(BotError):
    """A command-line argument is wrong; the message says which and what is expected."""


class Refusal(UsageError):
    """A refusal a staff member may read in the team's language, not only on the command line:
    ``message`` is an English msgid with ``{placeholders}``, ``values`` fill them (``str()`` of
    the error is the English line the CLI prints; the staff dialog translates it)."""

    def __init__(self, message: str, /, **values: object) -> None:
        self.message = message
        self.values = values
        super().__init__(message.format(**values) if values else message)


class EnrolmentError(BotError):
    """A deep-link token cannot be used; ``reason`` is one of unknown, used, expired, linked."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"enrolment token {reason}")


class NotFoundError(BotError):
    """A patient label, alert or check-in that does not exist."""
