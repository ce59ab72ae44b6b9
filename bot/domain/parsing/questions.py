"""Dispatch a typed answer by question type, with the skip words of optional questions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rapidfuzz import fuzz, process

from bot.domain.parsing.choice import parse_choice
from bot.domain.parsing.normalise import plain_words
from bot.domain.parsing.own_words import read_against_own_words
from bot.domain.parsing.red_flags import scan_red_flags
from bot.domain.parsing.results import SKIP, UNCLEAR, Parsed
from bot.domain.parsing.scale import parse_scale
from bot.domain.parsing.vocabulary import every
from bot.domain.parsing.yes_no import parse_yes_no
from bot.domain.protocol import Question, RedFlag


def _plain_phrases(phrases: Iterable[str]) -> frozenset[str]:
    return frozenset(" ".join(plain_words(p)) for p in phrases)


# Skip an optional question ("passer", "skip"); politely too, except a yes/no one ("non merci").
_SKIP_PHRASES = _plain_phrases(every(lambda words: words.questions.skip))
_POLITE_SKIP = _plain_phrases(every(lambda words: words.questions.polite_skip))
# Also skip an optional free-text question ("rien à ajouter", "nothing to add").
_NOTHING_TO_ADD = _plain_phrases(every(lambda words: words.questions.nothing_to_add))
# None of a checklist's signs ("aucun de ces signes", "none of these"), read typo-tolerantly.
_CHECKLIST_NONE = tuple(
    " ".join(plain_words(p)) for p in every(lambda words: words.questions.checklist_none)
)
_CHECKLIST_FILLER = frozenset(every(lambda words: words.questions.checklist_filler))


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
    * yes_no -> :func:`parse_yes_no`; yes to a question with a ``flag`` reports it. With
      ``red_flags``, the reply is read against its own words (:mod:`.own_words`): "no, it keeps
      bleeding" is yes, "no, it won't stop" a contradiction to ask again.
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
            parsed = read_against_own_words(
                text,
                parse_yes_no(text),
                flag=question.flag,
                red_flags=red_flags,
                fever_threshold=fever_threshold,
            )
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
        case "painkillers":
            return _painkillers(text)
    return UNCLEAR


def _painkillers(text: str) -> Parsed:
    """A painkiller reply read for certain in one go (a correction); anything else is unclear.

    The conversation asks the days and checks doubtful names itself (bot.services.conversation
    .painkillers); a correction has no such dialogue, so only a certain reading counts.
    """
    from bot.domain.painkillers import read_painkillers  # it reads with this package's helpers

    reading = read_painkillers(text)
    if reading.status != "ok":
        return UNCLEAR
    return Parsed(
        "ok",
        value=reading.days,
        option_id=None if reading.classes else "none",
        items=reading.classes,
    )
