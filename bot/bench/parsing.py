"""How long reading a patient's free text for red flags takes, against a naive keyword scan of
the same phrases in the same run (the ratio is what the bench reports, not an absolute time).

The naive scan lower-cases, strips accents and looks for each phrase as a substring: no
negation, no lemmas, no temperatures. The real scan does all of that, so it costs more; the
row says how much more, and per-call microseconds on this machine.
"""

from __future__ import annotations

import time
from typing import Any

from unidecode import unidecode

from bot.domain.parsing import scan_red_flags
from bot.protocols import ProtocolRegistry, default_schedules_dir

#: A typical message (about 160 characters) that names body parts but reports no red flag.
TEXT = (
    "Bonjour, le genou est un peu gonflé ce matin, pas de fièvre mais le mollet me tire "
    "un peu quand je marche, est-ce normal ? J'ai pris mon doliprane, merci beaucoup."
)
#: The old timed test's bound, kept as the bench's target: under a millisecond per message.
TARGET_US = 1000.0


def parsing_speed(runs: int) -> dict[str, Any]:
    """Microseconds per message for the real red-flag scan and for the naive one."""
    protocols = ProtocolRegistry.from_dir(default_schedules_dir()).all()
    red_flags = next(p for p in protocols if p.id == "knee-cryoneurolysis").red_flags
    phrases = [unidecode(p).lower() for flag in red_flags.values() for p in flag.phrases.all()]

    def naive(text: str) -> list[str]:
        folded = unidecode(text).lower()
        return [phrase for phrase in phrases if phrase in folded]

    scan_red_flags(TEXT, red_flags)  # warm the phrase cache, as the running bot has it
    started = time.perf_counter()
    for i in range(runs):
        scan_red_flags(f"{TEXT} {i}", red_flags)
    real_us = (time.perf_counter() - started) / runs * 1e6
    started = time.perf_counter()
    for i in range(runs):
        naive(f"{TEXT} {i}")
    naive_us = (time.perf_counter() - started) / runs * 1e6
    return {
        "runs": runs,
        "chars": len(TEXT),
        "scan_us": real_us,
        "naive_us": naive_us,
        "ratio": real_us / naive_us if naive_us else float("nan"),
        "phrases": len(phrases),
    }
