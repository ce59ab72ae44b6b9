"""The outcomes report drawn: text tables, two PNG figures, one HTML page, one JSON file.

All are drawn from one :class:`~bot.services.outcomes.OutcomesReport`, so they never disagree.
Small numbers are shown as they are ("n = 3" beside every figure) and nothing is drawn where no
patient was followed: a curve stops at the last answer, a time point without answers is left
out rather than interpolated.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from bot.i18n import t
from bot.services.outcomes import KM_MONTHS, OutcomesReport, Share, Spread
from bot.services.tables import html_page, text_tables

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_LOCK = threading.Lock()
_DPI = 100
_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def group_title(name: str, language: str) -> str:
    """A group as the report names it."""
    names = {
        "all": t(language, "All patients"),
        "osteoarthritis": t(language, "Knee osteoarthritis"),
        "chronic_pain": t(language, "Chronic knee pain"),
        "knee_replacement": t(language, "Around a knee replacement"),
        "before_knee_replacement": t(language, "before_knee_replacement"),
        "after_knee_replacement": t(language, "after_knee_replacement"),
    }
    return names.get(name, name)


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def spread_text(spread: Spread) -> str:
    """'-3 [-4; -2] (n = 5)', or '—' without values."""
    if spread.n == 0 or spread.median is None or spread.q1 is None or spread.q3 is None:
        return "—"
    return f"{_number(spread.median)} [{_number(spread.q1)}; {_number(spread.q3)}] (n = {spread.n})"


def share_text(share: Share) -> str:
    """'2/3 (67 %)', or '—' without a denominator."""
    rate = share.rate
    if rate is None:
        return "—"
    return f"{share.count}/{share.n} ({rate * 100:.0f} %)"


def _title(report: OutcomesReport, language: str) -> str:
    if report.since is None:
        return t(language, "Outcomes — all follow-ups")
    return t(language, "Outcomes — procedures since {date}", date=report.since.strftime("%Y-%m-%d"))


def table_sections(
    report: OutcomesReport, language: str
) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as (title, header, rows) sections, two per group: time points and relief."""
    header = [
        t(language, "time point"),
        t(language, "responded"),
        t(language, "pain change (median [IQR])"),
        t(language, "reached MCID"),
        "KOOS JR",
        t(language, "KOOS JR change"),
        t(language, "WHO-5 change"),
        t(language, "opioid (vs before)"),
    ]
    sections = []
    for group in report.groups:
        title = f"{group_title(group.name, language)} — n = {group.patients} · " + t(
            language, "baseline pain {pain}", pain=spread_text(group.baseline_pain)
        )
        rows = []
        for point in group.time_points:
            opioid = share_text(point.opioid)
            if point.opioid.n:
                opioid += " " + t(
                    language, "vs {before}", before=share_text(point.opioid_at_baseline)
                )
            rows.append(
                [
                    point.time_point,
                    share_text(point.response),
                    spread_text(point.pain_change),
                    share_text(point.mcid),
                    spread_text(point.koos),
                    spread_text(point.koos_change),
                    spread_text(point.who5_change),
                    opioid,
                ]
            )
        sections.append((title, header, rows))
        relief = group.relief
        if relief is None:
            continue
        relief_rows = [
            [
                t(language, "month {month}", month=month),
                "—" if value is None else f"{value * 100:.0f} %",
                str(followed),
            ]
            for month, (value, followed) in sorted(relief.points.items())
        ]
        relief_title = t(
            language,
            "{group}: relief kept (Kaplan-Meier) — {relieved} with relief, {ended} ended, {never} never relieved, {unknown} without baseline",
            group=group_title(group.name, language),
            relieved=relief.with_relief,
            ended=relief.ended,
            never=relief.never_relieved,
            unknown=relief.no_baseline,
        )
        sections.append(
            (
                relief_title,
                [
                    t(language, "since the procedure"),
                    t(language, "relief kept"),
                    t(language, "still followed"),
                ],
                relief_rows,
            )
        )
    return sections


def render_table(report: OutcomesReport, language: str) -> str:
    """The report as aligned plain-text tables (for the terminal and the staff chat)."""
    if not report.groups:
        return f"{_title(report, language)}\n\n  {t(language, 'no data')}\n"
    return text_tables(_title(report, language), table_sections(report, language), language)


def summary_text(report: OutcomesReport, language: str) -> str:
    """A short summary for the staff chat: per group, the last time point and relief at 3 and 6
    months (the full tables are in outcomes.html)."""
    lines = [_title(report, language)]
    if not report.groups:
        return "\n".join([*lines, t(language, "no data")])
    for group in report.groups:
        lines.append("")
        lines.append(f"{group_title(group.name, language)} — n = {group.patients}")
        for point in group.time_points:
            if point.pain_change.n == 0:
                continue
            lines.append(
                f"• {point.time_point}: "
                + t(language, "pain {change}", change=spread_text(point.pain_change))
                + " · MCID "
                + share_text(point.mcid)
                + " · "
                + t(language, "opioid {share}", share=share_text(point.opioid))
            )
        if group.relief is not None and group.relief.with_relief:
            kept = [
                t(
                    language,
                    "M{month} {value}",
                    month=month,
                    value="—" if value is None else f"{value * 100:.0f} %",
                )
                for month, (value, _followed) in sorted(group.relief.points.items())
            ]
            lines.append("• " + t(language, "relief kept: {points}", points=", ".join(kept)))
    return "\n".join(lines)


def _x(point_day: int | None, index: int) -> float:
    return float(point_day) if point_day is not None else float(index)


