"""The outcomes a unit can publish (``python -m bot outcomes``, ``/outcomes``).

Cryoneurolysis is offered for four outcomes: less pain, better function, better quality of life
and less opioid use, with relief lasting months until the nerves regrow. This module computes,
for the unit's own patients and split by indication (osteoarthritis, chronic knee pain, around a
knee replacement: the three groups of the literature), per time point: how many answered, the
pain change from baseline (median and interquartile range), the share reaching the minimal
clinically important difference (the protocol's ``relief:`` thresholds), KOOS JR and WHO-5 and
their change, and the share taking any opioid against the same patients' baseline; and a
Kaplan-Meier estimate of how long relief lasts, censored at each patient's last answer.

Statistics come from kept libraries, not hand-written estimators: numpy's percentiles (linear
interpolation, the same as ``statistics.quantiles(method="inclusive")``) and scipy's
``stats.ecdf`` on right-censored data, which is the Kaplan-Meier product-limit estimator
(scipy rather than lifelines: one well-kept dependency that matplotlib's numpy already brings
halfway, where lifelines would add pandas, autograd and formulaic). Numbers are shown with their
n, and nothing is extrapolated: a Kaplan-Meier point is given only while someone is still
followed at that time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from bot.db.queries.outcomes import outcome_answers, outcome_checkins, outcome_episodes
from bot.domain.painkillers import any_opioid
from bot.domain.protocol import Indication, Protocol
from bot.domain.relief import DAYS_PER_MONTH, Relief, derive_relief, reaches_mcid
from bot.domain.states import DUE_STATES, CheckInStatus
from bot.services.context import ServiceContext

#: The groups of the literature (a 2023 review: knee osteoarthritis, chronic knee pain, around a
#: total knee replacement), by the indications enrolment records.
GROUPS: dict[str, tuple[Indication, ...]] = {
    "osteoarthritis": (Indication.OSTEOARTHRITIS,),
    "chronic_pain": (Indication.CHRONIC_PAIN,),
    "knee_replacement": (Indication.BEFORE_KNEE_REPLACEMENT, Indication.AFTER_KNEE_REPLACEMENT),
}
ALL = "all"
#: Months at which the Kaplan-Meier estimate is read out (at month x 30.44 days).
KM_MONTHS = (1, 3, 6)
#: A patient whose last answer came up to this many days before a read-out still counts as
#: followed at it: a month-3 check-in falls on day 89 to 92 depending on the calendar, and its
#: window is open three days. Past that, no one is followed and no point is given.
FOLLOW_UP_GRACE_DAYS = 7
KOOS_SCORE = "koos_jr_score"
WHO5_SCORE = "who5_score"


@dataclass(frozen=True)
class Spread:
    """Median and interquartile range of ``n`` values (None when n = 0)."""

    n: int
    median: float | None = None
    q1: float | None = None
    q3: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values`` (numpy percentiles, linear interpolation)."""
        if not values:
            return cls(0)
        q1, median, q3 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
        return cls(len(values), float(median), float(q1), float(q3))


@dataclass(frozen=True)
class Share:
    """``count`` out of ``n``."""

    count: int
    n: int

    @property
    def rate(self) -> float | None:
        """The share (None when n = 0: no denominator, no percentage)."""
        return self.count / self.n if self.n else None


@dataclass(frozen=True)
class TimePointOutcome:
    """Every outcome at one time point of one group."""

    time_point: str
    day: int | None
    """Median day since the procedure of the pain answers (where to plot the point)."""
    due: int
    responded: int
    pain_change: Spread
    mcid: Share
    koos: Spread
    koos_change: Spread
    who5: Spread
    who5_change: Spread
    opioid: Share
    opioid_at_baseline: Share
    """The same patients' opioid use in the week before the procedure (paired)."""

    @property
    def response(self) -> Share:
        """Check-ins of this time point answered at least in part, among those due."""
        return Share(self.responded, self.due)


@dataclass(frozen=True)
class KaplanMeier:
    """How long relief lasts, among the patients who reached it (days since the procedure)."""

    with_relief: int
    ended: int
    never_relieved: int
    no_baseline: int
    points: dict[int, tuple[float | None, int]]
    """Month -> (share still relieved, patients still followed); None past the follow-up."""
    times: tuple[float, ...] = ()
    survival: tuple[float, ...] = ()
    censored: tuple[float, ...] = ()


@dataclass
class GroupOutcomes:
    """One group's outcomes."""

    name: str
    patients: int
    baseline_pain: Spread
    time_points: list[TimePointOutcome] = field(default_factory=list)
    relief: KaplanMeier | None = None


