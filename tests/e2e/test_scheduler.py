"""The dispatcher end to end, through python-telegram-bot and the fake Telegram server, on a
manual clock: restarts, reminders and quiet hours, partial and cancelled check-ins, a blocked
patient, Telegram's 429 / 5xx / lost responses, the per-chat rate limit, and the bot's own
wake-up job (the only tests that run it: the others tick the dispatcher themselves)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, update

from bot.db.models import Alert, CheckIn
from bot.protocols import default_schedules_dir
from bot.services import dispatch, followup
from tests import harness as h
from tests.harness import PARIS, BotHarness
from tests.harness import Patient as VirtualPatient
from tests.services.population import populate

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)  # d0_evening (procedure 1 Dec 09:30)
D1 = datetime(2026, 12, 2, 10, 0, tzinfo=PARIS)
D2 = datetime(2026, 12, 3, 10, 0, tzinfo=PARIS)
GREETING = "Voici votre point de suivi"  # the first question of every check-in
INFO = "Il est normal d'avoir un peu de gonflement"  # d0_evening's information message
REMINDER = "Petit rappel"


def count(harness: BotHarness, chat_id: int, needle: str) -> int:
    """How many messages to ``chat_id`` contain ``needle``."""
    return sum(needle in (m.text or "") for m in harness.server.sent(chat_id))


async def states(harness: BotHarness) -> dict[str, tuple[str, str | None]]:
    """Check-in id → (status, reason), for the only patient of a test."""
    async with harness.ctx.sessions() as session:
        rows = await session.scalars(select(CheckIn).order_by(CheckIn.due_at))
        return {row.def_id: (row.status, row.status_reason) for row in rows}


async def test_after_a_restart_due_checkins_in_their_window_are_sent_older_ones_missed(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(1101)
    await harness.stop_bot()
    # Down for the whole day-0 evening window (18:00-20:30); d1 (10:00-20:00) is open at noon.
    harness.clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=PARIS))
    await harness.start_bot()
    await harness.tick()

    await patient.until(GREETING)
    assert (await states(harness))["d0_evening"] == ("missed", None)
    assert (await states(harness))["d1"][0] == "awaiting"
    assert (await states(harness))["d2"] == ("scheduled", None)
    assert count(harness, 1101, GREETING) == 1
    assert count(harness, 1101, INFO) == 0  # a stale check-in is never sent late


async def test_reminders_come_after_the_delay_at_most_max_then_the_checkin_is_missed(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(1102)
    await harness.advance_to(D1)
    await patient.until(GREETING)
    # knee-cryoneurolysis: reminders 120 min apart, at most 2; d1's window is 10 h.
    for minutes, expected in ((119, 0), (120, 1), (239, 1), (240, 2), (480, 2), (599, 2)):
        await harness.advance_to(D1 + timedelta(minutes=minutes))
        assert count(harness, 1102, REMINDER) == expected, minutes
    assert (await states(harness))["d1"] == ("awaiting", None)
    await harness.advance_to(D1 + timedelta(hours=10))
    assert (await states(harness))["d1"] == ("missed", None)
    await harness.advance_to(D1 + timedelta(hours=13))
    assert count(harness, 1102, REMINDER) == 2


def _protocol_variant(folder: Path, **d1: object) -> Path:
    """A copy of the knee protocol as its next version with d1 changed: the harness loads it."""
    source = default_schedules_dir() / "knee-cryoneurolysis.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["version"] += 1
    for checkin in data["checkins"]:
        if checkin["id"] == "d1":
            checkin.update(d1)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "knee-cryoneurolysis.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return folder


async def test_a_reminder_due_in_quiet_hours_waits_for_their_end(
    harness: BotHarness, tmp_path: Path
) -> None:
    # d1 at 18:00 with a 15 h window (until 09:00 the next day): the 2nd reminder (22:00) is in
    # quiet hours (21:00-08:00) and waits for 08:00.
    harness.settings_overrides = {
        "schedules_dir": _protocol_variant(tmp_path / "schedules", time="18:00", window_hours=15)
    }
    await harness.stop_bot()
    await harness.start_bot()
    patient = await harness.consented_patient(1103)
    d1 = datetime(2026, 12, 2, 18, 0, tzinfo=PARIS)
    await harness.advance_to(d1)
    await patient.until(GREETING)
    for when, expected in (
        (datetime(2026, 12, 2, 20, 0, tzinfo=PARIS), 1),
        (datetime(2026, 12, 2, 22, 0, tzinfo=PARIS), 1),
        (datetime(2026, 12, 3, 2, 0, tzinfo=PARIS), 1),
        (datetime(2026, 12, 3, 7, 59, tzinfo=PARIS), 1),
        (datetime(2026, 12, 3, 8, 0, tzinfo=PARIS), 2),
    ):
        await harness.advance_to(when)
        assert count(harness, 1103, REMINDER) == expected, when
    await harness.advance_to(datetime(2026, 12, 3, 9, 0, tzinfo=PARIS))
    assert (await states(harness))["d1"] == ("missed", None)


async def test_a_checkin_still_open_when_the_next_falls_due_is_closed_partial(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(1104)
    await harness.advance_to(D1)
    question = await patient.until(GREETING)
    patient.tap(question, "3")
    await patient.until("Noté : 3/10")
    # Staff kept d1 open past d2's time (windows never overlap in a plan, only after changes).
    async with harness.ctx.sessions.begin() as session:
        await session.execute(
            update(CheckIn)
            .where(CheckIn.def_id == "d1")
            .values(window_ends_at=D2 + timedelta(hours=2))
        )
    await harness.advance_to(D2)
    await patient.until(GREETING)
    assert (await states(harness))["d1"] == ("partial", None)
    assert (await states(harness))["d2"][0] == "awaiting"


async def test_checkins_due_before_consent_are_cancelled_not_missed(harness: BotHarness) -> None:
    # Enrolled on 29 Nov, opens the link on 1 Dec at 08:00: d0 and d1 are past.
    invitation = await harness.enrol(
        "P-105", procedure_at=datetime(2026, 11, 29, 9, 30, tzinfo=PARIS)
    )
    patient = VirtualPatient(harness.server, 1105, "fr")
    patient.say(f"/start {invitation.token}")
    patient.tap(await patient.next(), "J'accepte")
    patient.tap(await patient.next(), "4")
    await patient.until("Prochain point")
    found = await states(harness)
    assert found["d0_evening"] == ("cancelled", "before_consent")
    assert found["d1"] == ("cancelled", "before_consent")
    assert found["d2"] == ("scheduled", None)  # 1 Dec 10:00
    await harness.advance_to(datetime(2026, 12, 1, 10, 0, tzinfo=PARIS))
    await patient.until(GREETING)
    async with harness.ctx.sessions() as session:
        assert list(await session.scalars(select(Alert))) == []


async def test_a_patient_who_blocked_the_bot_gets_nothing_more_and_staff_are_alerted(
    harness: BotHarness,
) -> None:
    await harness.consented_patient(1106)
    harness.server.block_bot(1106)
    await harness.advance_to(EVENING)
    card = await harness.staff_message("bloqué le bot")
    assert "P-001" in (card.text or "")
    assert (await states(harness))["d0_evening"] == ("cancelled", "blocked")

    for when in (D1, D1 + timedelta(hours=2), D2, D2 + timedelta(hours=12)):
        await harness.advance_to(when)
    found = await states(harness)
    assert found["d1"] == ("cancelled", "blocked")
    assert found["d2"] == ("cancelled", "blocked")
    async with harness.ctx.sessions() as session:
        rules = list(await session.scalars(select(Alert.rule_id)))
    assert rules == ["bot_blocked"]  # no "missed check-ins" alert for a silence we caused


async def test_retry_after_is_honoured_and_the_opening_is_completed_without_repeats(
    harness: BotHarness,
) -> None:
    """Sandbox configuration (no PTB rate limiter): the 429 comes back to the dispatcher."""
    await harness.consented_patient(1107)
    await harness.settle()
    harness.server.PRIVATE_BURST = 1.0  # one message, then 1/s: the question gets a 429
    harness.server.enforce_limits = True
    await harness.advance_to(EVENING)
    harness.server.enforce_limits = False
    assert (count(harness, 1107, INFO), count(harness, 1107, GREETING)) == (1, 0)
    async with harness.ctx.sessions() as session:
        row = await session.scalar(select(CheckIn).where(CheckIn.def_id == "d0_evening"))
        assert row is not None
        assert (row.status, row.opening_sent) == ("scheduled", 1)
        assert row.retry_at == EVENING + timedelta(seconds=1)

    await harness.advance_to(EVENING + timedelta(milliseconds=900))
    assert count(harness, 1107, GREETING) == 0
    await harness.advance_to(EVENING + timedelta(seconds=1))
    assert (count(harness, 1107, INFO), count(harness, 1107, GREETING)) == (1, 1)
    assert (await states(harness))["d0_evening"] == ("awaiting", None)


async def test_network_errors_and_5xx_are_retried_with_backoff_and_delivered_once(
    harness: BotHarness,
) -> None:
    await harness.consented_patient(1108)
    await harness.settle()
    harness.server.inject_fault("500", chat_id=1108)
    await harness.advance_to(EVENING)
    base = dispatch.RETRY_BASE
    harness.server.inject_fault("502", chat_id=1108)
    await harness.advance_to(EVENING + base - timedelta(seconds=1))
    assert harness.server.stats()["status_codes"].get("502") is None  # not retried yet
    await harness.advance_to(EVENING + base)  # 2nd attempt: 502, next wait doubles
    assert harness.server.stats()["status_codes"]["502"] == 1
    await harness.advance_to(EVENING + base + 2 * base - timedelta(seconds=1))
    assert count(harness, 1108, GREETING) == 0
    await harness.advance_to(EVENING + base + 2 * base)
    assert (count(harness, 1108, INFO), count(harness, 1108, GREETING)) == (1, 1)
    assert harness.server.stats()["status_codes"]["500"] == 1


async def test_a_lost_response_repeats_at_most_the_message_it_was_for(
    harness: BotHarness,
) -> None:
    """The bound for lost responses: Telegram applied the request but the bot got an error, so
    it cannot know and sends again — one duplicate per lost response, never a lost check-in."""
    await harness.consented_patient(1109)
    await harness.settle()
    harness.server.inject_fault("drop", chat_id=1109)  # the information message
    await harness.advance_to(EVENING)
    assert (count(harness, 1109, INFO), count(harness, 1109, GREETING)) == (1, 0)
    await harness.advance_to(EVENING + dispatch.RETRY_BASE)
    lost_responses = 1
    assert count(harness, 1109, INFO) == 1 + lost_responses
    assert count(harness, 1109, GREETING) == 1


class RateLimitedHarness(BotHarness):
    """The production configuration: PTB's AIORateLimiter plus our per-private-chat pacing."""

    rate_limit = True


