"""The one place that writes to the terminal (CLI results, the sandbox transcript)."""

from __future__ import annotations

import sys


def line(text: str = "") -> None:
    """Print a line on stdout, flushed (the sandbox transcript is read live)."""
    print(text, flush=True)


def error(text: str) -> None:
    """Print a one-line error on stderr."""
    print(f"error: {text}", file=sys.stderr, flush=True)


def warning(text: str) -> None:
    """Print a one-line warning on stderr (something to fix that does not stop the command)."""
    print(f"warning: {text}", file=sys.stderr, flush=True)
