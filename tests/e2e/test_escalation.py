"""Escalation end to end: staff alerts, acknowledgement, on-call re-escalation, delivery that
survives a failing staff chat, deduplication, safety advice that never waits, the digest."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.db.models import Alert, AuditEvent
from tests.harness import NURSE, ONCALL_CHAT, PARIS, STAFF_CHAT, BotHarness, Patient, eventually

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)


async def _pain_alert(harness: BotHarness, *, user_id: int = 1001, language: str = "fr") -> Patient:
    """A consented patient who reports a pain of 9 on the evening of the procedure."""
    patient = await harness.consented_patient(user_id, language=language)
    await harness.advance_to(EVENING)
    question = await patient.until("douleur" if language == "fr" else "hurt")
    patient.tap(question, "9")
    return patient


async def _alerts(harness: BotHarness) -> list[Alert]:
    async with harness.ctx.sessions() as session:
        return list(await session.scalars(select(Alert).order_by(Alert.id)))


async def test_unacknowledged_urgent_alert_goes_to_oncall_until_acknowledged(
    harness: BotHarness,
) -> None:
    await _pain_alert(harness)
    card = await harness.staff_message("P-001")

    await harness.advance_to(EVENING + timedelta(minutes=10))
    assert harness.server.sent(ONCALL_CHAT) == []

    await harness.advance_to(EVENING + timedelta(minutes=15, seconds=5))
    first = await harness.server.wait_for(lambda m: m.chat_id == ONCALL_CHAT)
    assert "non pris en charge depuis 15 min" in (first.text or "")
    assert "P-001" in (first.text or "")

    await harness.advance_to(EVENING + timedelta(minutes=30, seconds=10))
    await harness.server.wait_for_count(2, chat_id=ONCALL_CHAT)

    harness.server.press_button(
        NURSE, card.message_id, card.button_data("Je prends"), chat_id=STAFF_CHAT
    )
    await harness.server.wait_for(
        lambda m: (
            m.chat_id == STAFF_CHAT
            and m.message_id == card.message_id
            and "Claire" in (m.text or "")
        )
    )
    await harness.advance_to(EVENING + timedelta(hours=2))
    assert len(harness.server.sent(ONCALL_CHAT)) == 2

    async def audited() -> None:
        async with harness.ctx.sessions() as session:
            actions = list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
        assert actions.count("alert_reescalated") == 2
        assert "alert_acknowledged" in actions
        assert "alert_delivered" in actions

    await eventually(audited)


async def test_alert_survives_a_failing_staff_chat_and_arrives_exactly_once(
    harness: BotHarness,
) -> None:
    harness.server.inject_fault("500", chat_id=STAFF_CHAT, count=2)
    harness.server.inject_fault("429", chat_id=STAFF_CHAT, count=1, retry_after=30)
    patient = await _pain_alert(harness)
    advice = await patient.until("15 (SAMU)")
    assert "01 23 45 67 89" in (advice.text or "")

    async def pending() -> None:
        (alert,) = await _alerts(harness)
        assert alert.delivery == "pending"
        assert alert.delivery_attempts >= 1

    await eventually(pending)
    for minutes in range(1, 8):
        await harness.advance_to(EVENING + timedelta(minutes=minutes))
    card = await harness.staff_message("P-001")
    (alert,) = await _alerts(harness)
    assert alert.delivery == "sent"
    assert alert.staff_message_id == card.message_id
    staff_cards = [m for m in harness.server.sent(STAFF_CHAT) if "P-001" in (m.text or "")]
    assert len(staff_cards) == 1
    await harness.advance_to(EVENING + timedelta(minutes=20))
    assert len([m for m in harness.server.sent(STAFF_CHAT) if "P-001" in (m.text or "")]) == 1


async def test_same_rule_again_extends_the_open_alert_and_edits_its_card(
    harness: BotHarness,
) -> None:
    patient = await _pain_alert(harness)
    card = await harness.staff_message("P-001")
    await harness.advance_to(datetime(2026, 12, 2, 10, 0, tzinfo=PARIS))
    question = await patient.until("24 h")
    patient.tap(question, "8")
    await patient.until("Noté : 8/10")

    async def extended() -> None:
        alerts = await _alerts(harness)
        assert [a.rule_id for a in alerts] == ["pain_high_evening", "pain_high"]

    await eventually(extended)
    second = await harness.staff_message("Douleur moyenne")
    assert second.message_id != card.message_id
    patient.tap(await patient.until("plus forte"), "9")
    await patient.next()

    async def still_two() -> None:
        alerts = await _alerts(harness)
        assert len(alerts) == 2

    await eventually(still_two)


async def test_resolved_alert_lets_a_new_finding_open_a_new_alert(harness: BotHarness) -> None:
    from bot.services import alerts as alert_service

    await _pain_alert(harness)
    await harness.staff_message("P-001")
    (alert,) = await _alerts(harness)
    resolved = await alert_service.resolve(
        harness.ctx, alert_id=alert.id, staff_name="Claire", staff_id=NURSE, note="appelée"
    )
    assert resolved is not None
    assert (
        await alert_service.resolve(
            harness.ctx, alert_id=alert.id, staff_name="Claire", staff_id=NURSE
        )
        is None
    )
    async with harness.ctx.sessions.begin() as session:
        from bot.db.models import Episode
        from bot.domain.protocol import Severity
        from bot.domain.rules import Evidence, Finding

        episode = await session.get(Episode, alert.episode_id)
        assert episode is not None
        await alert_service.raise_findings(
            session,
            now=harness.clock.now(),
            episode=episode,
            findings=[
                Finding(
                    "pain_high_evening", Severity.URGENT, (Evidence("pain_evening", None, 9, 0),)
                )
            ],
        )
    alerts = await _alerts(harness)
    assert [(a.rule_id, a.status) for a in alerts] == [
        ("pain_high_evening", "resolved"),
        ("pain_high_evening", "open"),
    ]


async def test_emergency_free_text_tells_patient_to_call_15_first_even_at_night(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(1005, language="en")
    harness.clock.set(datetime(2026, 12, 2, 2, 30, tzinfo=PARIS))  # quiet hours: advice never waits
    patient.say("I'm short of breath since this morning and my chest hurts")
    advice = await patient.until("112")
    assert (advice.text or "").startswith("Call 15")
    card = await harness.staff_message("URGENCE VITALE")
    assert "P-001" in (card.text or "")


async def test_review_finding_waits_for_the_digest_and_patient_is_told(harness: BotHarness) -> None:
    patient = await harness.consented_patient(1006, language="fr")
    patient.say("tout le pied est engourdi depuis ce matin")
    advice = await patient.until("prochain jour ouvré")
    assert "01 23 45 67 89" in (advice.text or "")
    await harness.staff_message("Engourdissement")
    (alert,) = await _alerts(harness)
    assert (alert.rule_id, alert.severity, alert.next_escalation_at) == (
        "numbness_spreading",
        "review",
        None,
    )

    # Friday 4 Dec 2026 08:30: the digest; Saturday: none.
    await harness.advance_to(datetime(2026, 12, 4, 8, 29, tzinfo=PARIS))
    assert not [m for m in harness.server.sent(STAFF_CHAT) if "À revoir" in (m.text or "")]
    await harness.advance_to(datetime(2026, 12, 4, 8, 31, tzinfo=PARIS))
    digest = await harness.staff_message("À revoir (2)")  # + the missed check-ins since day 0
    assert "P-001 J+3 Engourdissement" in (digest.text or "")
    assert "sans réponse" in (digest.text or "")
    await harness.advance_to(datetime(2026, 12, 4, 12, 0, tzinfo=PARIS))
    await harness.advance_to(datetime(2026, 12, 5, 9, 0, tzinfo=PARIS))
    digests = [
        m for m in harness.server.sent(STAFF_CHAT) if "Suivi cryoneurolyse" in (m.text or "")
    ]
    assert len(digests) == 1


async def test_two_missed_checkins_in_a_row_raise_a_review_alert(harness: BotHarness) -> None:
    await harness.consented_patient(1007, language="fr")
    await harness.advance_to(EVENING)
    await harness.advance_to(datetime(2026, 12, 1, 21, 0, tzinfo=PARIS))  # d0 window closed
    assert await _alerts(harness) == []
    await harness.advance_to(datetime(2026, 12, 2, 10, 0, tzinfo=PARIS))
    await harness.advance_to(datetime(2026, 12, 2, 20, 30, tzinfo=PARIS))  # d1 window closed

    async def raised() -> None:
        alerts = await _alerts(harness)
        assert [(a.rule_id, a.severity) for a in alerts] == [("missed_checkins", "review")]

    await eventually(raised)
    await harness.staff_message("sans réponse")
    async with harness.ctx.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "checkin_missed")
        )
    assert count == 2


async def test_safety_advice_survives_a_429_on_the_patient_chat(harness: BotHarness) -> None:
    patient = await harness.consented_patient(1008, language="fr")
    await harness.advance_to(EVENING)
    question = await patient.until("douleur")
    harness.server.inject_fault("429", chat_id=1008, count=1, retry_after=1)
    patient.tap(question, "9")
    await harness.settle()
    # The message owed to the patient waits for Telegram's retry_after; the dispatcher (woken
    # for it in production, ticked here) sends it.
    await harness.advance_to(EVENING + timedelta(seconds=5))
    advice = await patient.until("15 (SAMU)")
    assert "01 23 45 67 89" in (advice.text or "")
    assert any("Noté : 9/10" in text for text in patient.all_texts())
