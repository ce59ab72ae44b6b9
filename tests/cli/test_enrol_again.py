"""A label already enrolled is refused unless ``--new-episode``: a second patient given the same
label would otherwise replace the first one's invitation, or join their chat and history."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.db.models import Episode
from bot.domain.protocol import Indication, KneeSide
from bot.errors import UsageError
from bot.services import enrolment, followup
from tests.cli.support import assert_refused, count, enrol
from tests.harness import BotHarness
from tests.test_cli import run_cli


def test_a_label_enrolled_again_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    first = enrol(tmp_path)
    assert first.returncode == 0, first.stderr
    assert_refused(
        enrol(tmp_path, "--side", "right"),
        "P-001 is already enrolled",
        "has not opened the link yet",
        "--new-episode",
    )
    assert (count(tmp_path, "enrolment_tokens"), count(tmp_path, "episodes")) == (1, 1)


def test_new_episode_replaces_a_link_not_opened_yet(tmp_path: Path) -> None:
    first = enrol(tmp_path)
    again = enrol(tmp_path, "--new-episode")
    assert again.returncode == 0, again.stderr
    link = again.stdout.splitlines()[0]
    assert link.startswith("https://t.me/") and link != first.stdout.splitlines()[0]
    assert again.stdout.splitlines()[1] == "the previous link for P-001 no longer works"
    assert (count(tmp_path, "enrolment_tokens"), count(tmp_path, "episodes")) == (2, 1)


def test_new_episode_after_a_finished_follow_up_starts_another_one(tmp_path: Path) -> None:
    assert enrol(tmp_path).returncode == 0
    assert run_cli("followup", "stop", "--label", "P-001", cwd=tmp_path).returncode == 0
    assert_refused(enrol(tmp_path), "last follow-up stopped", "--new-episode")
    again = enrol(tmp_path, "--new-episode")
    assert again.returncode == 0, again.stderr
    assert (count(tmp_path, "patients"), count(tmp_path, "episodes")) == (1, 2)
    assert_refused(enrol(tmp_path, "--new-episode", label="P-999"), "no patient has the label")
    assert count(tmp_path, "patients") == 1


async def test_the_patient_opens_the_new_episode_from_the_same_chat(harness: BotHarness) -> None:
    patient = await harness.consented_patient(1401, label="P-001")
    details: dict[str, Any] = {
        "label": "P-001",
        "procedure_at": harness.clock.now() + timedelta(days=2),
        "side": KneeSide.RIGHT,
        "indication": Indication.OSTEOARTHRITIS,
        "language": "fr",
        "protocol": harness.ctx.protocols.registry.latest("knee-cryoneurolysis"),
    }
    with pytest.raises(UsageError, match="in progress"):
        await enrolment.enrol(harness.ctx, **details, new_episode=True)
    await followup.stop(harness.ctx, label="P-001", actor="cli")
    with pytest.raises(enrolment.LabelTakenError, match="last follow-up stopped"):
        await enrolment.enrol(harness.ctx, **details)
    invitation = await enrolment.enrol(harness.ctx, **details, new_episode=True)

    patient.say(f"/start {invitation.token}")
    patient.tap(await patient.next(), "J'accepte")
    patient.tap(await patient.next(), "4")
    await patient.until("Prochain")
    async with harness.ctx.sessions() as session:
        episodes = list(await session.scalars(select(Episode).order_by(Episode.id)))
    assert [(e.status, e.side) for e in episodes] == [("stopped", "left"), ("active", "right")]