@pytest.fixture
async def limited(database: h.TestDatabase, tmp_path: Path) -> AsyncIterator[BotHarness]:
    """The bot with rate limiting, against a fake server that enforces Telegram's limits."""
    async with RateLimitedHarness(database, tmp_path) as running:
        running.server.enforce_limits = True
        yield running


async def test_paced_messages_to_one_chat_never_trip_telegrams_limit(limited: BotHarness) -> None:
    # Consent, baseline, "noted", "started", then the evening's information and first question:
    # six messages to one chat within a few seconds, above Telegram's ~1/s.
    patient = await limited.consented_patient(1110)
    await limited.advance_to(EVENING)
    await patient.until(GREETING)
    assert (count(limited, 1110, INFO), count(limited, 1110, GREETING)) == (1, 1)
    assert [status for _, status in limited.server.request_log if status == 429] == []


async def test_with_the_rate_limiter_a_429_is_waited_out_and_sent_in_the_same_tick(
    limited: BotHarness,
) -> None:
    (chat,) = await populate(limited.ctx.sessions, count=1, due_at=limited.clock.now())
    limited.server.add_user(chat)
    limited.server.inject_fault("429", chat_id=chat, retry_after=1)
    report = await limited.tick()
    assert (report.sent, report.failed) == (1, 0)  # PTB waited retry_after and sent again
    assert count(limited, chat, GREETING) == 1
    assert limited.server.stats()["status_codes"]["429"] == 1


