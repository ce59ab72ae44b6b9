"""Understand what a patient typed: pain scores, yes/no, choices, red flags in free text.

Pure functions: no I/O per call, no Telegram, no database. Patients are often 60-80 years
old, typing on a phone, in French or English, so everything here is accent-insensitive
(unidecode), tolerant of small typos (rapidfuzz) and reads number words with text2num's
``alpha2digit``. The words themselves (negators, hedges, yes/no words, units...) are data, one
file per language (``bot/locales/<lang>/parsing.yaml``, see :mod:`.vocabulary`), read once at
import; all languages are read at once, as patients mix them.

Two rules override everything else:

* **Never guess.** A scale answer is only a number the patient actually wrote (digits or number
  words). When two unrelated numbers are present (a date, a past value) and no ``x/10`` or
  ``x sur 10`` pattern says which one is the score, the answer is ``unclear`` and the bot re-asks
  with buttons. A choice is never picked by position.
* **Never miss silently.** Red-flag phrases are matched in every language of the protocol; a
  typo, a hedge ("peut-être", "I think") or a question ("normal ?") makes the mention
  ``doubtful`` (the bot then asks the matching yes/no question) rather than dropping it. Only an
  explicit negation ("pas de fièvre", "no pus", "fièvre non"), a measured normal temperature
  ("temp 37.5") or a bare body part said to be fine ("le mollet va bien") removes a mention.

Work is capped: only the first :data:`MAX_CHARS` characters of a message are read. Every public
function catches its own errors: a parser never breaks a conversation (``unclear`` or ``[]``).

Known limits (the bot re-asks with buttons, or asks the flag's yes/no question):

* scale: a number implied but not written ("no pain", "aucune douleur") is unclear; so are two
  scores without ``x/10`` ("hier 8, aujourd'hui 5"), dates next to a score ("le 12/03 j'avais
  4"), fractions ("6 1/2"), "X et Y" without "entre"/"between", comparisons ("moins de 3");
* yes/no: only explicit answers; "pas de fièvre" to "Avez-vous de la fièvre ?" is unclear here
  (the caller's free-text scan reads the negation); "pas vraiment" / "not really" are unclear;
* choice: comparisons with yesterday ("beaucoup moins qu'hier") are unclear;
* red flags: negation is read from a few words before a phrase in the same clause; long-range
  or double negations, irony, and symptoms described in words absent from the protocol's
  phrase lists are not understood (phrases do stretch: verb forms "giving"/"gave", up to three
  filler words such as "tout", "very", "has turned", a two-word phrase in either order, and a
  phrase's key words in any order within a clause as a doubtful mention). French "plus de
  fièvre" (no more / more fever) counts as a negation only after "n'"/"ne", but "ne" is
  optional when matching phrases, so "je peux plus marcher" = "je ne peux plus marcher". Past
  events read as present ("I had a fall two years ago", "my knee used to give way"). A typo on
  a word shorter than 6 letters is not corrected.

Modules, one job each: :mod:`.normalise` (accents, contractions, stems), :mod:`.tokens`
(clauses and sentences), :mod:`.numbers` and :mod:`.scale` (scores), :mod:`.temperature`,
:mod:`.yes_no`, :mod:`.own_words` (a yes/no reply against its own words), :mod:`.choice`,
:mod:`.negation`, :mod:`.hedges`, :mod:`.lemmas` and
:mod:`.flag_phrases` (what :mod:`.red_flags` reads with), :mod:`.expected` (questions about
the expected course), :mod:`.questions` (dispatch by
question type), :mod:`.vocabulary` (the per-language word files).
"""

from __future__ import annotations

from bot.domain.parsing.choice import parse_choice
from bot.domain.parsing.expected import asked_topics
from bot.domain.parsing.own_words import read_against_own_words
from bot.domain.parsing.questions import parse_question
from bot.domain.parsing.red_flags import scan_red_flags
from bot.domain.parsing.results import (
    CONTRADICTION,
    MAX_CHARS,
    SKIP,
    UNCLEAR,
    FlagMention,
    Parsed,
)
from bot.domain.parsing.scale import parse_scale
from bot.domain.parsing.temperature import read_temperature
from bot.domain.parsing.yes_no import parse_yes_no

__all__ = [
    "CONTRADICTION",
    "MAX_CHARS",
    "SKIP",
    "UNCLEAR",
    "FlagMention",
    "Parsed",
    "asked_topics",
    "parse_choice",
    "parse_question",
    "parse_scale",
    "parse_yes_no",
    "read_against_own_words",
    "read_temperature",
    "scan_red_flags",
]
