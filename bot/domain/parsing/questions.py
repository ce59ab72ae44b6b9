"""Dispatch a typed answer by question type, with the skip words of optional questions."""

from __future__ import annotations

from collections.abc import Mapping

from rapidfuzz import fuzz, process

from bot.domain.parsing.choice import parse_choice
from bot.domain.parsing.normalise import plain_words
from bot.domain.parsing.red_flags import scan_red_flags
from bot.domain.parsing.results import SKIP, UNCLEAR, Parsed
from bot.domain.parsing.scale import parse_scale
from bot.domain.parsing.yes_no import parse_yes_no
from bot.domain.protocol import Question, RedFlag

_SKIP_PHRASES = frozenset(
    " ".join(plain_words(p))
    for p in ("passer", "passe", "je passe", "skip", "pass", "suivant", "next", "/skip", "passez")
)
_POLITE_SKIP = frozenset(
    " ".join(plain_words(p)) for p in ("non merci", "no thanks", "no thank you", "non merci bien")
)
_NOTHING_TO_ADD = frozenset(
    " ".join(plain_words(p))
    for p in (
        "non",
        "no",
        "nope",
        "nan",
        "rien",
        "non rien",
        "rien a dire",
        "rien a ajouter",
        "rien a signaler",
        "ras",
        "r a s",
        "nothing",
        "nothing else",
        "nothing to add",
        "nothing to report",
        "no nothing",
        "c est tout",
        "that s all",
        "that is all",
    )
)
_CHECKLIST_NONE = tuple(
    " ".join(plain_words(p))
    for p in (
        "aucun",
        "aucune",
        "aucun de ces signes",
        "aucun de ces signe",
        "aucun signe",
        "aucun symptome",
        "pas de signe",
        "pas de signes",
        "rien",
        "rien de tout ca",
        "rien de tout cela",
        "rien de ca",
        "rien de cela",
        "non rien",
        "non aucun",
        "non aucun signe",
        "rien a signaler",
        "ras",
        "r a s",
        "tout va bien",
        "none",
        "none of these",
        "none of them",
        "none of the above",
        "none of those",
        "nothing",
        "no signs",
        "no symptoms",
        "all good",
        "all fine",
        "non",
        "no",
        "nope",
        "nan",
    )
)
_CHECKLIST_FILLER = frozenset({"merci", "thank", "thanks", "you", "ok", "okay"})


def _plain(text: str) -> str:
    return " ".join(plain_words(text))


def _is_checklist_none(text: str) -> bool:
    words = [w for w in plain_words(text) if w not in _CHECKLIST_FILLER] or plain_words(text)
    joined = " ".join(words)
    if not joined:
        return False
    if joined in _CHECKLIST_NONE:
        return True
    if len(joined) < 4:
        return False
    found = process.extractOne(
        joined, _CHECKLIST_NONE, scorer=fuzz.ratio, score_cutoff=85, processor=None
    )
    return found is not None


def parse_question(
    question: Question,
    text: str,
    *,
    language: str,
    red_flags: Mapping[str, RedFlag] | None = None,
    fever_threshold: float = 38.0,
) -> Parsed:
    """Parse a typed answer to ``question`` (buttons are handled by the caller).

    * scale -> :func:`parse_scale` with the question's bounds.
    * choice -> :func:`parse_choice`; the option's ``flag`` is reported.
    * yes_no -> :func:`parse_yes_no`; yes to a question with a ``flag`` reports it.
    * checklist -> "aucun", "none", "rien de tout ça", "non" -> ok with no flag; otherwise, when
      ``red_flags`` is given, the flags of ``question.flags`` read for certain in the text;
      only doubtful or no mentions -> ``unclear`` (the bot re-asks with the buttons).
    * text -> ok, value None (the caller stores the raw text).
    * photo -> a typed "passer"/"skip" skips it; anything else is unclear.

    An ``optional`` question is skipped by "passer", "skip", "non merci" ("non", "rien" too for
    a free-text question). Never raises.
    """
    try:
        return _parse_question(question, text, language, red_flags, fever_threshold)
    except Exception:
        return UNCLEAR


def _parse_question(
    question: Question,
    text: str,
    language: str,
    red_flags: Mapping[str, RedFlag] | None,
    fever_threshold: float,
) -> Parsed:
    plain = _plain(text)
    skip_words = _SKIP_PHRASES if question.type == "yes_no" else _SKIP_PHRASES | _POLITE_SKIP
    if question.type == "text" and question.optional:
        skip_words = skip_words | _NOTHING_TO_ADD
    if question.optional and plain in skip_words:
        return SKIP
    match question.type:
        case "scale":
            return parse_scale(text, minimum=question.min, maximum=question.max)
        case "choice":
            return parse_choice(text, question.options, language=language)
        case "yes_no":
            parsed = parse_yes_no(text)
            if parsed.option_id == "yes" and question.flag:
                return Parsed("ok", value=1, option_id="yes", flags=frozenset({question.flag}))
            return parsed
        case "checklist":
            if red_flags:
                mentions = scan_red_flags(text, red_flags, fever_threshold=fever_threshold)
                certain = frozenset(
                    m.flag
                    for m in mentions
                    if m.certainty == "certain" and m.flag in question.flags
                )
                if certain:
                    return Parsed("ok", flags=certain)
                if any(m.flag in question.flags for m in mentions):
                    return UNCLEAR
            if _is_checklist_none(text):
                return Parsed("ok")
            return UNCLEAR
        case "text":
            return Parsed("ok") if text.strip() else UNCLEAR
        case "photo":
            return SKIP if plain in _SKIP_PHRASES | _POLITE_SKIP else UNCLEAR
    return UNCLEAR
