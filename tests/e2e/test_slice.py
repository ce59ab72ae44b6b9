"""The end-to-end slice through python-telegram-bot and the fake Telegram server over HTTP:
enrolment, consent, a scheduled check-in, an answer saved, a worrying answer alerting staff."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.db.models import Alert, Answer, AuditEvent, CheckIn, Episode, Patient
from tests.harness import NURSE, PARIS, STAFF_CHAT, BotHarness, eventually
from tests.harness import Patient as VirtualPatient


async def test_patient_enrolled_asked_answers_and_pain_9_alerts_staff(harness: BotHarness) -> None:
    invitation = await harness.enrol("P-001", language="fr")
    assert invitation.link.startswith("https://t.me/cryo_followup_bot?start=")
    assert len(invitation.token) <= 64
    patient = VirtualPatient(harness.server, 1001, "fr")
    patient.say(f"/start {invitation.token}")
    consent = await patient.next()
    assert "Radiologie interventionnelle" in (consent.text or "")
    patient.tap(consent, "J'accepte")
    baseline = await patient.next()
    assert [label for label, _ in baseline.buttons()] == [str(n) for n in range(11)]
    patient.tap(baseline, "6")
    await patient.until("Prochain point")

    async with harness.ctx.sessions() as session:
        episode = await session.scalar(select(Episode))
        assert episode is not None
        assert (episode.status, episode.baseline_pain, episode.consent_version) == ("active", 6, 1)
        scheduled = await session.scalar(
            select(func.count()).select_from(CheckIn).where(CheckIn.status == "scheduled")
        )
        assert scheduled == 9

    report = await harness.advance_to(datetime(2026, 12, 1, 18, 0, tzinfo=PARIS))
    assert report.sent == 1
    info = await patient.next()
    assert "gonflement" in (info.text or "")
    question = await patient.next()
    assert "douleur" in (question.text or "")
    assert len(question.buttons()) == 11
    openings = [t for t in patient.all_texts() if "Voici votre point de suivi" in t]
    assert len(openings) == 1
    patient.tap(question, "9")
    await patient.until("Noté : 9/10")
    advice = await patient.until("15")
    assert "01 23 45 67 89" in (advice.text or "")

    card = await harness.staff_message("P-001")
    assert "URGENT" in (card.text or "")
    assert "9/10" in (card.text or "")
    assert [label for label, _ in card.buttons()] == ["Je prends", "Résolu…"]

    async def saved() -> None:
        async with harness.ctx.sessions() as session:
            answer = await session.scalar(
                select(Answer).where(Answer.question_id == "pain_evening")
            )
            assert answer is not None
            assert (answer.value, answer.kind, answer.status) == (9, "button", "ok")
            alert = await session.scalar(select(Alert))
            assert alert is not None
            assert (alert.rule_id, alert.severity, alert.delivery) == (
                "pain_high_evening",
                "urgent",
                "sent",
            )

    await eventually(saved)

    harness.server.press_button(
        NURSE, card.message_id, card.button_data("Je prends"), chat_id=STAFF_CHAT
    )
    edited = await harness.server.wait_for(
        lambda m: (
            m.chat_id == STAFF_CHAT
            and m.message_id == card.message_id
            and "Claire" in (m.text or "")
        )
    )
    assert [label for label, _ in edited.buttons()] == ["Résolu…"]


async def test_free_text_answer_is_parsed_and_raw_text_kept(harness: BotHarness) -> None:
    patient = await harness.consented_patient(1002, language="en")
    await harness.advance_to(datetime(2026, 12, 1, 18, 0, tzinfo=PARIS))
    await patient.until("right now")
    patient.say("about 3 I'd say")
    await patient.until("Noted: 3/10")
    async with harness.ctx.sessions() as session:
        answer = await session.scalar(select(Answer).where(Answer.question_id == "pain_evening"))
        assert answer is not None
        assert (answer.value, answer.raw_text) == (3, "about 3 I'd say")
    assert not [m for m in harness.server.sent(STAFF_CHAT) if "P-001" in (m.text or "")]


async def test_bad_used_and_expired_tokens_link_nothing(harness: BotHarness) -> None:
    stranger = VirtualPatient(harness.server, 2001, "fr")
    stranger.say("/start not-a-real-token")
    assert "pas valide" in ((await stranger.next()).text or "")

    invitation = await harness.enrol("P-002")
    first = VirtualPatient(harness.server, 2002, "fr")
    first.say(f"/start {invitation.token}")
    assert "J'accepte" in [label for label, _ in (await first.next()).buttons()]
    second = VirtualPatient(harness.server, 2003, "en")
    second.say(f"/start {invitation.token}")
    assert "already been used" in ((await second.next()).text or "")

    late = await harness.enrol("P-003")
    harness.clock.advance(timedelta(days=8))
    third = VirtualPatient(harness.server, 2004, "en")
    third.say(f"/start {late.token}")
    assert "expired" in ((await third.next()).text or "")

    async with harness.ctx.sessions() as session:
        linked = list(
            await session.scalars(select(Patient.chat_id).where(Patient.chat_id.is_not(None)))
        )
        assert linked == [2002]
        refusals = list(
            await session.scalars(
                select(AuditEvent.details).where(AuditEvent.action == "enrol_token_refused")
            )
        )
        assert sorted(d["reason"] for d in refusals) == ["expired", "unknown", "used"]


async def test_restart_loses_nothing_and_conversation_continues(harness: BotHarness) -> None:
    patient = await harness.consented_patient(1003, language="fr")
    await harness.advance_to(datetime(2026, 12, 1, 18, 0, tzinfo=PARIS))
    question = await patient.until("douleur")
    patient.tap(question, "4")
    await patient.until("Noté : 4/10")
    next_question = await patient.until("Du sang traverse-t-il encore le pansement")

    await harness.stop_bot()
    await harness.start_bot()

    patient.tap(next_question, "Non")
    await patient.until("orteils")
    async with harness.ctx.sessions() as session:
        answers = list(await session.scalars(select(Answer.question_id).order_by(Answer.id)))
        assert answers == ["baseline", "pain_evening", "bleeding"]


async def test_non_staff_cannot_acknowledge(harness: BotHarness) -> None:
    patient = await harness.consented_patient(1004, language="fr")
    await harness.advance_to(datetime(2026, 12, 1, 18, 0, tzinfo=PARIS))
    patient.tap(await patient.until("douleur"), "10")
    card = await harness.staff_message("P-001")
    intruder = 6666
    harness.server.add_user(intruder, first_name="Visitor")
    harness.server.press_button(
        intruder, card.message_id, card.button_data("Je prends"), chat_id=STAFF_CHAT
    )
    answer = await _callback_answer(harness, "seule l'équipe")
    assert answer["show_alert"] is True

    async def refused() -> None:
        async with harness.ctx.sessions() as session:
            alert = await session.scalar(select(Alert))
            assert alert is not None and alert.status == "open"
            event = await session.scalar(
                select(AuditEvent).where(AuditEvent.action == "staff_action_refused")
            )
            assert event is not None and event.actor == f"user:{intruder}"

    await eventually(refused)


async def _callback_answer(harness: BotHarness, needle: str) -> dict[str, object]:
    import asyncio

    for _ in range(200):
        for answer in harness.server.callback_answers:
            if needle in str(answer.get("text") or ""):
                return answer
        await asyncio.sleep(0.02)
    raise AssertionError(
        f"no callback answer containing {needle!r}: {harness.server.callback_answers}"
    )
