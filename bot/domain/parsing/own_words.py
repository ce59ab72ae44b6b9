"""A typed yes/no answer read against its own words: "no, it keeps bleeding" is not a "No".

Patients answer the words of a question, not its grammar, and add what worries them: "non ça
saigne toujours", "no, it won't stop". Saving such a reply as its answer word would hide the
very sign the question is about, so the reply is read whole:

* the question's own red flag read for certain in the reply -> yes (the flag), whatever the
  answer word ("no it keeps bleeding", "ça saigne encore");
* a "no" with that flag mentioned doubtfully, or with a negation or a word of persistence that
  denies no red-flag phrase ("no, it won't stop", "non, ça continue") -> a contradiction: the bot
  asks once more with buttons;
* a "no" whose extra words deny the flag ("non, ça ne saigne plus") or say nothing of it ("no,
  all good") stays a no.

Other flags in the reply are not this question's business: the caller's free-text scan raises
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.domain.parsing.normalise import collapse, stem
from bot.domain.parsing.red_flags import denied_flags, scan_red_flags
from bot.domain.parsing.results import CONTRADICTION, Parsed
from bot.domain.parsing.vocabulary import every
from bot.domain.parsing.yes_no import words_besides_answer
from bot.domain.protocol import RedFlag


def _as_read(words: Iterable[str]) -> frozenset[str]:
    """Words as :func:`_rest` reads the reply: letters collapsed ("still" -> "stil"), stemmed."""
    return frozenset(stem(collapse(word)) for word in words)


# Beside a "no", these say the problem goes on ("still", "toujours", "continue"); so does a
# negation that denies no flag phrase ("it won't stop").
_GOES_ON = _as_read(
    (
        *every(lambda words: words.yes_no.persisting),
        *every(lambda words: words.negation.pre_negators),
        *every(lambda words: words.negation.ne),
    )
)


def read_against_own_words(
    text: str,
    parsed: Parsed,
    *,
    flag: str | None,
    red_flags: Mapping[str, RedFlag] | None,
    fever_threshold: float = 38.0,
) -> Parsed:
    """``parsed`` (the answer word of a reply to the yes/no question about ``flag``) checked
    against the rest of ``text``."""
    if flag is None or not red_flags or parsed.option_id == "yes":
        return parsed
    mentions = scan_red_flags(text, red_flags, fever_threshold=fever_threshold)
    own = next((m for m in mentions if m.flag == flag), None)
    if own is not None and own.certainty == "certain":
        return Parsed("ok", value=1, option_id="yes", flags=frozenset({flag}))
    if parsed.option_id != "no":
        return parsed
    if own is not None:
        return CONTRADICTION
    if flag in denied_flags(text, red_flags, fever_threshold=fever_threshold):
        return parsed
    if _as_read(words_besides_answer(text)) & _GOES_ON:
        return CONTRADICTION
    return parsed
