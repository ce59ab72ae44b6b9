"""Where languages are read from: ``LOCALES_DIR`` first (when set), then the shipped ``bot/locales``.

A language is files, not code. Each ``<lang>/`` folder holds:

- ``LC_MESSAGES/messages.po`` (or a compiled ``messages.mo``): the bot's interface texts;
- ``parsing.yaml``: the words the free-text parser reads (``bot.domain.parsing.vocabulary``);
- ``dates.yaml``, optional: how dates and times are written (``bot.i18n.format_local``);
  without it they follow the language's CLDR data (Babel).

Plus the language's entries in the protocol files (``SCHEDULES_DIR``). A file in ``LOCALES_DIR``
wins over the shipped file of the same language.

The parser builds its tables once, when it is first imported, so ``LOCALES_DIR`` is set before
(the CLI does it first thing, :func:`use_locales_dir`); changing it after the parser read its
files is refused, not half applied.
"""

from __future__ import annotations

from pathlib import Path

#: The shipped languages.
SHIPPED_DIR = Path(__file__).resolve().parent / "locales"

_extra: Path | None = None
_frozen: Path | None = None
_read = False


def use_locales_dir(directory: Path | None) -> None:
    """Read languages from ``directory`` too, before the shipped ones (None: shipped only)."""
    global _extra
    if _read and directory != _frozen:
        raise RuntimeError(
            "LOCALES_DIR must be set before the free-text parser is first used "
            "(its word tables are built once)"
        )
    _extra = directory


def extra_dirs() -> tuple[Path, ...]:
    """``LOCALES_DIR`` when set (catalogs and date formats are looked up there first)."""
    return () if _extra is None else (_extra,)


def parser_dirs() -> tuple[Path, ...]:
    """The folders the parser reads its vocabulary from; fixed from this first call on."""
    global _read, _frozen
    _read, _frozen = True, _extra
    return (*extra_dirs(), SHIPPED_DIR)