@dataclass
class OutcomesReport:
    """The whole report, computed once (text, figures, HTML and /outcomes share it)."""

    generated_at: datetime
    since: datetime | None
    indication: str | None
    groups: list[GroupOutcomes] = field(default_factory=list)


@dataclass
class _Episode:
    """One follow-up's outcome data, by time point."""

    indication: Indication
    protocol: Protocol
    baseline: int | None
    pain: dict[str, tuple[int, int]] = field(default_factory=dict)
    painkillers: dict[str, frozenset[str]] = field(default_factory=dict)
    baseline_painkillers: frozenset[str] | None = None
    koos: dict[str, float] = field(default_factory=dict)
    who5: dict[str, float] = field(default_factory=dict)
    states: dict[str, CheckInStatus] = field(default_factory=dict)

    def baseline_checkin(self) -> str | None:
        """The check-in asking about the week before the procedure (baseline PROMs)."""
        for checkin in self.protocol.checkins:
            for question_id in checkin.questions:
                question = self.protocol.question(question_id)
                if question.type == "painkillers" and question.baseline:
                    return checkin.id
        return None

    def relief(self) -> Relief | None:
        """Relief of this episode (None when the protocol defines none)."""
        if self.protocol.relief is None:
            return None
        ordered = sorted(self.pain.values())
        return derive_relief(self.protocol.relief, baseline=self.baseline, values=ordered)


def groups_for(indication: str | None) -> dict[str, tuple[Indication, ...]]:
    """The groups a report shows: every group, or the one named (a group or an indication)."""
    if indication is None:
        return GROUPS
    if indication in GROUPS:
        return {indication: GROUPS[indication]}
    return {indication: (Indication(indication),)}


async def _load(
    ctx: ServiceContext, *, since: datetime | None, indications: Iterable[Indication] | None
) -> list[_Episode]:
    wanted = None if indications is None else [i.value for i in indications]
    episodes: dict[int, _Episode] = {}
    async with ctx.sessions() as session:
        rows = await outcome_episodes(session, since=since, indications=wanted)
        protocols: dict[int, Protocol] = {}
        for episode, _label in rows:
            if episode.protocol_version_id not in protocols:
                protocols[episode.protocol_version_id] = await ctx.protocols.protocol_of(
                    session, episode.protocol_version_id
                )
            episodes[episode.id] = _Episode(
                Indication(episode.indication),
                protocols[episode.protocol_version_id],
                episode.baseline_pain,
            )
        if not episodes:
            return []
        question_ids = {KOOS_SCORE, WHO5_SCORE}
        kinds: dict[str, str] = {}
        for protocol in protocols.values():
            question_ids.add(protocol.tracked_question)
            kinds[protocol.tracked_question] = "pain"
            for question in protocol.questions:
                if question.type == "painkillers":
                    question_ids.add(question.id)
                    kinds[question.id] = "baseline_pk" if question.baseline else "pk"
        kinds[KOOS_SCORE], kinds[WHO5_SCORE] = "koos", "who5"
        ids = list(episodes)
        for episode_id, def_id, question_id, value, score, choices, day in await outcome_answers(
            session, episode_ids=ids, question_ids=question_ids
        ):
            data, kind = episodes[episode_id], kinds.get(question_id)
            if kind == "pain" and value is not None:
                data.pain[def_id] = (day, value)
            elif kind == "pk":
                data.painkillers[def_id] = frozenset(choices or ())
            elif kind == "baseline_pk":
                data.baseline_painkillers = frozenset(choices or ())
            elif kind in ("koos", "who5") and (score is not None or value is not None):
                target = data.koos if kind == "koos" else data.who5
                target[def_id] = float(score if score is not None else value)
        for episode_id, def_id, status in await outcome_checkins(session, episode_ids=ids):
            episodes[episode_id].states[def_id] = status
    return list(episodes.values())


def _time_points(episodes: Sequence[_Episode]) -> list[str]:
    """Time points that ask the tracked pain, in protocol order (first protocol first)."""
    order: list[str] = []
    for data in episodes:
        for checkin in data.protocol.checkins:
            if data.protocol.tracked_question in checkin.questions and checkin.id not in order:
                order.append(checkin.id)
    return order


