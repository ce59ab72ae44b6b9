"""Rehearse a protocol: ``python -m bot run`` with CLOCK_SPEED plays days in seconds against any
Bot API (here the fake server), and refuses to do so against Telegram's own.

The course, in simulated time (the knee protocol, baseline pain 5): day 0 and day 1 go
unanswered (reminders, then two missed check-ins in a row: a review alert); days 2 and 3 are
answered with pain 7, two points above baseline, which the protocol reviews only from day 3;
day 7 reports a fever (urgent: staff card, safety advice, then re-escalation to on-call when
nobody takes it). What the bot recorded is read from its database: simulated times, so the
assertions are about days and rules, never about how fast the machine was.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import Alert, AuditEvent, CheckIn, Digest
from bot.sandbox.fake_api import SentMessage
from tests.cli.rehearsal import Rehearsal, enrol, rehearsal
from tests.cli.support import assert_refused
from tests.harness import ONCALL_CHAT, PARIS, STAFF_CHAT, TestDatabase
from tests.harness import Patient as VirtualPatient
from tests.test_cli import run_cli

#: Simulated seconds per real second: day 0 to day 7 in about a minute (3,600 takes 3 minutes).
SPEED = 10_000
#: The longest a step waits for the bot, in real seconds (a simulated day is 8.6 s).
WAIT = 60.0
GREETING = "Voici votre point de suivi"
REMINDER = "Petit rappel"
END_OF_CHECKIN = "c'est tout pour aujourd'hui"


async def answer_checkin(patient: VirtualPatient, *, pain: str, flags: str) -> None:
    """Answer every question of the check-in just opened: ``pain`` typed for the score,
    ``flags`` typed for the red-flag checklist, the mildest button elsewhere."""
    while True:
        message = await patient.next(timeout=WAIT)
        if END_OF_CHECKIN in (message.text or ""):
            return
        labels = [label for label, _data in message.buttons()]
        if not labels:
            continue  # an acknowledgement, safety advice
        if "10" in labels:
            patient.say(pain)
        elif "Valider" in labels:
            patient.say(flags)
        elif "Passer" in labels:
            patient.tap(message, "Passer")
        elif "Un peu" in labels:
            patient.tap(message, "Un peu")
        elif "Normalement" in labels:
            patient.tap(message, "Normalement")
        else:
            patient.tap(message, "Non")


async def staff_text(running: Rehearsal, chat_id: int, needle: str) -> SentMessage:
    """The first message to ``chat_id`` containing ``needle``."""
    return await running.server.wait_for(
        lambda m: m.chat_id == chat_id and needle in (m.text or ""), timeout=WAIT
    )


def local(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment.astimezone(PARIS)


async def checkins(running: Rehearsal) -> dict[str, CheckIn]:
    async with running.sessions() as session:
        rows = await session.scalars(select(CheckIn).order_by(CheckIn.due_at))
        return {row.def_id: row for row in rows}


# What it tests is the simulated clock, not the database (the same rows and queries run on
# PostgreSQL in the e2e tests): SQLite only, to keep the suite within its time budget.
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_week_of_follow_up_plays_in_about_a_minute_on_the_simulated_clock(
    database: TestDatabase, tmp_path: Path
) -> None:
    token = await enrol(database, label="R-001", language="fr", baseline=5)
    async with rehearsal(database, tmp_path, speed=SPEED) as running:
        patient = VirtualPatient(running.server, 4101, "fr")
        patient.say(f"/start {token}")
        patient.tap(await patient.next(timeout=WAIT), "J'accepte")
        started = await patient.until("Prochain point", timeout=WAIT)
        assert "mardi 1 décembre à 18:00" in (started.text or "")

        # Days 0 and 1 unanswered: the reminders the protocol allows, then a review alert.
        await patient.until(GREETING, timeout=WAIT)
        missed_alert = await staff_text(running, STAFF_CHAT, "Deux suivis de suite sans réponse")
        # Day 2: pain 7, two above baseline, but the rule starts on day 3.
        await patient.until(GREETING, timeout=WAIT)
        await answer_checkin(patient, pain="7", flags="aucun")
        # Day 3: the same pain now raises the review alert.
        await patient.until(GREETING, timeout=WAIT)
        await answer_checkin(patient, pain="sept", flags="aucun")
        review = await staff_text(running, STAFF_CHAT, "Douleur supérieure d'au moins 2 points")
        # Day 7: a fever. Nobody takes the alert: on-call gets it again.
        await patient.until(GREETING, timeout=WAIT)
        await answer_checkin(patient, pain="5", flags="j'ai de la fièvre, 38,6")
        await staff_text(running, STAFF_CHAT, "🔴 URGENT")
        await staff_text(running, ONCALL_CHAT, "non pris en charge")
        running.alive()
        rows = await checkins(running)
        async with running.sessions() as session:
            alerts = {a.rule_id: a for a in await session.scalars(select(Alert))}
            escalations = list(
                await session.scalars(
                    select(AuditEvent.at).where(AuditEvent.action == "alert_reescalated")
                )
            )
            digest_days = set(await session.scalars(select(Digest.day)))

    # Check-ins at their simulated due times, reminders as the protocol says (every 120 min,
    # at most 2, inside the window: d0's 2.5 h window has room for one).
    assert [(local(rows[d].due_at).day, local(rows[d].due_at).hour) for d in rows][:5] == [
        (1, 18),
        (2, 10),
        (3, 10),
        (4, 10),
        (8, 10),
    ]
    assert (rows["d0_evening"].status, rows["d0_evening"].reminders_sent) == ("missed", 1)
    assert (rows["d1"].status, rows["d1"].reminders_sent) == ("missed", 2)
    assert [rows[d].status for d in ("d2", "d3", "d7")] == ["answered"] * 3
    assert REMINDER in " ".join(patient.all_texts())

    # Alerts on the right simulated day.
    assert local(alerts["missed_checkins"].created_at).date() == date(2026, 12, 2)
    assert "pain_above_baseline" in alerts and "J+3" in (review.text or "")
    assert local(alerts["pain_above_baseline"].created_at).date() == date(2026, 12, 4)
    assert local(alerts["fever"].created_at).date() == date(2026, 12, 8)
    assert "J+1" in (missed_alert.text or "")
    # Re-escalation follows the simulated clock: 15 simulated minutes, never sooner.
    assert escalations, running.output()
    first = min(local(at) for at in escalations)
    assert first - local(alerts["fever"].created_at) >= timedelta(minutes=15)
    # A morning digest each simulated working day (the weekend of 5-6 December has none).
    assert {date(2026, 12, day) for day in (1, 2, 3, 4, 7, 8)} <= digest_days
    assert not {date(2026, 12, 5), date(2026, 12, 6)} & digest_days


def test_run_refuses_a_rehearsal_clock_against_telegrams_own_api(tmp_path: Path) -> None:
    token = "123456:" + "D" * 35
    for variables in ({"CLOCK_SPEED": "3600"}, {"CLOCK_START": "2026-12-01 09:00"}):
        result = run_cli(
            "run",
            cwd=tmp_path,
            TELEGRAM_BOT_TOKEN=token,
            TELEGRAM_API_BASE_URL="https://api.telegram.org/bot",
            **variables,
        )
        assert_refused(result, "api.telegram.org", "CLOCK_SPEED")
    assert not (tmp_path / "cryo-followup.db").exists()  # refused before anything was made


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CLOCK_SPEED", "0"),
        ("CLOCK_SPEED", "-2"),
        ("CLOCK_SPEED", "fast"),
        ("CLOCK_SPEED", "nan"),
        ("CLOCK_START", "2026-13-01 09:00"),
        ("CLOCK_START", "tomorrow"),
    ],
)
def test_a_bad_clock_setting_is_one_line_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    assert_refused(run_cli("run", cwd=tmp_path, **{variable: value}), f"{variable} is invalid")
