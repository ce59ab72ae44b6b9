"""Unit statistics over real courses: response rate per time point, pain quartiles per day,
alerts per rule, median time to acknowledgement; as a table, a PNG and an HTML page."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import Alert
from bot.services import alerts, report
from tests.harness import TestDatabase as Database
from tests.services.course import PARIS, Services, play_course, services
from tests.test_cli import run_cli

START = datetime(2026, 12, 1, 8, 0, tzinfo=PARIS)


async def _unit(svc: Services) -> None:
    """Two patients answer everything; a third stops answering after day 1."""
    await play_course(svc, label="P-1", chat_id=7001, baseline=6)
    await play_course(svc, label="P-2", chat_id=7002, baseline=4)
    await play_course(svc, label="P-3", chat_id=7003, baseline=5, until="d1")
    # P-3 goes silent: the dispatcher closes what it never answered.
    svc.clock.set(datetime(2027, 7, 1, 12, 0, tzinfo=PARIS))
    from bot.services import dispatch

    await dispatch.tick(svc.ctx)
    async with svc.ctx.sessions() as session:
        raised = list(await session.scalars(select(Alert).order_by(Alert.id)))
    # The day-2 pain of 8 alerts for P-1 and P-2: acknowledged after 10 and 30 minutes.
    for alert, minutes in zip(
        [a for a in raised if a.rule_id == "pain_high"], (10, 30), strict=True
    ):
        svc.clock.set(alert.created_at + timedelta(minutes=minutes))
        assert await alerts.acknowledge(
            svc.ctx, alert_id=alert.id, staff_name="Claire", staff_id=5001
        )


async def test_report_figures(database: Database) -> None:
    async with services(database, START) as svc:
        await _unit(svc)
        figures = await report.build_report(svc.ctx)

    rates = {row.time_point: row for row in figures.response}
    assert list(rates)[:3] == ["d0_evening", "d1", "d2"]
    assert (rates["d1"].answered, rates["d1"].missed, rates["d1"].rate) == (3, 0, 1.0)
    assert (rates["d2"].answered, rates["d2"].missed) == (2, 1)
    assert rates["d2"].rate == pytest.approx(2 / 3)

    by_day = {row.day: row for row in figures.pain}
    assert (by_day[2].count, by_day[2].median) == (2, 8.0)
    assert by_day[1].count == 3
    assert (by_day[1].q1, by_day[1].median, by_day[1].q3) == (5.0, 5.0, 5.0)
    assert 182 in by_day

    counts = {row.rule_id: row for row in figures.alerts}
    assert counts["pain_high"].total == 2
    assert counts["pain_high"].still_open == 2  # acknowledged, not resolved
    assert counts["missed_checkins"].total == 1
    assert figures.ack_count == 2
    assert figures.ack_minutes_median == pytest.approx(20.0)
    assert figures.ack_by_severity["urgent"] == (pytest.approx(20.0), 2)


async def test_report_since_counts_only_later_events(database: Database) -> None:
    async with services(database, START) as svc:
        await play_course(svc, label="P-1", chat_id=7001)
        figures = await report.build_report(svc.ctx, since=datetime(2027, 1, 1, tzinfo=PARIS))
    assert [row.time_point for row in figures.response] == ["w6", "m3", "m6"]
    assert [row.day for row in figures.pain] == [42, 90, 182]
    assert figures.alerts == []
    assert figures.ack_minutes_median is None


async def test_table_png_and_html_say_the_same(database: Database) -> None:
    async with services(database, START) as svc:
        await _unit(svc)
        figures = await report.build_report(svc.ctx)
    table = report.render_table(figures, "fr")
    assert "Taux de réponse par temps de suivi" in table
    assert "Délai médian de prise en charge" in table
    assert "20 min" in table
    png = report.render_png(figures, "fr")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    page = report.render_html(figures, "fr", png)
    assert page.startswith("<!doctype html>")
    assert "data:image/png;base64," in page
    for section, _header, rows in report.table_sections(figures, "fr"):
        assert section in table and section in page
        for row in rows:
            assert row[0] in table and f"<td>{row[0]}</td>" in page


def test_empty_unit_reports_no_data() -> None:
    figures = report.UnitReport(generated_at=START, since=None)
    assert "pas de données" in report.render_table(figures, "fr")
    assert report.render_png(figures, "en")[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_report_prints_a_table_and_writes_png_and_html(tmp_path: Path) -> None:
    async def seed() -> None:
        database = Database(url=f"sqlite+aiosqlite:///{tmp_path / 'cryo-followup.db'}", schema=None)
        async with services(database, START) as svc:
            await play_course(svc, until="d3")

    asyncio.run(seed())
    result = run_cli("report", "--out-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Douleur par jour depuis le geste" in result.stdout
    assert (tmp_path / "out" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table>" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