def _time_point(episodes: Sequence[_Episode], def_id: str) -> TimePointOutcome:
    due = sum(1 for e in episodes if e.states.get(def_id) in DUE_STATES)
    responded = sum(
        1
        for e in episodes
        if e.states.get(def_id) in (CheckInStatus.ANSWERED, CheckInStatus.PARTIAL)
    )
    changes, days, reached = [], [], 0
    for e in episodes:
        if def_id not in e.pain or e.baseline is None:
            continue
        day, value = e.pain[def_id]
        changes.append(float(value - e.baseline))
        days.append(day)
        definition = e.protocol.relief
        if definition is not None and reaches_mcid(definition, baseline=e.baseline, value=value):
            reached += 1
    koos = [e.koos[def_id] for e in episodes if def_id in e.koos]
    who5 = [e.who5[def_id] for e in episodes if def_id in e.who5]
    koos_change, who5_change = [], []
    opioid = opioid_before = paired = 0
    for e in episodes:
        base = e.baseline_checkin()
        if base is not None and base != def_id:
            if def_id in e.koos and base in e.koos:
                koos_change.append(e.koos[def_id] - e.koos[base])
            if def_id in e.who5 and base in e.who5:
                who5_change.append(e.who5[def_id] - e.who5[base])
        if def_id in e.painkillers and e.baseline_painkillers is not None:
            paired += 1
            opioid += any_opioid(e.painkillers[def_id])
            opioid_before += any_opioid(e.baseline_painkillers)
    return TimePointOutcome(
        time_point=def_id,
        day=int(np.median(days)) if days else None,
        due=due,
        responded=responded,
        pain_change=Spread.of(changes),
        mcid=Share(reached, len(changes)),
        koos=Spread.of(koos),
        koos_change=Spread.of(koos_change),
        who5=Spread.of(who5),
        who5_change=Spread.of(who5_change),
        opioid=Share(opioid, paired),
        opioid_at_baseline=Share(opioid_before, paired),
    )


def kaplan_meier(reliefs: Sequence[Relief | None]) -> KaplanMeier:
    """Kaplan-Meier estimate of relief kept, from the procedure, among those who had relief.

    An ended relief is an event at its end day; a kept one is censored at the last answer.
    """
    events: list[float] = []
    censored: list[float] = []
    never = no_baseline = 0
    for relief in reliefs:
        if relief is None or (relief.onset_day is None and relief.last_day is None):
            no_baseline += 1
        elif relief.onset_day is None:
            never += 1
        elif relief.ended_day is not None:
            events.append(float(relief.ended_day))
        else:
            censored.append(float(relief.last_day if relief.last_day is not None else 0))
    durations = events + censored
    points: dict[int, tuple[float | None, int]] = {}
    if not durations:
        return KaplanMeier(0, 0, never, no_baseline, {m: (None, 0) for m in KM_MONTHS})
    from scipy import stats  # a 1 s import: only where it is used, not in every CLI command

    estimate = stats.ecdf(stats.CensoredData(uncensored=events, right=censored)).sf
    for month in KM_MONTHS:
        at = month * DAYS_PER_MONTH
        followed = sum(1 for d in durations if d >= at - FOLLOW_UP_GRACE_DAYS)
        value = float(estimate.evaluate(at)) if followed else None
        points[month] = (value, followed)
    return KaplanMeier(
        with_relief=len(durations),
        ended=len(events),
        never_relieved=never,
        no_baseline=no_baseline,
        points=points,
        times=tuple(float(t) for t in estimate.quantiles),
        survival=tuple(float(p) for p in estimate.probabilities),
        censored=tuple(sorted(censored)),
    )


def _group(name: str, episodes: Sequence[_Episode], order: Sequence[str]) -> GroupOutcomes:
    group = GroupOutcomes(
        name=name,
        patients=len(episodes),
        baseline_pain=Spread.of([float(e.baseline) for e in episodes if e.baseline is not None]),
    )
    for def_id in order:
        outcome = _time_point(episodes, def_id)
        if outcome.due or outcome.pain_change.n:
            group.time_points.append(outcome)
    group.relief = kaplan_meier([e.relief() for e in episodes])
    return group


async def build_outcomes(
    ctx: ServiceContext, *, since: datetime | None = None, indication: str | None = None
) -> OutcomesReport:
    """Compute the outcomes (every follow-up, or those whose procedure is since ``since``)."""
    groups = groups_for(indication)
    wanted = None if indication is None else [i for group in groups.values() for i in group]
    episodes = await _load(ctx, since=since, indications=wanted)
    report = OutcomesReport(generated_at=ctx.clock.now(), since=since, indication=indication)
    order = _time_points(episodes)
    by_group: dict[str, list[_Episode]] = defaultdict(list)
    for data in episodes:
        for name, members in groups.items():
            if data.indication in members:
                by_group[name].append(data)
    if indication is None:
        report.groups.append(_group(ALL, episodes, order))
    for name in groups:
        if by_group.get(name):
            report.groups.append(_group(name, by_group[name], order))
    return report