def _per_time_point(axes: Axes, report: OutcomesReport, language: str, what: str) -> None:
    """One line per group of a per-time-point figure, with n beside every point."""
    for colour, group in zip(_COLOURS, report.groups, strict=False):
        xs, ys, lows, highs, ns = [], [], [], [], []
        for index, point in enumerate(group.time_points):
            if what == "pain":
                spread = point.pain_change
                if spread.n == 0 or spread.median is None:
                    continue
                xs.append(_x(point.day, index))
                ys.append(spread.median)
                lows.append(spread.median - (spread.q1 or spread.median))
                highs.append((spread.q3 or spread.median) - spread.median)
                ns.append(spread.n)
            else:
                share = point.mcid if what == "mcid" else point.opioid
                if share.rate is None:
                    continue
                xs.append(_x(point.day, index))
                ys.append(share.rate * 100)
                ns.append(share.n)
        if not xs:
            continue
        label = group_title(group.name, language)
        if what == "opioid":
            before = [
                (_x(point.day, index), (point.opioid_at_baseline.rate or 0) * 100)
                for index, point in enumerate(group.time_points)
                if point.opioid.rate is not None
            ]
            axes.plot(
                [x for x, _ in before],
                [y for _, y in before],
                color=colour,
                marker="x",
                linestyle=":",
                label=t(language, "{group}, same patients before", group=label),
            )
        if what == "pain":
            axes.errorbar(
                xs, ys, yerr=[lows, highs], color=colour, marker="o", capsize=3, label=label
            )
        else:
            axes.plot(xs, ys, color=colour, marker="o", label=label)
        for x, y, n in zip(xs, ys, ns, strict=True):
            axes.annotate(
                f"n={n}",
                (x, y),
                textcoords="offset points",
                xytext=(3, 4),
                fontsize=6,
                color=colour,
            )
    axes.set_xscale("symlog", linthresh=14, linscale=1.5)
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = [0, 7, 14, 42, 91, 182]
    axes.xaxis.set_major_locator(FixedLocator(ticks))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xticklabels([t(language, "D{day}", day=d) for d in ticks], fontsize=8)
    axes.grid(True, alpha=0.3)


def _km(axes: Axes, report: OutcomesReport, language: str) -> None:
    """Kaplan-Meier steps per group, censoring ticks, stopping at the last follow-up."""
    from matplotlib.ticker import FixedLocator

    for colour, group in zip(_COLOURS, report.groups, strict=False):
        relief = group.relief
        if relief is None or not relief.with_relief:
            continue
        months = [0.0, *(time / 30.4375 for time in relief.times)]
        survival = [1.0, *relief.survival]
        axes.step(
            months,
            [value * 100 for value in survival],
            where="post",
            color=colour,
            label=f"{group_title(group.name, language)} (n = {relief.with_relief})",
        )
        for censored in relief.censored:
            month = censored / 30.4375
            value = next(
                (
                    s
                    for m, s in zip(reversed(months), reversed(survival), strict=True)
                    if m <= month
                ),
                1.0,
            )
            axes.plot([month], [value * 100], marker="|", color=colour, markersize=9)
    axes.set_ylim(-3, 105)
    axes.set_xlim(0, 7)
    axes.xaxis.set_major_locator(FixedLocator([0, *KM_MONTHS]))
    axes.set_xlabel(t(language, "Months since the procedure"))
    axes.set_ylabel("%")
    axes.grid(True, alpha=0.3)


def render_png(report: OutcomesReport, language: str) -> bytes:
    """The main figure: pain change, MCID share, opioid use and relief kept, per group."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _LOCK:
        figure = Figure(figsize=(12, 8), dpi=_DPI)
        FigureCanvasAgg(figure)
        (pain, mcid), (opioid, km) = figure.subplots(2, 2)
        figure.suptitle(_title(report, language), fontsize=11, x=0.01, ha="left")
        pain.set_title(t(language, "Pain change from baseline (median, IQR)"), fontsize=10)
        pain.axhline(0, color="tab:gray", linewidth=0.8)
        _per_time_point(pain, report, language, "pain")
        mcid.set_title(t(language, "Patients reaching the MCID (%)"), fontsize=10)
        mcid.set_ylim(-3, 105)
        _per_time_point(mcid, report, language, "mcid")
        opioid.set_title(t(language, "Patients taking an opioid (%)"), fontsize=10)
        opioid.set_ylim(-3, 105)
        _per_time_point(opioid, report, language, "opioid")
        km.set_title(
            t(language, "Relief kept (Kaplan-Meier, censored at the last answer)"), fontsize=10
        )
        _km(km, report, language)
        for axes in (pain, mcid, opioid, km):
            if axes.get_legend_handles_labels()[0]:
                axes.legend(fontsize=7, loc="best")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def render_relief_png(report: OutcomesReport, language: str) -> bytes:
    """The Kaplan-Meier curves alone, larger (for a slide)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _LOCK:
        figure = Figure(figsize=(8, 5), dpi=_DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.set_title(
            t(language, "Relief kept (Kaplan-Meier, censored at the last answer)"), fontsize=11
        )
        _km(axes, report, language)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def render_html(report: OutcomesReport, language: str, figures: dict[str, bytes]) -> str:
    """A self-contained HTML page: the figures inline, then every table."""
    return html_page(
        _title(report, language),
        table_sections(report, language),
        language,
        pictures=figures,
        preface=t(
            language,
            "Every figure is given with its n. Small groups are shown as they are: read them as cases, not rates. Nothing is extrapolated beyond the last answer.",
        ),
    )


def render_json(report: OutcomesReport) -> str:
    """Every figure as JSON (for a statistician, and for tests that check the numbers)."""

    def default(value: Any) -> Any:
        return value.isoformat() if hasattr(value, "isoformat") else str(value)

    return json.dumps(asdict(report), default=default, indent=1, ensure_ascii=False) + "\n"
