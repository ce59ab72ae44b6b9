"""Structured logs (structlog): ids only, never names, phone numbers, free text or health values.

Console output for people, JSON for production. Third-party loggers (httpx logs every request URL,
which holds the bot token) are kept at WARNING, and :class:`RedactingFilter` withholds what any
record could carry of a patient: a third-party record's arguments (PTB logs a whole unreadable
batch of updates as ``%r``) and every exception's message (a database error quotes the row, a
parsing error the update). The exception's type and traceback (code lines, no values) stay.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import TextIO

import structlog


def configure_logging(
    fmt: str = "console", level: str = "INFO", *, stream: TextIO | None = None
) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr by default) in ``fmt``
    (console|json); the bench sends them to a file so its table stays readable."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # plain_traceback: the default (rich) shows each frame's local variables, i.e. the
        # patient's text being handled when an error happens.
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if fmt == "json" else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiosqlite logs every statement with its parameters (patients' texts) at DEBUG.
    noisy = ("httpx", "httpcore", "apscheduler", "telegram", "aiohttp.access", "alembic")
    for name in (*noisy, "aiosqlite", "asyncio", "matplotlib", "PIL", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _identity(
    _logger: object, _name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    return event_dict


class WithheldError(Exception):
    """Stands in for a logged exception whose message may hold patient data."""


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _withheld(exc_info: object) -> ExcInfo | None:
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[0] is None:
        return None
    kind, _exc, tb = exc_info
    name = f"{kind.__module__}.{kind.__qualname__}" if isinstance(kind, type) else "error"
    return (WithheldError, WithheldError(f"{name} (message withheld)"), tb)


class RedactingFilter(logging.Filter):
    """Withhold third-party log arguments and every exception message (module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it (an error must still be seen)."""
        if isinstance(record.msg, dict):  # a structlog event: ours, with ids only
            if "exc_info" in record.msg:
                record.msg["exc_info"] = _withheld(record.msg["exc_info"])
        elif not record.name.startswith("bot.") and record.args:
            record.msg = f"{record.msg} [arguments withheld]"
            record.args = None
        if record.exc_info:
            record.exc_info = _withheld(record.exc_info)
            record.exc_text = None
        return True
