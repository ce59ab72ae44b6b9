"""A patient's course as a picture: pain and swelling over the days since the procedure.

Staff read it on a phone between two tasks, so it shows only what decides an action: the pain
answers, the patient's own baseline, the alert thresholds the protocol escalates on and the
swelling. Thresholds are read from the episode's protocol version (its ``threshold`` and
``rise_over_baseline`` rules), never hard-coded, so a unit that changes a threshold sees the
new line at once.

Rendering uses matplotlib's object API on the Agg canvas (no pyplot global state), behind one
lock because matplotlib does not promise thread safety and callers render in worker threads.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.domain.protocol import Indication, Protocol, RiseOverBaselineRule, ThresholdRule
from bot.i18n import t

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Pixel size of the chart: wide enough to read on a phone in landscape, small to send.
WIDTH_PX = 800
HEIGHT_PX = 450
_DPI = 100
#: Beyond two weeks the x axis turns logarithmic, so day 1-14 stay readable next to month 6.
_LINEAR_DAYS = 14
_DAY_TICKS = (0, 1, 2, 3, 7, 14, 42, 91, 182)
_LOCK = threading.Lock()
#: The protocol's swelling question (a choice whose option values grow with the swelling).
SWELLING_QUESTION = "swelling"


@dataclass(frozen=True)
class Point:
    """One answer on the chart: the day since the procedure and the value."""

    day: int
    value: int


@dataclass(frozen=True)
class ThresholdLine:
    """A horizontal line staff compare the pain with; ``None`` days mean the whole course."""

    value: float
    from_day: int | None
    until_day: int | None
    label: str
    #: ``absolute`` (e.g. pain >= 8) or ``baseline`` (the patient's own baseline + n).
    kind: str = "absolute"


def pain_question_ids(protocol: Protocol) -> tuple[str, ...]:
    """The pain items worth plotting: the tracked question and any 0-10 scale an alert watches.

    The day-0 evening pain is a separate question (asked "right now", not "on average") but it
    is escalated on the same way, so staff expect to see it on the same curve.
    """
    tracked = protocol.question(protocol.tracked_question)
    ids = [tracked.id]
    for rule in protocol.rules:
        if isinstance(rule, ThresholdRule) and rule.question not in ids:
            question = protocol.question(rule.question)
            if question.type == "scale" and (question.min, question.max) == (
                tracked.min,
                tracked.max,
            ):
                ids.append(question.id)
    return tuple(ids)


def threshold_lines(
    protocol: Protocol, indication: Indication, baseline: int | None, *, language: str
) -> list[ThresholdLine]:
    """The pain alert thresholds of this protocol for this indication, deduplicated."""
    pain_ids = set(pain_question_ids(protocol))
    lines: dict[tuple[float, int | None, int | None], ThresholdLine] = {}
    for rule in protocol.rules_for(indication):
        if isinstance(rule, ThresholdRule) and rule.question in pain_ids and rule.op in (">=", ">"):
            key = (float(rule.value), rule.from_day, rule.until_day)
            lines.setdefault(
                key,
                ThresholdLine(
                    float(rule.value),
                    rule.from_day,
                    rule.until_day,
                    t(
                        language,
                        "alert {op} {value}",
                        op=rule.op.replace(">=", "≥"),
                        value=rule.value,
                    ),
                ),
            )
        elif (
            isinstance(rule, RiseOverBaselineRule)
            and rule.question == protocol.tracked_question
            and baseline is not None
        ):
            key = (float(baseline + rule.by), rule.from_day, None)
            lines.setdefault(
                key,
                ThresholdLine(
                    float(baseline + rule.by),
                    rule.from_day,
                    None,
                    t(
                        language,
                        "baseline + {by} (from D{day})",
                        by=rule.by,
                        day=rule.from_day,
                    ),
                    kind="baseline",
                ),
            )
    return sorted(lines.values(), key=lambda line: (line.value, line.from_day or 0))


def render_course_chart(
    protocol: Protocol,
    *,
    indication: Indication,
    pain: Sequence[Point],
    swelling: Sequence[Point],
    baseline: int | None,
    language: str,
    title: str,
    today: int | None = None,
) -> bytes:
    """A PNG (``WIDTH_PX`` x ``HEIGHT_PX``) of pain and swelling over the days since the procedure.

    ``swelling`` values are the option values of :data:`SWELLING_QUESTION`
    (plotted on a right-hand axis labelled with the option names); ``today`` extends the axis
    to the current day so a silent patient is visible as a gap.
    """
    # Imported here: matplotlib takes most of a second to import, and only drawing needs it
    # (every CLI command and the bot's start would pay for it otherwise).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    tracked = protocol.question(protocol.tracked_question)
    lines = threshold_lines(protocol, indication, baseline, language=language)
    days = [p.day for p in (*pain, *swelling)] + [today or 0, 3]
    last_day = max(days)
    with _LOCK:
        figure = Figure(figsize=(WIDTH_PX / _DPI, HEIGHT_PX / _DPI), dpi=_DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.set_title(title, fontsize=11, loc="left")
        axes.set_ylim(tracked.min - 0.3, tracked.max + 0.5)
        axes.set_ylabel(t(language, "Pain (0-10)"))
        axes.set_xlabel(t(language, "Days since the procedure"))
        axes.yaxis.set_major_locator(FixedLocator(list(range(tracked.min, tracked.max + 1, 2))))
        axes.grid(True, axis="y", alpha=0.3)
        right: float = last_day + 1
        if last_day > _LINEAR_DAYS + 7:
            axes.set_xscale("symlog", linthresh=_LINEAR_DAYS, linscale=2.0)
            right = last_day * 1.1
        axes.set_xlim(-0.5, right)
        ticks = [d for d in _DAY_TICKS if d <= right] or [0]
        axes.xaxis.set_major_locator(FixedLocator(ticks))
        axes.xaxis.set_minor_locator(NullLocator())
        axes.set_xticklabels([t(language, "D{day}", day=d) for d in ticks])
        if baseline is not None:
            axes.axhline(
                baseline,
                color="tab:gray",
                linestyle="--",
                linewidth=1.2,
                label=t(language, "baseline {value}/10", value=baseline),
            )
        for line in lines:
            start = line.from_day if line.from_day is not None else -0.5
            end = line.until_day if line.until_day is not None else right
            axes.hlines(
                line.value,
                start,
                end,
                colors="tab:red" if line.kind == "absolute" else "tab:purple",
                linestyles=":" if line.kind == "absolute" else "-.",
                linewidth=1.5,
                label=line.label,
            )
        if pain:
            ordered = sorted(pain, key=lambda p: p.day)
            axes.plot(
                [p.day for p in ordered],
                [p.value for p in ordered],
                color="tab:blue",
                marker="o",
                linewidth=2,
                label=t(language, "pain"),
            )
        _draw_swelling(axes, protocol, swelling, language)
        axes.legend(loc="upper right", fontsize=8, framealpha=0.8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _draw_swelling(
    axes: Axes, protocol: Protocol, swelling: Sequence[Point], language: str
) -> None:
    """Swelling on a right-hand axis, ticks named after the protocol's options."""
    if not swelling:
        return
    try:
        question = protocol.question(SWELLING_QUESTION)
    except KeyError:
        return
    from matplotlib.ticker import FixedLocator

    options = sorted(question.options, key=lambda o: o.value)
    right = axes.twinx()
    right.set_ylim(options[0].value - 0.15, options[-1].value + 0.6)
    right.yaxis.set_major_locator(FixedLocator([o.value for o in options]))
    right.set_yticklabels([o.label.get(language) for o in options], fontsize=8)
    ordered = sorted(swelling, key=lambda p: p.day)
    right.plot(
        [p.day for p in ordered],
        [p.value for p in ordered],
        color="tab:orange",
        marker="s",
        linestyle="-",
        linewidth=1,
        alpha=0.8,
        label=t(language, "swelling"),
    )
    right.legend(loc="upper left", fontsize=8, framealpha=0.8)
