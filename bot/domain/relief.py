"""Relief after cryoneurolysis, per episode: when it came, whether it lasted, when it ended.

The freeze stuns the sensory nerves for a few months, then they regrow and the pain comes back.
A unit wants to know, for each patient, when relief started (the first check-in where pain fell
by the minimal clinically important difference: ``percent`` % or ``points`` points below the
baseline), and when it ended (pain back within ``back_within`` points of the baseline at
``consecutive`` check-ins in a row). The thresholds are protocol data (``relief:``); this module
only applies them, purely, to one value per check-in.

The end is dated at the first check-in of the run (when the pain came back) and confirmed at the
last (when we know): the duration of relief is measured from the procedure to that first one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain.protocol import ReliefDefinition

__all__ = ["DAYS_PER_MONTH", "Relief", "derive_relief", "month_of", "reaches_mcid"]

#: The mean length of a month (365.25 / 12): "month 3" of a report is day 91.3.
DAYS_PER_MONTH = 30.4375


def month_of(day: int) -> int:
    """The month since the procedure a day falls in, rounded ("relief wearing off at month 3")."""
    return max(0, round(day / DAYS_PER_MONTH))


def reaches_mcid(definition: ReliefDefinition, *, baseline: int, value: int) -> bool:
    """True when ``value`` is at least ``percent`` % or ``points`` points below ``baseline``.

    Integer arithmetic (value * 100 <= baseline * (100 - percent)), so 30 % of 7 is exact; a
    baseline of 0 has no relief to find.
    """
    if baseline <= 0:
        return False
    drop = baseline - value
    return drop >= definition.points or value * 100 <= baseline * (100 - definition.percent)


@dataclass(frozen=True)
class Relief:
    """What one episode's pain answers say about relief (days since the procedure)."""

    onset_day: int | None
    """First check-in reaching the MCID; None when relief never came."""
    ended_day: int | None
    """First check-in of the run that ended relief; None while relief is kept."""
    confirmed_day: int | None
    """Last check-in of that run (when the end became known)."""
    last_day: int | None
    """Last check-in with a pain answer (where a kept relief is censored)."""

    @property
    def had_relief(self) -> bool:
        """True when pain ever fell by the MCID."""
        return self.onset_day is not None

    @property
    def kept(self) -> bool:
        """True when relief came and has not ended (yet)."""
        return self.onset_day is not None and self.ended_day is None


def derive_relief(
    definition: ReliefDefinition, *, baseline: int | None, values: Sequence[tuple[int, int]]
) -> Relief:
    """Relief from ``values``: (day, pain) of one answer per check-in, in chronological order.

    Without a baseline nothing can be said (all None but ``last_day``).
    """
    last_day = values[-1][0] if values else None
    if baseline is None:
        return Relief(None, None, None, last_day)
    onset: int | None = None
    run: list[int] = []
    for day, value in values:
        if onset is None:
            if reaches_mcid(definition, baseline=baseline, value=value):
                onset = day
            continue
        if value >= baseline - definition.back_within:
            run.append(day)
            if len(run) >= definition.consecutive:
                return Relief(onset, run[0], run[-1], last_day)
        else:
            run = []
    return Relief(onset, None, None, last_day)
