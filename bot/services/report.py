"""Unit statistics for the team's quality meetings (``python -m bot report``).

Four questions a quality meeting asks: do patients answer (response rate per time point), how
does pain evolve (median and quartiles per day since the procedure), what do the alerts say
(count per rule) and how fast does the team react (median time to acknowledgement). The numbers
are computed once into a :class:`UnitReport`, then drawn as a text table, a PNG and a
self-contained HTML page (the PNG embedded), so the three never disagree.
"""

from __future__ import annotations

import io
import statistics
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from bot.db.queries.views import alert_timings, closed_checkin_counts, pain_answers
from bot.domain.protocol import Severity
from bot.domain.states import AlertStatus, CheckInStatus
from bot.i18n import t
from bot.services.charts import pain_question_ids
from bot.services.context import ServiceContext
from bot.services.tables import html_page, text_tables

#: Check-in states that count as "due": the time point came and went (or is open now).
CHUNK = 5000
WIDTH_PX = 1000
HEIGHT_PX = 450
_DPI = 100
_LOCK = threading.Lock()


@dataclass(frozen=True)
class TimePointRate:
    """Answers at one time point: answered in full, in part, or not at all."""

    time_point: str
    answered: int
    partial: int
    missed: int

    @property
    def due(self) -> int:
        """Check-ins of this time point whose window has closed."""
        return self.answered + self.partial + self.missed

    @property
    def rate(self) -> float:
        """Share of due check-ins with at least one answer (0 when none was due)."""
        return (self.answered + self.partial) / self.due if self.due else 0.0


@dataclass(frozen=True)
class DayPain:
    """Pain on one day since the procedure: quartiles of every answer that day."""

    day: int
    count: int
    q1: float
    median: float
    q3: float


@dataclass(frozen=True)
class RuleCount:
    """Alerts raised by one rule, and how many are still open."""

    rule_id: str
    severity: str
    total: int
    still_open: int


@dataclass
class UnitReport:
    """Every figure of the report, computed once."""

    generated_at: datetime
    since: datetime | None
    response: list[TimePointRate] = field(default_factory=list)
    pain: list[DayPain] = field(default_factory=list)
    alerts: list[RuleCount] = field(default_factory=list)
    ack_minutes_median: float | None = None
    ack_count: int = 0
    ack_by_severity: dict[str, tuple[float, int]] = field(default_factory=dict)


def _quartiles(values: list[int]) -> tuple[float, float, float]:
    if len(values) == 1:
        return float(values[0]), float(values[0]), float(values[0])
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


async def build_report(ctx: ServiceContext, *, since: datetime | None = None) -> UnitReport:
    """Compute the unit's statistics (everything, or what happened since ``since``)."""
    report = UnitReport(generated_at=ctx.clock.now(), since=since)
    protocols = ctx.protocols.registry.all()
    order = {
        checkin.id: index
        for protocol in protocols
        for index, checkin in enumerate(protocol.checkins)
    }
    pain_ids = sorted({qid for protocol in protocols for qid in pain_question_ids(protocol)})
    async with ctx.sessions() as session:
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for def_id, status, count in await closed_checkin_counts(session, since=since):
            counts[def_id][status] = count
        report.response = [
            TimePointRate(
                def_id,
                by[CheckInStatus.ANSWERED],
                by[CheckInStatus.PARTIAL],
                by[CheckInStatus.MISSED],
            )
            for def_id, by in sorted(
                counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0])
            )
        ]

        by_day: dict[int, list[int]] = defaultdict(list)
        async for day, value in pain_answers(
            session, question_ids=pain_ids, since=since, chunk=CHUNK
        ):
            if value is not None:
                by_day[day].append(value)
        report.pain = [
            DayPain(day, len(values), *_quartiles(values)) for day, values in sorted(by_day.items())
        ]

        totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        delays: dict[str, list[float]] = defaultdict(list)
        for rule_id, severity, alert_status, created_at, acknowledged_at in await alert_timings(
            session, since=since
        ):
            totals[(rule_id, severity)][0] += 1
            totals[(rule_id, severity)][1] += alert_status != AlertStatus.RESOLVED
            if acknowledged_at is not None:
                delays[severity].append((acknowledged_at - created_at).total_seconds() / 60)
    report.alerts = sorted(
        (
            RuleCount(rule, severity, total, still)
            for (rule, severity), (total, still) in totals.items()
        ),
        key=lambda row: (Severity(row.severity).rank, -row.total, row.rule_id),
    )
    every_delay = [delay for values in delays.values() for delay in values]
    if every_delay:
        report.ack_minutes_median = statistics.median(every_delay)
        report.ack_count = len(every_delay)
    report.ack_by_severity = {
        severity: (statistics.median(values), len(values))
        for severity, values in sorted(delays.items(), key=lambda item: Severity(item[0]).rank)
    }
    return report


