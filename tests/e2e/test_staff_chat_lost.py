"""The bot loses a team chat at run time (removed from the staff group, the group upgraded to a
supergroup, removed from the on-call chat): the other chat is told once why and what to do, the
cards still arrive there, ``/healthz`` and ``cryo_staff_chat_reachable`` say so, a patient is
not told "the team has been alerted" when no chat can take the alert, and everything clears when
the chat works again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.telegram.ops import OpsServer
from tests.harness import ONCALL_CHAT, PARIS, STAFF_CHAT, BotHarness, Patient, eventually

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)
STAFF_SETTING = f"STAFF_CHAT_ID={STAFF_CHAT}"
ONCALL_SETTING = f"ONCALL_CHAT_ID={ONCALL_CHAT}"
TEAM_ALERTED = "L'équipe a été alertée"
ESCALATED = "non pris en charge"
SUPERGROUP = -1009876543210


@asynccontextmanager
async def ops_of(harness: BotHarness) -> AsyncIterator[str]:
    """The bot's /healthz and /metrics on a free port."""
    assert harness.runtime is not None
    ops = OpsServer(harness.ctx, harness.runtime.application, host="127.0.0.1", port=0)
    await ops.start()
    try:
        yield f"http://127.0.0.1:{ops.port}"
    finally:
        await ops.stop()


