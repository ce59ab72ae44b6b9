"""Parsing of typed replies: scale, yes/no, choice, checklist, red flags in free text.

The table rows are realistic replies (French and English, typos, emojis) with the expected
result; the rows of docs/clinical.md §6 are tagged ``#n``. The protocol is the real one
(schedules/knee-cryoneurolysis.yaml), so its phrases and synonyms are tested too.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unidecode import unidecode

from bot.domain.parsing import (
    CONTRADICTION,
    MAX_CHARS,
    FlagMention,
    Parsed,
    asked_topics,
    parse_choice,
    parse_question,
    parse_scale,
    parse_yes_no,
    read_temperature,
    scan_red_flags,
)
from bot.domain.protocol import Protocol
from bot.protocols import load_protocol_file

PROTOCOL_FILE = Path(__file__).resolve().parents[2] / "schedules" / "knee-cryoneurolysis.yaml"
PROTOCOL: Protocol = load_protocol_file(PROTOCOL_FILE)
RED_FLAGS = PROTOCOL.red_flags

UNCLEAR = Parsed("unclear")
SKIP = Parsed("skip")


def ok(value: int) -> Parsed:
    return Parsed("ok", value=value)


def yes(flag: str | None = None) -> Parsed:
    return Parsed("ok", value=1, option_id="yes", flags=frozenset({flag} if flag else ()))


NO = Parsed("ok", value=0, option_id="no")


def option(question_id: str, option_id: str) -> Parsed:
    for candidate in PROTOCOL.question(question_id).options:
        if candidate.id == option_id:
            flags = frozenset({candidate.flag}) if candidate.flag else frozenset()
            return Parsed("ok", value=candidate.value, option_id=option_id, flags=flags)
    raise KeyError(option_id)


def ticked(*flags: str) -> Parsed:
    return Parsed("ok", flags=frozenset(flags))


# (question id, reply, patient language, expected)
REPLIES: list[tuple[str, str, str, Parsed]] = [
    # --- pain 0-10 (scale) ---
    ("pain_avg", "pain 7/10", "en", ok(7)),  # 3
    ("pain_avg", "sept", "fr", ok(7)),  # 4
    ("pain_avg", "3", "fr", ok(3)),  # 6
    ("pain_avg", "zéro douleur !!", "fr", ok(0)),  # 7
    ("pain_avg", "pire qu'avant l'opération, 9", "fr", ok(9)),  # 18
    ("pain_avg", "beaucoup mieux merci", "fr", UNCLEAR),  # 20
    ("pain_avg", "ok", "fr", UNCLEAR),  # 21
    ("pain_avg", "dix", "fr", ok(10)),  # 22
    ("pain_avg", "6-7", "fr", ok(7)),  # 25
    ("pain_avg", "7", "fr", ok(7)),
    ("pain_avg", "7/10", "fr", ok(7)),
    ("pain_avg", "7 sur 10", "fr", ok(7)),
    ("pain_avg", "sept sur dix", "fr", ok(7)),
    ("pain_avg", "about 6", "en", ok(6)),
    ("pain_avg", "j'ai mal à 8", "fr", ok(8)),
    ("pain_avg", "6 ou 7", "fr", ok(7)),
    ("pain_avg", "between 6 and 7", "en", ok(7)),
    ("pain_avg", "entre cinq et six", "fr", ok(6)),
    ("pain_avg", "six-sept", "fr", ok(7)),
    ("pain_avg", "6.5", "en", ok(7)),
    ("pain_avg", "6,5/10", "fr", ok(7)),
    ("pain_avg", "4,4", "fr", ok(4)),
    ("pain_avg", "12", "fr", UNCLEAR),
    ("pain_avg", "38,5", "fr", UNCLEAR),
    ("pain_avg", "bof", "fr", UNCLEAR),
    ("pain_avg", "", "fr", UNCLEAR),
    ("pain_avg", "   ", "fr", UNCLEAR),
    ("pain_avg", "I'd say 4", "en", ok(4)),
    ("pain_avg", "4 ish", "en", ok(4)),
    ("pain_avg", "ca va mieux 3", "fr", ok(3)),
    ("pain_avg", "Je dirais 4 ça va mieux", "fr", ok(4)),
    ("pain_avg", "😣 8", "fr", ok(8)),
    ("pain_avg", "8!!!", "fr", ok(8)),
    ("pain_avg", "huit", "fr", ok(8)),
    ("pain_avg", "eight", "en", ok(8)),
    ("pain_avg", "zero", "en", ok(0)),
    ("pain_avg", "0", "fr", ok(0)),
    ("pain_avg", "10/10", "fr", ok(10)),
    ("pain_avg", "11", "fr", UNCLEAR),
    ("pain_avg", "11/10", "en", UNCLEAR),
    ("pain_avg", "-3", "fr", UNCLEAR),
    ("pain_avg", "nine out of ten", "en", ok(9)),
    ("pain_avg", "un", "fr", ok(1)),
    ("pain_avg", "un peu", "fr", UNCLEAR),
    ("pain_avg", "no pain", "en", UNCLEAR),  # 0 is implied, not written: never guess
    ("pain_avg", "le 12/03 j'avais 4", "fr", UNCLEAR),  # a date and a score: ambiguous
    ("pain_avg", "le 12/03 j'avais 4/10", "fr", ok(4)),  # x/10 says which one
    ("pain_avg", "6-7/10", "fr", ok(7)),
    ("pain_avg", "2-3 jours que j'ai 5", "fr", ok(5)),
    ("pain_avg", "o/10", "en", UNCLEAR),  # "/10" is the scale, not a score of 10
    ("pain_avg", "?/10", "fr", UNCLEAR),
    ("pain_avg", "O O", "en", UNCLEAR),  # text2num reads "o o" as "00" (phone style)
    ("pain_avg", "10/10/2026", "fr", UNCLEAR),  # a date is not "10 out of 10"
    ("pain_avg", "on 10/10 I had 4", "en", UNCLEAR),
    ("pain_avg", "10/10", "en", ok(10)),
    ("pain_avg", "hier 8 aujourd'hui 5", "fr", UNCLEAR),
    ("pain_avg", "j'ai mal à 8 depuis 2 jours", "fr", ok(8)),  # "2 jours" is a duration
    ("pain_avg", "moins de 3", "fr", UNCLEAR),
    ("pain_avg", "3 jours", "fr", UNCLEAR),
    ("pain_avg", "2-3 jours", "fr", UNCLEAR),  # a range of days is not a score
    ("pain_avg", "depuis 2-3 jours, 6", "fr", ok(6)),
    ("pain_avg", "vers 18h 5", "fr", ok(5)),
    # a score with a body temperature: the temperature is no score (the fever is a red flag)
    ("pain_avg", "5 but I have a fever of 38.5", "en", ok(5)),
    ("pain_avg", "5 mais j'ai 38,5 de fièvre", "fr", ok(5)),
    ("pain_avg", "douleur 5, fièvre 39,2 ce matin", "fr", ok(5)),
    ("pain_avg", "j'ai 39 de fièvre", "fr", UNCLEAR),  # no score at all: asked again
    # yes/no read against its own words (docs/clinical.md §2: "a yes always signals")
    ("bleeding", "no it keeps bleeding", "en", yes("R10")),
    ("bleeding", "non ça saigne toujours", "fr", yes("R10")),
    ("bleeding", "no the dressing is soaked", "en", yes("R10")),
    ("bleeding", "ça saigne encore", "fr", yes("R10")),  # no answer word: the words say it
    ("bleeding", "no, it won't stop", "en", CONTRADICTION),
    ("bleeding", "non, ça ne s'arrête pas", "fr", CONTRADICTION),
    ("bleeding", "non ça continue", "fr", CONTRADICTION),
    ("bleeding", "no, bleeding has stopped", "en", CONTRADICTION),  # doubtful: ask once more
    ("bleeding", "no, it has stopped", "en", NO),
    ("bleeding", "non, ça ne saigne plus", "fr", NO),
    ("bleeding", "no, not anymore", "en", NO),
    ("bleeding", "non, pas du tout", "fr", NO),
    ("bleeding", "no, never", "en", NO),
    ("bleeding", "no, all good", "en", NO),
    ("pain_avg", "7/10 mais hier 9/10", "fr", UNCLEAR),
    ("pain_avg", "four or five", "en", ok(5)),
    ("pain_avg", "swelling huge, 5 (day 5)", "en", ok(5)),
    ("pain_worst", "neuf", "fr", ok(9)),
    ("pain_evening", "cinq ou six", "fr", ok(6)),
    # --- yes / no ---
    ("toes_check", "oui", "fr", yes("V6B")),
    ("toes_check", "non", "fr", NO),
    ("bleeding", "ouais", "fr", yes("R10")),
    ("bleeding", "ouai", "fr", yes("R10")),
    ("bleeding", "ouaip", "fr", yes("R10")),
    ("bleeding", "Non merci", "fr", NO),
    ("dressing_tight", "yes", "en", yes("V6")),
    ("dressing_tight", "yep", "en", yes("V6")),
    ("dressing_tight", "yeah", "en", yes("V6")),
    ("dressing_tight", "y", "en", yes("V6")),
    ("dressing_tight", "nope", "en", NO),
    ("dressing_tight", "n", "en", NO),
    ("numbness_spread", "o", "fr", yes("V1")),
    ("numbness_spread", "si", "fr", yes("V1")),
    ("numbness_spread", "bien sûr", "fr", yes("V1")),
    ("numbness_spread", "tout à fait", "fr", yes("V1")),
    ("numbness_spread", "exact", "fr", yes("V1")),
    ("numbness_spread", "nan", "fr", NO),
    ("numbness_spread", "pas du tout", "fr", NO),
    ("numbness_spread", "absolument pas", "fr", NO),
    ("numbness_spread", "oiu", "fr", yes("V1")),
    ("numbness_spread", "nonn", "fr", NO),
    ("skin_sensations", "no", "en", NO),
    ("skin_sensations", "not at all", "en", NO),
    ("skin_sensations", "no thanks", "en", NO),
    ("skin_sensations", "Oui !", "fr", yes("V2")),
    ("skin_sensations", "oui et non", "fr", UNCLEAR),
    ("skin_sensations", "peut-être", "fr", UNCLEAR),
    ("skin_sensations", "no idea", "en", UNCLEAR),
    ("skin_sensations", "bof", "fr", UNCLEAR),
    ("skin_sensations", "mon", "fr", UNCLEAR),
    ("swelling_worse", "non, ça diminue", "fr", NO),
    ("swelling_worse", "oui un peu", "fr", yes("V3")),
    ("pain_returning", "oui", "fr", yes()),
    ("repeat_interest", "yes please", "en", yes()),
    ("repeat_interest", "je ne pense pas", "fr", NO),
    ("repeat_interest", "passer", "fr", UNCLEAR),  # not optional: cannot be skipped
    # --- choice ---
    ("swelling", "genou un peu gonflé mais ça va", "fr", option("swelling", "mild")),  # 1
    ("swelling", "un peu gonflé", "fr", option("swelling", "mild")),
    ("swelling", "Un peu", "fr", option("swelling", "mild")),
    ("swelling", "un pe gonflé", "fr", option("swelling", "mild")),
    ("swelling", "un peu, pas beaucoup", "fr", option("swelling", "mild")),
    ("swelling", "très peu", "fr", option("swelling", "mild")),
    ("swelling", "a little swollen", "en", option("swelling", "mild")),
    ("swelling", "très enflé", "fr", option("swelling", "severe")),
    ("swelling", "tres gonfle", "fr", option("swelling", "severe")),
    ("swelling", "A lot", "en", option("swelling", "severe")),
    ("swelling", "moyennement", "fr", option("swelling", "moderate")),
    ("swelling", "moyenement", "fr", option("swelling", "moderate")),
    ("swelling", "pas du tout", "fr", option("swelling", "none")),
    ("swelling", "not swollen", "en", option("swelling", "none")),
    ("swelling", "oui", "fr", UNCLEAR),
    ("swelling", "2", "fr", UNCLEAR),  # never select by position
    ("swelling", "un peu et beaucoup", "fr", UNCLEAR),
    ("swelling", "beaucoup moins qu'hier", "fr", UNCLEAR),
    ("bruise", "bcp de bleus autour du genou", "fr", option("bruise", "large")),  # 8
    ("bruise", "un petit bleu", "fr", option("bruise", "small")),
    ("walking", "je boite", "fr", option("walking", "difficult")),
    ("walking", "avec des béquilles", "fr", option("walking", "aid")),
    ("walking", "I can't", "en", option("walking", "cannot")),
    ("walking", "normalement", "fr", option("walking", "normal")),
    ("pgic", "beaucoup mieux merci", "fr", option("pgic", "much_improved")),  # 20
    ("pgic", "much better", "en", option("pgic", "much_improved")),
    ("pgic", "pareil", "fr", option("pgic", "no_change")),
    ("pgic", "un peu mieux", "fr", option("pgic", "minimally_improved")),
    ("pgic", "catastrophique", "fr", option("pgic", "very_much_worse")),
    ("koos_1", "aucune", "fr", option("koos_1", "none")),
    ("koos_1", "no idea", "en", UNCLEAR),  # not "no" = None: ask again
    ("koos_2", "aucune idée", "fr", UNCLEAR),
    ("koos_3", "je sais pas trop", "fr", UNCLEAR),
    ("koos_4", "légère", "fr", option("koos_4", "mild")),
    ("koos_5", "moderee", "fr", option("koos_5", "moderate")),
    ("koos_7", "Extreme", "en", option("koos_7", "extreme")),
    ("satisfaction", "not very satisfied", "en", option("satisfaction", "little")),
    ("satisfaction", "très satisfait", "fr", option("satisfaction", "very")),
    # --- checklist ---
    ("flags_early", "aucun", "fr", ticked()),
    ("flags_early", "Aucun de ces signes ✓", "fr", ticked()),
    ("flags_early", "rien de tout ça", "fr", ticked()),
    ("flags_early", "none", "en", ticked()),
    ("flags_early", "none of these", "en", ticked()),
    ("flags_early", "non", "fr", ticked()),
    ("flags_early", "aucn", "fr", ticked()),
    ("flags_early", "fièvre", "fr", ticked("R3")),
    ("flags_early", "j'ai de la fièvre et le mollet dur", "fr", ticked("R2", "R3")),
    ("flags_early", "fever and spreading redness", "en", ticked("R3", "R4")),
    ("flags_early", "pas de fièvre", "fr", UNCLEAR),  # denies one sign, not all of them
    ("flags_early", "peut-être un peu de fièvre", "fr", UNCLEAR),
    ("flags_day0", "brûlures", "fr", UNCLEAR),  # V2 is not on this checklist
    # --- text and photo ---
    ("comment", "Le genou va mieux, merci à toute l'équipe", "fr", Parsed("ok")),
    ("comment", "non merci", "fr", SKIP),
    ("comment", "rien", "fr", SKIP),
    ("comment", "skip", "en", SKIP),
    ("comment", "", "fr", UNCLEAR),
    ("skin_photo", "passer", "fr", SKIP),
    ("skin_photo", "skip", "en", SKIP),
    ("skin_photo", "voilà la photo", "fr", UNCLEAR),
]


@pytest.mark.parametrize(("question_id", "text", "language", "expected"), REPLIES)
def test_reply(question_id: str, text: str, language: str, expected: Parsed) -> None:
    question = PROTOCOL.question(question_id)
    assert parse_question(question, text, language=language, red_flags=RED_FLAGS) == expected


def test_table_is_large_and_bilingual() -> None:
    assert len(REPLIES) >= 80
    assert {language for _q, _t, language, _e in REPLIES} == {"fr", "en"}


Certainty = Literal["certain", "doubtful"]

# (free text, expected {flag: certainty}, flags that may also appear as doubtful)
SCANS: list[tuple[str, dict[str, Certainty], set[str]]] = [
    ("genou un peu gonflé mais ça va", {}, set()),  # 1
    ("j'ai 39 de fièvre", {"R3": "certain"}, set()),  # 2
    ("can't walk", {"R7": "certain"}, set()),  # 5
    ("bcp de bleus autour du genou", {}, set()),  # 8
    ("le mollet est dur et me fait mal", {"R2": "certain"}, set()),  # 9
    ("I'm short of breath since this morning", {"R1": "certain"}, set()),  # 10
    ("ya du pus qui sort d'un point", {"R5": "certain"}, set()),  # 11
    ("la peau est toute blanche et j'ai une cloque", {"R6": "certain"}, set()),  # 12
    ("skin looks black where they froze it", {"R6": "certain"}, set()),  # 13
    ("numb patch below kneecap, normal?", {}, set()),  # 14: expected numbness
    ("tout le pied est engourdi", {"V1": "certain"}, set()),  # 15
    ("swelling huge, worse than yesterday", {"V3": "certain"}, {"R8"}),  # 16
    ("temp 37.5", {}, set()),  # 17
    ("pire qu'avant l'opération, 9", {"R9": "certain"}, set()),  # 18
    ("brûlures la nuit comme des décharges", {"V2": "certain"}, set()),  # 19
    ("beaucoup mieux merci", {}, set()),  # 20
    ("ok", {}, set()),  # 21
    ("pansement trop serré orteils violets", {"V6": "certain", "V6B": "certain"}, set()),  # 23
    ("fievre non, rougeur oui qui s'étale", {"R4": "certain"}, set()),  # 24
    ("knee red hot and massive, can't bend it", {"R8": "certain"}, set()),  # 26
    # negations
    ("pas de fièvre", {}, set()),
    ("sans fièvre", {}, set()),
    ("no pus", {}, set()),
    ("no calf pain", {}, set()),
    ("ni pus ni rougeur", {}, set()),
    ("not short of breath", {}, set()),
    ("No fever, no chills", {}, set()),
    ("no fever or chills", {}, set()),
    ("I don't have chest pain", {}, set()),
    ("je n'ai plus de fièvre", {}, set()),
    ("fièvre : non", {}, set()),
    ("it's not bleeding anymore", {}, set()),
    ("je n'ai pas de fièvre mais des frissons", {"R3": "certain"}, set()),
    ("pas de fièvre, mais le mollet est gonflé", {"R2": "certain"}, set()),
    ("j'ai pas mal de fièvre", {"R3": "certain"}, set()),  # "pas mal de" = quite a lot
    # phrases carrying their own negation
    ("je ne peux pas marcher", {"R7": "certain"}, set()),
    ("I cant put weight on it", {"R7": "certain"}, set()),
    ("it won't stop bleeding", {"R10": "certain"}, set()),
    # an answer word before a subject is an answer, not a negation of what follows
    ("no it keeps bleeding", {"R10": "certain"}, set()),
    ("no, the dressing is soaked", {"R10": "certain"}, set()),
    ("non ça saigne toujours", {"R10": "certain"}, set()),
    ("no I can't walk", {"R7": "certain"}, set()),
    # "ne" ... "plus"/"pas" around a phrase denies it; a stopped sign is worth a question
    ("ça ne saigne plus", {}, set()),
    ("le genou ne se dérobe pas", {}, set()),
    ("the bleeding has stopped", {"R10": "doubtful"}, set()),
    ("le saignement s'est arrêté", {"R10": "doubtful"}, set()),
    # temperatures
    ("fièvre 38,2", {"R3": "certain"}, set()),
    ("38°5 ce matin", {"R3": "certain"}, set()),
    ("fièvre 37,8 ce soir", {}, set()),
    ("my temperature is 37", {}, set()),
    ("temperature 37.2 but chills", {"R3": "certain"}, set()),
    # doubtful: typo, hedge, question, bare topic
    ("fiévre", {"R3": "certain"}, set()),  # accents are not typos
    ("frisons cette nuit", {"R3": "doubtful"}, set()),
    ("je suis essouflé", {"R1": "doubtful"}, set()),
    ("peut-être un peu de fièvre", {"R3": "doubtful"}, set()),
    ("I think I have a fever", {"R3": "doubtful"}, set()),
    ("je crois que j'ai de la fièvre", {"R3": "doubtful"}, set()),
    ("c'est normal d'avoir le mollet un peu dur ?", {"R2": "doubtful"}, set()),
    ("is it normal to have blisters", {"R6": "doubtful"}, set()),
    ("mon mollet va bien", {}, set()),  # a topic said to be fine
    ("my calf muscles feel fine after walking", {}, set()),
    ("le mollet, ça va pas bien", {"R2": "doubtful"}, set()),
    ("le mollet n'est pas gonflé", {"R2": "doubtful"}, set()),
    ("la rougeur a diminué", {"R4": "doubtful"}, set()),
    ("la fièvre est tombée", {"R3": "certain", "R7": "doubtful"}, set()),
    # articles and "is"/"est" do not break a phrase
    ("my calf is swollen", {"R2": "certain"}, set()),
    ("the bruise is getting bigger every day", {"V4": "certain"}, set()),
    ("I fell yesterday", {"R7": "certain"}, set()),
    # a phrase inside another flag's longer phrase, degree words alone: ask, do not alarm
    ("knee is red and hot", {"R8": "certain", "R4": "doubtful"}, set()),
    ("the wound is leaking at the bottom of the scar", {"W1": "certain", "R5": "doubtful"}, set()),
    ("much worse", {"R9": "doubtful"}, set()),
    # red flags in everyday words (each former parsing gap, then variants in both languages):
    # paraphrase, word order, verb forms, "hardly"/"à peine", intensifiers
    ("I can hardly breathe", {"R1": "certain"}, set()),  # gap
    ("I can barely breathe when I lie down", {"R1": "certain"}, set()),
    ("I could hardly catch my breath last night", {"R1": "certain"}, set()),
    ("I'm struggling for breath since this morning", {"R1": "certain"}, set()),
    ("j'arrive à peine à respirer", {"R1": "certain"}, set()),
    ("je peux à peine respirer quand je m'allonge", {"R1": "certain"}, set()),
    ("j'ai du mal à reprendre mon souffle", {"R1": "certain"}, set()),
    ("my knee keeps giving way", {"R7": "certain"}, set()),  # gap
    ("my knee gave way on the stairs", {"R7": "certain"}, set()),
    ("the knee keeps buckling under me", {"R7": "certain"}, set()),
    ("mon genou me lâche quand je descends", {"R7": "certain"}, set()),
    ("le genou flanche dans les escaliers", {"R7": "certain"}, set()),
    ("mon genou se dérobe tout le temps", {"R7": "certain"}, set()),
    ("I can't put any weight on my leg", {"R7": "certain"}, set()),  # gap
    ("I can't take any weight on that leg", {"R7": "certain"}, set()),
    ("I can't put my foot down at all", {"R7": "certain"}, set()),
    ("impossible de m'appuyer sur la jambe", {"R7": "certain"}, set()),
    ("je ne peux plus poser le pied par terre", {"R7": "certain"}, set()),
    ("ma jambe ne me porte plus", {"R7": "certain"}, set()),  # gap
    ("mes jambes ne me portent plus depuis hier", {"R7": "certain"}, set()),
    ("ma jambe ne me tient plus", {"R7": "certain"}, set()),
    ("je n'ai plus aucune force dans la jambe", {"R7": "certain"}, set()),
    ("my leg won't hold me up anymore", {"R7": "certain"}, set()),
    ("my legs feel like jelly, they won't hold me", {"R7": "certain"}, set()),
    ("le pansement est trempé de sang", {"R10": "certain"}, set()),  # gap
    ("the bandage is soaked in blood", {"R10": "certain"}, set()),  # gap
    ("blood is soaking through the dressing", {"R10": "certain"}, set()),  # gap
    ("le pansement est imbibé de sang", {"R10": "certain"}, set()),
    ("le sang traverse le pansement depuis ce matin", {"R10": "certain"}, set()),
    ("le pansement est tout rouge de sang", {"R10": "certain"}, set()),
    ("the dressing is soaked through with blood", {"R10": "certain"}, set()),
    ("blood keeps coming through the dressing", {"R10": "certain"}, set()),
    ("there's blood all over the bandage", {"R10": "certain"}, set()),
    ("my knee is huge and boiling hot", {"R8": "certain"}, set()),  # gap
    ("le genou a doublé de volume, il est brûlant", {"R8": "certain"}, set()),  # gap
    ("le genou est tout rouge et chaud", {"R8": "certain"}, {"R4"}),  # gap
    ("the whole knee is red hot and swollen", {"R8": "certain"}, set()),
    ("my knee is the size of a melon and very hot", {"R8": "certain"}, set()),
    ("my knee has ballooned overnight and it's really hot", {"R8": "certain"}, set()),
    ("mon genou est très gonflé et brûlant", {"R8": "certain"}, set()),
    ("le genou est gros comme un ballon et tout chaud", {"R8": "certain"}, set()),
    ("le genou a gonflé d'un coup, il est tout chaud", {"R8": "certain"}, set()),
    ("the skin has turned grey where they froze it", {"R6": "certain"}, set()),  # gap
    ("the skin went grey where they did the freezing", {"R6": "certain"}, set()),
    ("the treated skin looks grey", {"R6": "certain"}, set()),
    ("the skin has gone black around one needle mark", {"R6": "certain"}, set()),
    ("la peau est devenue grise à l'endroit traité", {"R6": "certain"}, set()),
    ("la peau a viré au gris là où ils ont gelé", {"R6": "certain"}, set()),
    ("il y a une tache noire sur la peau", {"R6": "certain"}, set()),
    ("the skin where they froze it is grey", {"R6": "doubtful"}, set()),  # key words apart
    ("it hurts more than before the procedure, painkillers do nothing", {"R9": "certain"}, set()),
    ("it hurts more than before the procedure", {"R9": "certain"}, set()),  # gap
    ("it hurts far more than before the treatment", {"R9": "certain"}, set()),
    ("paracetamol does nothing for the pain", {"R9": "certain"}, set()),
    ("j'ai encore plus mal qu'avant le geste", {"R9": "certain"}, set()),
    ("ça fait plus mal qu'avant l'intervention", {"R9": "certain"}, set()),
    ("les antalgiques ne me soulagent pas", {"R9": "certain"}, set()),
    ("les cachets ne font plus rien", {"R9": "certain"}, set()),
    ("the scar is open at the bottom", {"W1": "certain"}, set()),  # gap
    ("the scar has split open", {"W1": "certain"}, set()),
    ("the wound has opened up at the bottom", {"W1": "certain"}, set()),
    ("the stitches have come undone", {"W1": "certain"}, set()),
    ("la cicatrice s'est ouverte en bas", {"W1": "certain"}, set()),
    ("la plaie est ouverte", {"W1": "certain"}, set()),
    ("les fils ont lâché et la cicatrice s'écarte", {"W1": "certain"}, set()),
    ("le bleu descend vers la cheville", {"V4": "certain"}, set()),  # gap
    ("le bleu descend vers le pied", {"V4": "certain"}, set()),
    ("l'hématome descend le long de la jambe", {"V4": "certain"}, set()),
    ("le bleu s'étale jusqu'à la cheville", {"V4": "certain"}, set()),
    ("the bruise is moving down my leg", {"V4": "certain"}, set()),
    ("the bruising has spread down to my ankle", {"V4": "certain"}, set()),
    ("the bruise is going down towards my foot", {"V4": "certain"}, set()),
    # ... and the same words negated or harmless
    ("my knee doesn't give way", {}, set()),
    ("the knee no longer gives way", {}, set()),
    ("the dressing is not soaked", {}, set()),
    ("no blood soaking through the dressing", {}, set()),
    ("le pansement n'est pas trempé", {}, set()),
    ("le genou n'est pas chaud", {}, set()),
    ("my knee is not hot and not swollen", {}, set()),
    ("the skin hasn't turned grey", {}, set()),
    ("la peau n'est pas devenue grise", {}, set()),
    ("it doesn't hurt more than before", {}, set()),
    ("ça ne fait pas plus mal qu'avant", {}, set()),
    ("the scar is not open", {}, set()),
    ("la cicatrice n'est pas ouverte", {}, set()),
    ("le bleu ne descend pas", {}, set()),
    ("I'm not short of breath at all", {}, set()),
    ("je ne respire pas mal du tout", {}, set()),
    ("hardly any bleeding", {"R10": "doubtful"}, set()),  # "hardly" without "can": a hedge
    ("il saigne à peine", {"R10": "doubtful"}, set()),
    ("I can hardly feel the pain anymore", {}, set()),
    ("j'ai à peine mal", {}, set()),
    ("the painkillers work well", {}, set()),
    ("les antalgiques me soulagent bien", {}, set()),
    ("j'ai moins mal qu'avant", {}, set()),
    ("I have less pain than before", {}, set()),
    ("I can walk much more than before", {}, set()),
    ("j'ai plus de force dans la jambe qu'avant", {}, set()),
    ("il fait chaud aujourd'hui, j'ai mis de la glace sur le genou", {}, set()),
    ("the weather is boiling hot today", {}, set()),
    ("le bleu est jaunâtre", {}, set()),
    ("my hands are shaking", {}, set()),
    ("the stitches were removed yesterday at the clinic", {}, set()),
    ("I took the dressing off this morning, it's clean and dry", {}, set()),
    ("there's a big bruise on the side of my knee, it's going yellow", {}, set()),
    ("je prends le doliprane matin et soir, ça soulage bien", {}, set()),
    # everyday messages: no alarm
    ("Tout va bien merci, le genou est un peu raide le matin", {}, set()),
    ("I walked to the shops today, knee feels better", {}, set()),
    ("La zone sous la rotule est engourdie, c'est normal je crois", {}, set()),
    ("The bruise is turning yellow, getting smaller", {}, set()),
    ("J'ai pris une gélule de doliprane", {}, set()),
    ("Je marche normalement maintenant avec ma canne", {}, set()),
    ("😀👍", {}, set()),
    ("", {}, set()),
]


@pytest.mark.parametrize(("text", "expected", "may_ask"), SCANS)
def test_scan(text: str, expected: dict[str, Certainty], may_ask: set[str]) -> None:
    found = {m.flag: m.certainty for m in scan_red_flags(text, RED_FLAGS)}
    extra = {flag: c for flag, c in found.items() if flag not in expected}
    assert {flag: found.get(flag) for flag in expected} == expected
    assert all(flag in may_ask and c == "doubtful" for flag, c in extra.items()), extra


def test_fever_mention_carries_the_temperature() -> None:
    assert scan_red_flags("j'ai 39 de fièvre", RED_FLAGS) == [FlagMention("R3", "certain", 39.0)]
    assert scan_red_flags("J'AI 38,5 DEPUIS CE MATIN, FIEVRE", RED_FLAGS) == [
        FlagMention("R3", "certain", 38.5)
    ]
    assert scan_red_flags("fièvre 38,2", RED_FLAGS, fever_threshold=38.5) == []


def test_mentions_follow_protocol_order_one_per_flag() -> None:
    mentions = scan_red_flags("pus, fièvre, pus encore, mollet gonflé", RED_FLAGS)
    assert [m.flag for m in mentions] == ["R2", "R3", "R5"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("39", None),
        ("38,2", 38.2),
        ("38.5°", 38.5),
        ("38°5", 38.5),
        ("39 de fièvre", 39.0),
        ("temp 37.5", 37.5),
        ("trente-neuf de fièvre", 39.0),
        ("101 F", 38.3),
        ("pain 7/10", None),
        ("le 12.03", None),
        ("hier 38,5 aujourd'hui 37,2", 38.5),
        ("45 de fièvre", None),
        ("a fever of 38.6, is that normal?", 38.6),  # a comma after the number ends it
        ("fièvre 39, frissons", 39.0),
        ("38.6.7", None),
        ("", None),
    ],
)
def test_read_temperature(text: str, expected: float | None) -> None:
    assert read_temperature(text) == expected


@pytest.mark.parametrize(
    ("text", "topics"),
    [
        ("numb patch below kneecap, normal?", ("numb_skin",)),  # 14
        ("…the skin below the kneecap feels numb, is that normal?", ("numb_skin",)),
        ("la peau sous la rotule est engourdie, c'est normal ?", ("numb_skin",)),
        ("my knee is a bit swollen, is that ok?", ("swelling",)),
        ("j'ai un gros bleu, est-ce grave ?", ("bruise",)),
        ("le genou est gonflé et j'ai un bleu, c'est normal ?", ("swelling", "bruise")),
        ("the skin feels cold, is it normal", ("cold_feeling",)),
        ("my knee is numb", ()),  # no question: a note for staff
        ("pas de bleu, normal ?", ()),  # the topic is denied
        ("is it normal?", ()),  # no topic named
    ],
)
def test_questions_about_the_expected_course(text: str, topics: tuple[str, ...]) -> None:
    assert asked_topics(text, PROTOCOL.education) == topics


def test_parse_choice_directly_uses_every_language() -> None:
    options = PROTOCOL.question("swelling").options
    assert parse_choice("very swollen", options, language="fr").option_id == "severe"
    assert parse_choice("très enflé", options, language="en").option_id == "severe"


def test_parse_yes_no_directly() -> None:
    assert parse_yes_no("ouaip") == Parsed("ok", value=1, option_id="yes")
    assert parse_yes_no("nope") == Parsed("ok", value=0, option_id="no")
    assert parse_yes_no("yes no") == UNCLEAR


def test_scale_bounds_are_the_question_bounds() -> None:
    assert parse_scale("7", minimum=1, maximum=7) == ok(7)
    assert parse_scale("0", minimum=1, maximum=7) == UNCLEAR
    assert parse_scale("4/4", minimum=0, maximum=4) == ok(4)


def test_checklist_without_red_flag_table() -> None:
    question = PROTOCOL.question("flags_full")
    assert parse_question(question, "aucun", language="fr") == ticked()
    assert parse_question(question, "fièvre", language="fr") == UNCLEAR


def test_huge_text_is_capped() -> None:
    """Only the first MAX_CHARS are read (the parsing speed itself is in the bench)."""
    huge = "é😣 le genou va bien " * 20000 + " fièvre 39"
    assert len(huge) > MAX_CHARS
    assert scan_red_flags(huge, RED_FLAGS) == []  # beyond MAX_CHARS: not read
    assert parse_scale(huge) == UNCLEAR
    assert scan_red_flags(huge[: MAX_CHARS - 20] + " fièvre 39", RED_FLAGS) != []


# ---------------------------------------------------------------------- property tests

NUMBER_WORDS = {
    0: ("zero",),
    1: ("un", "une", "one"),
    2: ("deux", "two"),
    3: ("trois", "three"),
    4: ("quatre", "four"),
    5: ("cinq", "five"),
    6: ("six",),
    7: ("sept", "seven"),
    8: ("huit", "eight"),
    9: ("neuf", "nine"),
    10: ("dix", "ten"),
}


def literal_values(text: str) -> set[int]:
    """Every value 0..10 written in the text, as digits (rounded half up) or a number word."""
    plain = unidecode(text.replace("°", " ")).lower()
    values = set()
    for match in re.finditer(r"\d+(?:[.,]\d+)?", plain):
        number = Decimal(match.group().replace(",", "."))
        values.add(int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP)))
        values.update(int(part) for part in re.findall(r"\d+", match.group()))
    for value, words in NUMBER_WORDS.items():
        if any(re.search(rf"\b{word}\b", plain) for word in words):
            values.add(value)
    return values


VOCABULARY = [
    *(w for words in NUMBER_WORDS.values() for w in words),
    *(str(i) for i in range(13)),
    "6.5", "38,5", "/10", "sur", "10", "-", "ou", "or", "entre", "et", "between", "and",
    "pas", "de", "fièvre", "fever", "no", "non", "oui", "mollet", "calf", "pus", "😣", "!!",
    "?", ",", "peut-être", "un peu", "gonflé", "jours", "h", "°", "moins", "dix-sept", "é",
]  # fmt: skip
sentences = st.lists(st.sampled_from(VOCABULARY), max_size=12).map(" ".join)
any_text = st.one_of(
    st.text(),
    st.text(max_size=40).map(lambda s: s * 300),  # long, repetitive
    sentences,
)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(any_text)
def test_scale_never_invents_a_number(text: str) -> None:
    parsed = parse_scale(text)
    assert isinstance(parsed, Parsed)
    assert parsed.status in ("ok", "unclear")
    if parsed.status == "ok":
        assert isinstance(parsed.value, int)
        assert 0 <= parsed.value <= 10
        assert parsed.value in literal_values(text[:MAX_CHARS])
    else:
        assert parsed.value is None


@PROPERTY
@given(any_text)
def test_nothing_raises_on_any_text(text: str) -> None:
    assert parse_yes_no(text).status in ("ok", "unclear")
    temperature = read_temperature(text)
    assert temperature is None or 35.0 <= temperature <= 42.0
    mentions = scan_red_flags(text, RED_FLAGS)
    assert all(isinstance(m, FlagMention) and m.flag in RED_FLAGS for m in mentions)
    assert len({m.flag for m in mentions}) == len(mentions)
    assert all(m.certainty in ("certain", "doubtful") for m in mentions)
    options = PROTOCOL.question("swelling").options
    choice = parse_choice(text, options, language="fr")
    assert choice.status == "unclear" or choice.option_id in {o.id for o in options}


@PROPERTY
@given(st.sampled_from([q.id for q in PROTOCOL.questions]), any_text)
def test_every_question_type_returns_a_parsed(question_id: str, text: str) -> None:
    question = PROTOCOL.question(question_id)
    parsed = parse_question(question, text, language="fr", red_flags=RED_FLAGS)
    assert isinstance(parsed, Parsed)
    assert parsed.status in ("ok", "unclear", "skip")
    assert parsed.flags <= set(PROTOCOL.flags_of(question))
    if parsed.status == "skip":
        assert question.optional


# Every red-flag phrase of the protocol, in a short everyday sentence of its language, is read
# as its flag; the same phrase after a clear negation is never read as certain.
IN_A_SENTENCE = {
    "fr": ("depuis hier {}", "{} ce matin"),
    "en": ("since yesterday {}", "{} this morning"),
}
# "pas de …"/"no …" in front of a noun phrase; a phrase that is a clause ("je suis tombé",
# "the knee gives way") is negated as a whole.
NEGATED = {"fr": "pas de {}", "en": "no {}"}
NEGATED_CLAUSE = {"fr": "ce n'est pas vrai que {}", "en": "it is not true that {}"}
CLAUSE_START = {
    "fr": re.compile(
        r"^(?:je|j'|ça|ca|c'|il|elle|le|la|les|l'|ma|mon|mes)\b"
        r"|\b(?:suis|est|sont|ai|ont|saigne|coule|suinte|lâche|flanche|descend|grossit"
        r"|s'étend|s'étale|s'ouvre|s'écarte|gonfle|enfle)\b"
    ),
    "en": re.compile(
        r"^(?:i|it|my|the)\b|\b(?:is|are|was|has|have|had|gives|gave|keeps|looks|feels|hurts"
        r"|smells|aches|fell|doubled|ballooned|blew|came|split|burst|buckled|collapsed|turned"
        r"|helps|touches|stinks|does|do)\b"
    ),
}
# Phrases that carry their own negation ("can't walk", "je ne peux pas marcher", "rien ne
# soulage"): a negation in front would be a double negation, so only the first half applies.
OWN_NEGATION = re.compile(
    r"\b(?:pas|ne|n'|rien|jamais|aucun|aucune|sans|impossible|not|no|nothing|never|none"
    r"|unable|cannot|cant|wont)\b|n't\b"
)


def phrases_by_flag() -> list[tuple[str, str, str]]:
    return [
        (flag, language, phrase)
        for flag, red_flag in RED_FLAGS.items()
        for language, phrases in red_flag.phrases.root.items()
        for phrase in phrases
    ]


@pytest.mark.parametrize("flag", list(RED_FLAGS))
def test_every_protocol_phrase_is_read_in_a_sentence_and_negated(flag: str) -> None:
    missed: list[str] = []
    alarmed: list[str] = []
    for flag_id, language, phrase in phrases_by_flag():
        if flag_id != flag:
            continue
        for template in IN_A_SENTENCE[language]:
            text = template.format(phrase)
            if flag not in {m.flag for m in scan_red_flags(text, RED_FLAGS)}:
                missed.append(text)
        plain = phrase.lower().replace("’", "'")
        if OWN_NEGATION.search(plain):
            continue
        clause = CLAUSE_START[language].search(plain)
        template = (NEGATED_CLAUSE if clause else NEGATED)[language]
        text = template.format(phrase)
        certain = [m.flag for m in scan_red_flags(text, RED_FLAGS) if m.certainty == "certain"]
        if certain:
            alarmed.append(f"{text} -> {certain}")
    assert (missed, alarmed) == ([], [])


def test_property_covers_every_phrase_and_both_templates() -> None:
    triples = phrases_by_flag()
    assert {language for _f, language, _p in triples} == {"fr", "en"}
    assert len(triples) >= 500
    negated = [(lang, p.lower()) for _f, lang, p in triples if not OWN_NEGATION.search(p.lower())]
    assert any(CLAUSE_START[lang].search(p) for lang, p in negated)
    assert any(not CLAUSE_START[lang].search(p) for lang, p in negated)