def _minutes(value: float | None, language: str) -> str:
    if value is None:
        return "—"
    if value < 90:
        return t(language, "{minutes} minutes", minutes=round(value))
    return t(language, "{hours} hours", hours=f"{value / 60:.1f}")


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _title(report: UnitReport, language: str) -> str:
    if report.since is None:
        return t(language, "Unit report — all follow-ups")
    return t(language, "Unit report — since {date}", date=report.since.strftime("%Y-%m-%d"))


def table_sections(
    report: UnitReport, language: str
) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as (title, header, rows) sections: the text table and the HTML share them."""
    response_rows = [
        [
            row.time_point,
            str(row.due),
            str(row.answered),
            str(row.partial),
            str(row.missed),
            f"{row.rate * 100:.0f} %",
        ]
        for row in report.response
    ]
    pain_rows = [
        [
            t(language, "D{day}", day=row.day),
            str(row.count),
            _number(row.median),
            _number(row.q1),
            _number(row.q3),
        ]
        for row in report.pain
    ]
    alert_rows = [
        [row.rule_id, t(language, row.severity), str(row.total), str(row.still_open)]
        for row in report.alerts
    ]
    ack_rows = [
        [t(language, "all"), _minutes(report.ack_minutes_median, language), str(report.ack_count)],
        *(
            [t(language, severity), _minutes(median, language), str(count)]
            for severity, (median, count) in report.ack_by_severity.items()
        ),
    ]
    return [
        (
            t(language, "Response rate per time point"),
            [
                t(language, "time point"),
                t(language, "due"),
                t(language, "answered"),
                t(language, "partly answered"),
                t(language, "no answer"),
                t(language, "rate"),
            ],
            response_rows,
        ),
        (
            t(language, "Pain per day since the procedure (0-10)"),
            [t(language, "day"), "n", t(language, "median"), "Q1", "Q3"],
            pain_rows,
        ),
        (
            t(language, "Alerts per rule"),
            [
                t(language, "rule"),
                t(language, "severity"),
                t(language, "alerts"),
                t(language, "still open"),
            ],
            alert_rows,
        ),
        (
            t(language, "Median time to acknowledgement"),
            [t(language, "severity"), t(language, "median"), "n"],
            ack_rows,
        ),
    ]


def render_table(report: UnitReport, language: str) -> str:
    """The report as aligned plain-text tables (for the terminal)."""
    return text_tables(_title(report, language), table_sections(report, language), language)


def render_png(report: UnitReport, language: str) -> bytes:
    """Two panels: median pain with its interquartile band per day; response rate per time point."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # slow import: only when drawing
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    with _LOCK:
        figure = Figure(figsize=(WIDTH_PX / _DPI, HEIGHT_PX / _DPI), dpi=_DPI)
        FigureCanvasAgg(figure)
        pain_axes, rate_axes = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        figure.suptitle(_title(report, language), fontsize=11, x=0.01, ha="left")
        pain_axes.set_title(t(language, "Pain per day since the procedure (0-10)"), fontsize=10)
        pain_axes.set_ylim(-0.3, 10.5)
        pain_axes.grid(True, axis="y", alpha=0.3)
        pain_axes.set_xlabel(t(language, "Days since the procedure"))
        if report.pain:
            days = [row.day for row in report.pain]
            pain_axes.fill_between(
                days,
                [row.q1 for row in report.pain],
                [row.q3 for row in report.pain],
                color="tab:blue",
                alpha=0.2,
                label="Q1-Q3",
            )
            pain_axes.plot(
                days,
                [row.median for row in report.pain],
                color="tab:blue",
                marker="o",
                label=t(language, "median"),
            )
            if max(days) > 21:
                pain_axes.set_xscale("symlog", linthresh=14, linscale=2.0)
            ticks = [d for d in (0, 1, 2, 3, 7, 14, 42, 91, 182) if d <= max(days)] or [0]
            pain_axes.xaxis.set_major_locator(FixedLocator(ticks))
            pain_axes.xaxis.set_minor_locator(NullLocator())
            pain_axes.set_xticklabels([t(language, "D{day}", day=d) for d in ticks])
            pain_axes.legend(loc="upper right", fontsize=8)
        rate_axes.set_title(t(language, "Response rate per time point"), fontsize=10)
        rate_axes.set_ylim(0, 105)
        rate_axes.set_ylabel("%")
        if report.response:
            names = [row.time_point for row in report.response]
            rate_axes.bar(range(len(names)), [row.rate * 100 for row in report.response])
            rate_axes.xaxis.set_major_locator(FixedLocator(list(range(len(names)))))
            rate_axes.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def render_html(report: UnitReport, language: str, png: bytes) -> str:
    """A self-contained HTML page (tables and the PNG inline) to open or mail as one file."""
    return html_page(
        _title(report, language),
        table_sections(report, language),
        language,
        pictures={t(language, "Charts"): png},
    )