async def healthz(base: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as resp:
        return resp.status, await resp.json()


async def reachable(base: str) -> dict[str, float]:
    """cryo_staff_chat_reachable by chat label, as a scrape shows it."""
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as resp:
        body = await resp.text()
    return {
        sample.labels["chat"]: sample.value
        for family in text_string_to_metric_families(body)
        if family.name == "cryo_staff_chat_reachable"
        for sample in family.samples
    }


def texts(harness: BotHarness, chat_id: int) -> list[str]:
    return [m.text or "" for m in harness.server.sent(chat_id)]


async def pain_of_nine(harness: BotHarness, patients: list[Patient]) -> list[str]:
    """The evening check-in for each patient, who reports a pain of 9; the advice they got."""
    await harness.advance_to(EVENING)
    for patient in patients:
        patient.tap(await patient.until("douleur"), "9")
    return [(await patient.until("15 (SAMU)")).text or "" for patient in patients]


async def test_bot_removed_from_the_staff_group_oncall_is_told_once_and_gets_the_cards(
    harness: BotHarness,
) -> None:
    first = await harness.consented_patient(1001, label="P-001")
    second = await harness.consented_patient(1002, label="P-002")
    harness.server.remove_bot_from_group(STAFF_CHAT)
    async with ops_of(harness) as ops:
        advice = await pain_of_nine(harness, [first, second])
        assert all(TEAM_ALERTED in text for text in advice)  # on-call can take the alerts
        for seconds in range(10, 150, 10):
            await harness.advance_to(EVENING + timedelta(seconds=seconds))

        async def redirected() -> None:
            oncall = texts(harness, ONCALL_CHAT)
            assert sum("P-001" in text for text in oncall) == 1
            assert sum("P-002" in text for text in oncall) == 1

        await eventually(redirected)
        oncall = texts(harness, ONCALL_CHAT)
        notices = [text for text in oncall if STAFF_SETTING in text]
        assert len(notices) == 1
        assert "retiré du groupe" in notices[0]
        assert STAFF_SETTING in oncall[0]  # told why before the first card
        assert not any(ESCALATED in text for text in oncall)
        assert harness.server.sent(STAFF_CHAT) == []
        status, body = await healthz(ops)
        assert status == 503
        assert STAFF_SETTING in body["staff_chat"]
        assert body["oncall_chat"] == "ok"
        assert await reachable(ops) == {"staff": 0.0, "oncall": 1.0}

        # An admin adds the bot back: the next check clears it and on-call is told.
        harness.server.restore_bot(STAFF_CHAT)
        await harness.advance_to(EVENING + timedelta(minutes=4))
        back = await harness.server.wait_for(
            lambda m: m.chat_id == ONCALL_CHAT and "de nouveau" in (m.text or "")
        )
        assert STAFF_SETTING in (back.text or "")
        status, body = await healthz(ops)
        assert (status, body["staff_chat"]) == (200, "ok")
        assert await reachable(ops) == {"staff": 1.0, "oncall": 1.0}


async def test_a_staff_group_upgraded_to_a_supergroup_names_the_new_id(
    harness: BotHarness,
) -> None:
    harness.server.add_group(STAFF_CHAT, title="Staff", type_="group")
    patient = await harness.consented_patient(1003, label="P-003")
    harness.server.upgrade_group(STAFF_CHAT, new_chat_id=SUPERGROUP)
    async with ops_of(harness) as ops:
        await pain_of_nine(harness, [patient])
        card = await harness.server.wait_for(
            lambda m: m.chat_id == ONCALL_CHAT and "P-003" in (m.text or "")
        )
        assert card.buttons()  # on-call can acknowledge it there
        (notice,) = [text for text in texts(harness, ONCALL_CHAT) if STAFF_SETTING in text]
        assert f"STAFF_CHAT_ID={SUPERGROUP}" in notice
        assert "supergroupe" in notice
        status, body = await healthz(ops)
        assert status == 503
        assert str(SUPERGROUP) in body["staff_chat"]

    # STAFF_CHAT_ID is set to the supergroup and the bot restarted: all clear, cards go there.
    harness.settings_overrides = {"staff_chat_id": SUPERGROUP}
    await harness.stop_bot()
    await harness.start_bot()
    async with ops_of(harness) as ops:
        await harness.advance_to(EVENING + timedelta(minutes=2))
        status, body = await healthz(ops)
        assert (status, body["staff_chat"]) == (200, "ok")
    second = await harness.consented_patient(1004, label="P-004")
    await harness.advance_to(datetime(2026, 12, 2, 10, 0, tzinfo=PARIS))
    second.tap(await second.until("24 h"), "9")
    await harness.server.wait_for(lambda m: m.chat_id == SUPERGROUP and "P-004" in (m.text or ""))


async def test_bot_removed_from_the_oncall_chat_staff_are_told_and_get_the_reescalation(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(1005, label="P-005")
    harness.server.remove_bot_from_group(ONCALL_CHAT, banned=False)
    async with ops_of(harness) as ops:
        await pain_of_nine(harness, [patient])
        await harness.staff_message("P-005")
        await harness.advance_to(EVENING + timedelta(minutes=15, seconds=5))
        await harness.server.wait_for(
            lambda m: m.chat_id == STAFF_CHAT and ESCALATED in (m.text or "")
        )
        staff = texts(harness, STAFF_CHAT)
        notices = [text for text in staff if ONCALL_SETTING in text]
        assert len(notices) == 1
        assert "relancées ici" in notices[0]
        status, body = await healthz(ops)
        assert status == 503
        assert ONCALL_SETTING in body["oncall_chat"]
        assert await reachable(ops) == {"staff": 1.0, "oncall": 0.0}


async def test_with_both_team_chats_lost_the_patient_is_told_to_call_not_that_the_team_knows(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(1006, label="P-006")
    harness.server.remove_bot_from_group(STAFF_CHAT)
    harness.server.remove_bot_from_group(ONCALL_CHAT)
    async with ops_of(harness) as ops:
        await harness.advance_to(EVENING - timedelta(minutes=1))  # the bot's periodic check
        (advice,) = await pain_of_nine(harness, [patient])
        assert TEAM_ALERTED not in advice
        assert "Nous n'avons pas pu prévenir l'équipe" in advice
        assert "01 23 45 67 89" in advice  # the unit's number is always there
        status, body = await healthz(ops)
        assert status == 503
        assert STAFF_SETTING in body["staff_chat"]
        assert ONCALL_SETTING in body["oncall_chat"]
        assert body["alerts"] == "no team chat can take alerts"

        # The alert is kept: the staff group works again and the card arrives there.
        harness.server.restore_bot(STAFF_CHAT)
        for minutes in (2, 4, 6):
            await harness.advance_to(EVENING + timedelta(minutes=minutes))
        await harness.staff_message("P-006")


async def test_a_bot_no_longer_allowed_to_send_in_the_staff_group_is_seen_by_the_check(
    harness: BotHarness,
) -> None:
    harness.server.restrict_bot(STAFF_CHAT)
    async with ops_of(harness) as ops:
        await harness.tick()  # no alert is due: the periodic check alone finds it
        notice = await harness.server.wait_for(
            lambda m: m.chat_id == ONCALL_CHAT and STAFF_SETTING in (m.text or "")
        )
        assert "n'a plus le droit" in (notice.text or "")
        status, body = await healthz(ops)
        assert status == 503
        assert "restriction" in body["staff_chat"]


async def test_a_photo_sent_while_the_staff_group_is_lost_reaches_oncall_after_its_card(
    harness: BotHarness,
) -> None:
    """A knee photo used to be owed to the staff group whatever its state, so it waited there
    while its card went to on-call."""
    patient = await harness.consented_patient(1001, label="P-001")
    harness.server.remove_bot_from_group(STAFF_CHAT)
    await pain_of_nine(harness, [patient])

    async def card_at_oncall() -> None:
        assert any("P-001" in text for text in texts(harness, ONCALL_CHAT))

    await eventually(card_at_oncall)
    harness.server.send_photo(patient.user_id, caption="la peau a des cloques")
    photo = await harness.server.wait_for(lambda m: m.chat_id == ONCALL_CHAT and m.kind == "photo")
    assert "P-001" in (photo.text or "")
    assert harness.server.sent(STAFF_CHAT) == []