class WakingHarness(BotHarness):
    """The bot with its own wake-up job (DispatcherWaker), as in production."""

    wake_dispatcher = True


@pytest.fixture
async def waking(database: h.TestDatabase, tmp_path: Path) -> AsyncIterator[BotHarness]:
    """A bot that ticks its dispatcher by itself: the test never calls ``tick()``."""
    async with WakingHarness(database, tmp_path) as running:
        yield running


async def test_the_harness_bot_has_no_wake_up_job_so_the_tests_tick_is_the_only_one(
    harness: BotHarness, waking: BotHarness
) -> None:
    assert harness.runtime is not None and waking.runtime is not None
    assert harness.runtime.waker is None
    assert harness.runtime.application.job_queue is not None
    assert harness.runtime.application.job_queue.jobs() == ()
    assert waking.runtime.waker is not None


async def test_the_bots_own_wake_up_sends_what_fell_due_while_it_was_down(
    waking: BotHarness,
) -> None:
    patient = await waking.consented_patient(1111)
    await waking.stop_bot()
    waking.clock.set(EVENING)
    await waking.start_bot()  # the waker's start-up tick, not the test, sends the evening check-in
    await patient.until(GREETING)
    assert (await states(waking))["d0_evening"][0] == "awaiting"


async def test_a_check_in_staff_ask_for_now_is_sent_by_the_poked_wake_up(
    waking: BotHarness,
) -> None:
    patient = await waking.consented_patient(1112)
    waking.clock.set(datetime(2026, 12, 1, 11, 0, tzinfo=PARIS))
    assert await followup.checkin_now(waking.ctx, label="P-001", actor="staff:5001")
    await patient.until(GREETING)  # checkin_now poked the waker; nobody called tick()
    assert count(waking, 1112, GREETING) == 1
    assert (await states(waking))["d0_evening"][0] == "awaiting"
