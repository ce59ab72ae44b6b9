"""The outcomes report on a synthetic cohort whose figures are computed by hand below: pain
change from baseline (median, IQR), the share reaching the MCID, opioid use against baseline,
WHO-5 change, and Kaplan-Meier points of relief kept at 1, 3 and 6 months, split by indication;
through the service on every database, and through ``python -m bot outcomes``."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.db.models import Answer, CheckIn, Episode, Patient
from bot.db.session import create_engine, make_sessionmaker, upgrade_database
from bot.protocols import ProtocolRegistry, default_schedules_dir
from bot.services import outcomes, outcomes_render
from bot.services.context import ProtocolStore
from tests.harness import TestDatabase as Database
from tests.services.course import PARIS, services
from tests.test_cli import run_cli

PROCEDURE = datetime(2026, 6, 1, 9, 30, tzinfo=PARIS)
NOW = datetime(2027, 1, 15, 12, 0, tzinfo=PARIS)
DAYS = {"d0_evening": 0, "d7": 7, "w6": 42, "m3": 90, "m6": 182}


@dataclass
class Course:
    """One synthetic patient: baseline pain, pain per time point (missing: check-in missed)."""

    indication: str
    baseline: int
    pain: dict[str, int]
    before: list[str] = field(default_factory=list)
    painkillers: dict[str, list[str]] = field(default_factory=dict)
    who5: dict[str, int] = field(default_factory=dict)


COHORT = {
    # Relief from d7, kept to m6: censored at day 182.
    "A": Course("osteoarthritis", 8, {"d7": 4, "w6": 3, "m3": 3, "m6": 4},
                painkillers={"w6": ["weak_opioid"]}, who5={"d0_evening": 40, "w6": 60}),
    # Relief from d7, back at baseline at m3 and m6: ended at day 90.
    "B": Course("osteoarthritis", 6, {"d7": 3, "w6": 2, "m3": 6, "m6": 6}, before=["paracetamol"],
                painkillers={"w6": ["paracetamol"]}, who5={"d0_evening": 50, "w6": 55}),
    # Never 30 % or 2 points below baseline: never relieved.
    "C": Course("osteoarthritis", 5, {"d7": 4, "w6": 4, "m3": 5}, before=["weak_opioid"],
                painkillers={"w6": ["weak_opioid"]}),
    # Relief at d7 (2 points), back at w6 and m3: ended at day 42.
    "D": Course("osteoarthritis", 7, {"d7": 5, "w6": 7, "m3": 7}, painkillers={"w6": []}),
    # Relief, then silent after w6: censored at day 42.
    "E": Course("osteoarthritis", 6, {"d7": 2, "w6": 2}, painkillers={"w6": ["strong_opioid"]}),
    # Knee replacement: relief kept to m6 (censored at 182)...
    "F": Course("after_knee_replacement", 7, {"d7": 3, "w6": 3, "m3": 3, "m6": 3},
                painkillers={"w6": []}),
    # ... and relief from w6, back at m3 and m6: ended at day 90.
    "G": Course("before_knee_replacement", 6, {"d7": 5, "w6": 4, "m3": 6, "m6": 5},
                painkillers={"w6": []}),
}  # fmt: skip

# By hand. Pain change at w6: A -5, B -4, C -1, D 0, E -4, F -4, G -2 -> sorted
# -5 -4 -4 -4 -2 -1 0: median -4; Q1 at rank 1.5 = -4; Q3 at rank 4.5 = (-2 + -1) / 2 = -1.5.
# MCID at w6 (30 % or 2 points): A B E F G yes, C (4 of 5) and D (7 of 7) no -> 5/7.
# Osteoarthritis alone: -5 -4 -4 -1 0 -> median -4, MCID 3/5.
# Opioid at w6: A (new), C, E -> 3/7; the same 7 before the procedure: C -> 1/7.
# WHO-5 change at w6: A +20, B +5 -> median 12.5 (n = 2).
# Kaplan-Meier, all: relief in A B D E F G (6); ended B 90, D 42, G 90; censored A 182, E 42,
# F 182. At day 42: 6 at risk, 1 event -> 5/6; at day 90: 4 at risk, 2 events -> 5/6 * 2/4 =
# 5/12. Month 1 (day 30.4): 1.0, 6 followed; month 3 (day 91.3): 5/12, 4 followed (day 90
# counts: within the 7-day grace); month 6 (day 182.6): 5/12, 2 followed (A and F, day 182).
# Osteoarthritis: A c182, B e90, D e42, E c42 -> 3/4 at 42, 3/4 * 1/2 = 3/8 at 90.
# Knee replacement: F c182, G e90 -> 1/2 at 90.
EXPECTED_KM = {
    "all": {1: (1.0, 6), 3: (5 / 12, 4), 6: (5 / 12, 2)},
    "osteoarthritis": {1: (1.0, 4), 3: (3 / 8, 2), 6: (3 / 8, 1)},
    "knee_replacement": {1: (1.0, 2), 3: (1 / 2, 2), 6: (1 / 2, 1)},
}


async def seed(database: Database) -> None:
    """The cohort, written straight into the database as the conversation would leave it."""
    engine = create_engine(database.url, schema=database.schema)
    try:
        await upgrade_database(engine)
        sessions = make_sessionmaker(engine)
        registry = ProtocolRegistry.from_dir(default_schedules_dir())
        protocol = registry.latest("knee-cryoneurolysis")
        async with sessions.begin() as session:
            version = await ProtocolStore(registry).row_for(session, protocol, ManualClock(NOW))
            for label, course in COHORT.items():
                episode = Episode(
                    patient=Patient(label=f"S-{label}", created_at=PROCEDURE),
                    protocol_version_id=version, procedure_at=PROCEDURE,
                    time_zone="Europe/Paris", side="left", indication=course.indication,
                    language="fr", status="completed", baseline_pain=course.baseline,
                    baseline_source="patient", consent_version=1, consented_at=PROCEDURE,
                    reask_count=0, created_at=PROCEDURE, created_by="test",
                )  # fmt: skip
                session.add(episode)
                for def_id, day in DAYS.items():
                    answered = def_id in course.pain or def_id == "d0_evening"
                    due = PROCEDURE + timedelta(days=day, hours=1)
                    checkin = CheckIn(
                        episode=episode, def_id=def_id, due_at=due,
                        window_ends_at=due + timedelta(days=1),
                        status="answered" if answered else "missed", attempts=1,
                        question_index=0, reask_count=0, selection=[], reminders_sent=0,
                        opening_sent=1,
                    )  # fmt: skip
                    session.add(checkin)
                    await session.flush()
                    rows: list[tuple[str, int | None, list[str] | None]] = []
                    if def_id in course.pain:
                        rows.append(("pain_avg", course.pain[def_id], None))
                    if def_id == "d0_evening":
                        rows.append(
                            ("painkillers_before", 3 if course.before else 0, course.before or None)
                        )
                    if def_id in course.painkillers:
                        taken = course.painkillers[def_id]
                        rows.append(("painkillers", 2 if taken else 0, taken or None))
                    if def_id in course.who5:
                        rows.append(("who5_score", course.who5[def_id], None))
                    for question_id, value, choices in rows:
                        session.add(
                            Answer(
                                episode_id=episode.id,
                                checkin_id=checkin.id,
                                question_id=question_id,
                                kind="button",
                                value=value,
                                choices=choices,
                                flags=[],
                                status="ok",
                                day=day,
                                created_at=due + timedelta(minutes=5),
                                score=float(value) if question_id.endswith("_score") else None,
                            )
                        )
    finally:
        await engine.dispose()


def _point(group: outcomes.GroupOutcomes, def_id: str) -> outcomes.TimePointOutcome:
    return next(point for point in group.time_points if point.time_point == def_id)


def _check_km(relief: outcomes.KaplanMeier | None, expected: dict[int, tuple[float, int]]) -> None:
    assert relief is not None
    for month, (value, followed) in expected.items():
        got_value, got_followed = relief.points[month]
        assert got_value == pytest.approx(value), month
        assert got_followed == followed, month


async def test_outcomes_match_the_figures_computed_by_hand(database: Database) -> None:
    await seed(database)
    async with services(database, NOW) as svc:
        report = await outcomes.build_outcomes(svc.ctx)
    groups = {group.name: group for group in report.groups}
    assert list(groups) == ["all", "osteoarthritis", "knee_replacement"]
    assert (groups["all"].patients, groups["osteoarthritis"].patients) == (7, 5)

    w6 = _point(groups["all"], "w6")
    change = w6.pain_change
    assert (change.n, change.median, change.q1, change.q3) == (7, -4.0, -4.0, -1.5)
    assert (w6.mcid.count, w6.mcid.n) == (5, 7)
    assert (w6.opioid.count, w6.opioid.n) == (3, 7)
    assert (w6.opioid_at_baseline.count, w6.opioid_at_baseline.n) == (1, 7)
    assert (w6.who5_change.n, w6.who5_change.median) == (2, 12.5)
    assert (w6.response.count, w6.response.n) == (7, 7)
    oa = _point(groups["osteoarthritis"], "w6")
    assert (oa.pain_change.median, oa.mcid.count, oa.mcid.n) == (-4.0, 3, 5)
    m6 = _point(groups["all"], "m6")
    assert (m6.response.count, m6.response.n, m6.pain_change.n) == (4, 7, 4)

    relief = groups["all"].relief
    assert relief is not None
    assert (relief.with_relief, relief.ended, relief.never_relieved) == (6, 3, 1)
    for name, expected in EXPECTED_KM.items():
        _check_km(groups[name].relief, expected)


def test_cli_outcomes_prints_and_writes_the_same_figures(tmp_path: Path) -> None:
    database = Database(url=f"sqlite+aiosqlite:///{tmp_path / 'cryo-followup.db'}", schema=None)
    asyncio.run(seed(database))
    result = run_cli("outcomes", "--out-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Tous les patients — n = 7" in result.stdout
    assert "-4 [-4; -1.5] (n = 7)" in result.stdout
    assert "5/7 (71 %)" in result.stdout
    assert "3/7 (43 %) contre 1/7 (14 %)" in result.stdout
    out = tmp_path / "out"
    for name in ("outcomes.png", "relief.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "outcomes.html").read_text(encoding="utf-8")
    assert "<table>" in page and "data:image/png;base64," in page
    figures = json.loads((out / "outcomes.json").read_text(encoding="utf-8"))
    by_name = {group["name"]: group for group in figures["groups"]}
    for name, expected in EXPECTED_KM.items():
        points = by_name[name]["relief"]["points"]
        for month, (value, followed) in expected.items():
            assert points[str(month)] == [pytest.approx(value), followed], (name, month)

    only = run_cli(
        "outcomes", "--indication", "knee_replacement", "--out-dir", str(out), "--language", "en",
        cwd=tmp_path,
    )  # fmt: skip
    assert only.returncode == 0, only.stderr
    assert "Around a knee replacement — n = 2" in only.stdout
    assert "All patients" not in only.stdout


def test_empty_report_says_no_data() -> None:
    report = outcomes.OutcomesReport(generated_at=NOW, since=None, indication=None)
    assert "pas de données" in outcomes_render.render_table(report, "fr")
    assert outcomes_render.render_png(report, "en")[:8] == b"\x89PNG\r\n\x1a\n"


def test_kaplan_meier_gives_no_point_past_the_follow_up() -> None:
    from bot.domain.relief import Relief

    kept_to_day_42 = [Relief(7, None, None, 42), Relief(7, None, None, 40)]
    estimate = outcomes.kaplan_meier(kept_to_day_42)
    assert estimate.points[1] == (1.0, 2)
    assert estimate.points[3] == (None, 0)  # nobody followed at month 3: no extrapolation
