"""The chart of a patient's course: a real PNG of the expected size, with the thresholds the
episode's protocol escalates on (not numbers written in the code)."""

from __future__ import annotations

import struct
from datetime import datetime

from bot.domain.protocol import Indication, ThresholdRule
from bot.protocols import ProtocolRegistry, default_schedules_dir
from bot.services import charts, staff_views
from tests.harness import TestDatabase as Database
from tests.services.course import PARIS, play_course, services

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _protocol():  # type: ignore[no-untyped-def]
    return ProtocolRegistry.from_dir(default_schedules_dir()).latest("knee-cryoneurolysis")


async def test_chart_of_a_real_course_is_a_png_of_the_expected_size(database: Database) -> None:
    async with services(database, datetime(2026, 12, 1, 8, 0, tzinfo=PARIS)) as svc:
        await play_course(svc, label="P-100", baseline=6)
        course = await staff_views.patient_course(svc.ctx, label="P-100", language="fr")
    assert [p.value for p in course.pain] == [4, 5, 8, 5, 4, 3, 2, 3, 5]
    assert [p.day for p in course.swelling][:3] == [0, 1, 2]
    png = charts.render_course_chart(
        course.protocol,
        indication=course.indication,
        pain=course.pain,
        swelling=course.swelling,
        baseline=course.baseline,
        language="fr",
        title="P-100 — douleur et gonflement",
        today=course.day,
    )
    assert _png_size(png) == (charts.WIDTH_PX, charts.HEIGHT_PX)
    # A drawn chart (axes, labels, lines) compresses far less than a blank canvas (~3 kB).
    assert len(png) > 15_000


def test_chart_without_answers_still_renders() -> None:
    png = charts.render_course_chart(
        _protocol(),
        indication=Indication.OSTEOARTHRITIS,
        pain=[],
        swelling=[],
        baseline=None,
        language="en",
        title="P-1",
    )
    assert _png_size(png) == (charts.WIDTH_PX, charts.HEIGHT_PX)


def test_thresholds_come_from_the_protocol_rules() -> None:
    protocol = _protocol()
    lines = charts.threshold_lines(protocol, Indication.OSTEOARTHRITIS, 6, language="fr")
    assert [(line.value, line.from_day) for line in lines] == [(8.0, None), (8.0, 3)]
    assert "≥ 8" in lines[0].label
    assert "J3" in lines[1].label

    changed = protocol.model_copy(
        update={
            "rules": tuple(
                rule.model_copy(update={"value": 7})
                if isinstance(rule, ThresholdRule) and rule.id == "pain_high"
                else rule
                for rule in protocol.rules
            )
        }
    )
    values = sorted(
        line.value
        for line in charts.threshold_lines(changed, Indication.OSTEOARTHRITIS, 6, language="fr")
    )
    assert values == [7.0, 8.0, 8.0]
    assert (
        charts.threshold_lines(protocol, Indication.OSTEOARTHRITIS, None, language="fr")[0].value
        == 8.0
    )


def test_pain_items_are_the_tracked_question_and_the_scales_an_alert_watches() -> None:
    assert charts.pain_question_ids(_protocol()) == ("pain_avg", "pain_evening")
