"""Staff control of a follow-up (bot.services.followup): pause, resume, stop, move the procedure,
check in now — through the running bot, then the command line."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import Alert, AuditEvent, CheckIn, Episode
from bot.errors import NotFoundError, UsageError
from bot.services import followup
from tests.e2e.test_scheduler import D1, D2, EVENING, GREETING, count, states
from tests.harness import PARIS, BotHarness
from tests.test_cli import ENROL, run_cli


async def _audit(harness: BotHarness, action: str) -> list[tuple[str, dict[str, object]]]:
    async with harness.ctx.sessions() as session:
        rows = await session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [(row.actor, row.details) for row in rows]


async def test_a_pause_sends_nothing_raises_no_missed_alert_and_resume_goes_on(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(1201)
    await harness.advance_to(EVENING)
    await patient.until(GREETING)

    await followup.pause(harness.ctx, label="P-001", actor="staff:5001")
    assert (await states(harness))["d0_evening"] == ("cancelled", "episode_paused")
    # Two days pass: d1 and d2 fall due and their windows close while paused.
    for when in (D1, D1 + timedelta(hours=11), D2, D2 + timedelta(hours=11)):
        await harness.advance_to(when)
    found = await states(harness)
    assert found["d1"] == ("cancelled", "episode_paused")
    assert found["d2"] == ("cancelled", "episode_paused")
    assert count(harness, 1201, GREETING) == 1
    async with harness.ctx.sessions() as session:
        assert list(await session.scalars(select(Alert))) == []

    d3 = datetime(2026, 12, 4, 10, 0, tzinfo=PARIS)
    harness.clock.set(d3 - timedelta(hours=1))
    await followup.resume(harness.ctx, label="P-001", actor="staff:5001")
    await harness.advance_to(d3)
    await patient.until(GREETING)
    assert (await states(harness))["d3"][0] == "awaiting"
    assert await _audit(harness, "follow_up_paused") == [("staff:5001", {"closed_checkins": 1})]
    assert await _audit(harness, "follow_up_resumed") == [("staff:5001", {"skipped_checkins": 0})]


async def test_resume_skips_checkins_whose_time_passed_during_the_pause(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(1202)
    await followup.pause(harness.ctx, label="P-001", actor="cli")
    harness.clock.set(D1 + timedelta(hours=1))  # d1 due, its window still open; no tick ran
    await followup.resume(harness.ctx, label="P-001", actor="cli")
    await harness.tick()
    found = await states(harness)
    assert found["d0_evening"] == ("cancelled", "episode_paused")
    assert found["d1"] == ("cancelled", "episode_paused")
    assert found["d2"] == ("scheduled", None)
    assert count(harness, 1202, GREETING) == 0
    await harness.advance_to(D2)
    await patient.until(GREETING)


async def test_stop_cancels_every_future_checkin_and_tells_the_patient_only_if_asked(
    harness: BotHarness,
) -> None:
    await harness.consented_patient(1203, label="P-001")
    second = await harness.consented_patient(1204, label="P-002")
    await harness.settle()
    before = (len(harness.server.sent(1203)), len(harness.server.sent(1204)))

    await followup.stop(harness.ctx, label="P-001", actor="staff:5001", reason="hospitalisé")
    await followup.stop(harness.ctx, label="P-002", actor="staff:5001", notify_patient=True)

    assert len(harness.server.sent(1203)) == before[0]
    told = await second.until("mis fin à votre suivi")
    assert "01 23 45 67 89" in (told.text or "")
    await harness.advance_to(D2 + timedelta(hours=12))
    assert count(harness, 1203, GREETING) == count(harness, 1204, GREETING) == 0
    async with harness.ctx.sessions() as session:
        rows = list(await session.scalars(select(CheckIn.status_reason).distinct()))
        episode = await session.scalar(select(Episode).order_by(Episode.id))
    assert rows == ["episode_stopped"]
    assert episode is not None
    assert (episode.status, episode.stop_reason) == ("stopped", "hospitalisé")
    audits = await _audit(harness, "follow_up_stopped")
    assert [details["patient_told"] for _, details in audits] == [False, True]
    assert all("hospitalisé" not in str(details) for _, details in audits)  # free text stays out
    with pytest.raises(UsageError, match="est arrêté"):
        await followup.resume(harness.ctx, label="P-001", actor="cli")
    with pytest.raises(UsageError, match="réinscrivez"):
        await followup.stop(harness.ctx, label="P-001", actor="cli")


async def test_moving_the_procedure_replans_only_future_scheduled_checkins(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(1205)
    await harness.advance_to(EVENING)
    question = await patient.until(GREETING)
    patient.tap(question, "2")
    await patient.until("Noté : 2/10")
    harness.clock.set(datetime(2026, 12, 1, 20, 0, tzinfo=PARIS))
    async with harness.ctx.sessions() as session:
        before = {c.def_id: c.due_at for c in await session.scalars(select(CheckIn))}

    # The procedure really took place one day later, at 14:00: the week after spans no DST,
    # but the months do not matter here — every future time point moves by one calendar day.
    moved = await followup.move_procedure(
        harness.ctx,
        label="P-001",
        procedure_at=datetime(2026, 12, 2, 14, 0, tzinfo=PARIS),
        actor="staff:5001",
    )

    async with harness.ctx.sessions() as session:
        after = {c.def_id: c for c in await session.scalars(select(CheckIn))}
        episode = await session.scalar(select(Episode))
    assert moved == 8
    assert after["d0_evening"].due_at == before["d0_evening"]  # open, partly answered: untouched
    assert after["d0_evening"].status == "awaiting"
    assert after["d1"].due_at == datetime(2026, 12, 3, 10, 0, tzinfo=PARIS)
    assert after["m3"].due_at == datetime(2027, 3, 2, 10, 0, tzinfo=PARIS)
    assert all(row.status == "scheduled" for key, row in after.items() if key != "d0_evening")
    assert episode is not None
    assert episode.procedure_at == datetime(2026, 12, 2, 14, 0, tzinfo=PARIS)
    assert await _audit(harness, "procedure_moved") == [
        (
            "staff:5001",
            {"moved_checkins": 8, "cancelled_checkins": 0, "shift_minutes": 1710},
        )
    ]


async def test_moving_the_procedure_earlier_cancels_what_is_now_past_and_keeps_local_times(
    harness: BotHarness,
) -> None:
    """Enrolled for 30 March 2027 (after the spring DST change), done on 26 March (before)."""
    harness.clock.set(datetime(2027, 3, 26, 16, 0, tzinfo=PARIS))
    invitation = await harness.enrol(
        "P-001", procedure_at=datetime(2027, 3, 30, 9, 0, tzinfo=PARIS)
    )
    await followup.move_procedure(
        harness.ctx,
        label="P-001",
        procedure_at=datetime(2027, 3, 26, 9, 0, tzinfo=PARIS),
        actor="cli",
    )  # not consented yet: only the date changes (check-ins are planned at consent)
    from tests.harness import Patient

    patient = Patient(harness.server, 1206, "fr")
    patient.say(f"/start {invitation.token}")
    patient.tap(await patient.next(), "J'accepte")
    patient.tap(await patient.next(), "5")
    await patient.until("Prochain point")
    harness.clock.set(datetime(2027, 3, 27, 12, 0, tzinfo=PARIS))
    moved = await followup.move_procedure(
        harness.ctx,
        label="P-001",
        procedure_at=datetime(2027, 3, 25, 9, 0, tzinfo=PARIS),
        actor="cli",
    )
    found = await states(harness)
    async with harness.ctx.sessions() as session:
        due = {c.def_id: c.due_at for c in await session.scalars(select(CheckIn))}
    # d2 (27 Mar 10:00 in the new plan) is already past: cancelled, not sent late.
    assert found["d2"] == ("cancelled", "procedure_moved")
    assert found["d3"] == ("scheduled", None)
    # d3 on 28 March, the day clocks go forward: still 10:00 on the wall clock.
    assert due["d3"] == datetime(2027, 3, 28, 10, 0, tzinfo=PARIS)
    assert due["d3"].utcoffset() == timedelta(0)
    assert due["d3"].hour == 8  # 10:00 CEST = 08:00 UTC
    assert moved == 6  # d3 to m6; d2 cancelled, d0 and d1 (past) untouched


async def test_checkin_now_sends_the_next_one_and_says_why_when_it_cannot(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(1207)
    harness.clock.set(datetime(2026, 12, 1, 11, 0, tzinfo=PARIS))
    assert await followup.checkin_now(harness.ctx, label="P-001", actor="staff:5001")
    await harness.tick()
    await patient.until(GREETING)
    assert (await states(harness))["d0_evening"][0] == "awaiting"

    with pytest.raises(UsageError, match="déjà un point de suivi ouvert"):
        await followup.checkin_now(harness.ctx, label="P-001", actor="cli")
    harness.clock.set(datetime(2026, 12, 1, 22, 30, tzinfo=PARIS))
    await harness.tick()  # d0's window (extended to 3 h 30 after 11:00) closed
    assert (await states(harness))["d0_evening"][0] != "awaiting"
    with pytest.raises(UsageError, match="heures calmes 21:00-08:00"):
        await followup.checkin_now(harness.ctx, label="P-001", actor="cli")
    await followup.pause(harness.ctx, label="P-001", actor="cli")
    with pytest.raises(UsageError, match="en pause"):
        await followup.checkin_now(harness.ctx, label="P-001", actor="cli")
    assert await _audit(harness, "checkin_sent_now") == [("staff:5001", {"checkin": "d0_evening"})]


async def test_checkin_now_returns_false_when_no_checkin_is_left(harness: BotHarness) -> None:
    await harness.consented_patient(1208)
    async with harness.ctx.sessions.begin() as session:
        for row in await session.scalars(select(CheckIn)):
            row.status = "answered"
    assert not await followup.checkin_now(harness.ctx, label="P-001", actor="cli")


async def test_unknown_labels_and_impossible_changes_are_refused_with_a_reason(
    harness: BotHarness,
) -> None:
    with pytest.raises(NotFoundError, match="Aucun patient avec l'identifiant P-404"):
        await followup.pause(harness.ctx, label="P-404", actor="cli")
    await harness.enrol("P-001")  # invited: the patient has not opened the link
    with pytest.raises(UsageError, match="pas encore commencé"):
        await followup.pause(harness.ctx, label="P-001", actor="cli")
    with pytest.raises(UsageError, match="pas encore commencé"):
        await followup.resume(harness.ctx, label="P-001", actor="cli")
    with pytest.raises(UsageError, match="pas encore commencé"):
        await followup.checkin_now(harness.ctx, label="P-001", actor="cli")
    await harness.consented_patient(1209, label="P-002")
    await followup.pause(harness.ctx, label="P-002", actor="cli")
    with pytest.raises(UsageError, match="déjà en pause depuis le mardi 1 décembre à 08:00"):
        await followup.pause(harness.ctx, label="P-002", actor="cli")


# ------------------------------------------------------------------------------ command line


@pytest.mark.slow  # five `python -m bot` processes
def test_followup_commands_on_the_command_line(tmp_path: Path) -> None:
    assert run_cli(*ENROL, cwd=tmp_path).returncode == 0
    label = ENROL[ENROL.index("--label") + 1]

    refused = run_cli("followup", "pause", "--label", label, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: {label} n'a pas encore commencé le suivi (lien non ouvert ou consentement "
        "en attente) : rien à faire d'ici là."
    ]
    moved = run_cli(
        "followup", "move", "--label", label, "--procedure-at", "2026-12-02 10:00", cwd=tmp_path
    )
    assert moved.returncode == 0, moved.stderr
    assert "0 future check-ins planned again" in moved.stdout  # planned at consent
    stopped = run_cli("followup", "stop", "--label", label, "--reason", "transféré", cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == (
        f"{label}: follow-up stopped. The patient was not told: call them if needed.\n"
    )
    unknown = run_cli("followup", "checkin-now", "--label", "P-404", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == ["error: no patient has the label 'P-404'"]
