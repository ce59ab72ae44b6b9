"""The conversation through the fake Telegram server: enrolment and consent (versioned, asked
again when the text changes), refusal, hijacked links, notes read for red flags (negation and
doubt), clarifying questions, edited messages saved as corrections, the language of strangers."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from bot.db.models import Alert, Answer, AuditEvent, CheckIn, Episode, Patient
from bot.protocols import default_schedules_dir
from bot.services.enrolment import qr_png
from tests.harness import PARIS, STAFF_CHAT, BotHarness, eventually, question
from tests.harness import Patient as VirtualPatient

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)


async def episode_of(harness: BotHarness, label: str = "P-001") -> Episode:
    async with harness.ctx.sessions() as session:
        episode = await session.scalar(
            select(Episode).join(Patient).where(Patient.label == label).order_by(Episode.id)
        )
        assert episode is not None
        return episode


async def answers(harness: BotHarness) -> list[Answer]:
    async with harness.ctx.sessions() as session:
        return list(await session.scalars(select(Answer).order_by(Answer.id)))


async def alert_rules(harness: BotHarness) -> list[str]:
    async with harness.ctx.sessions() as session:
        return sorted(await session.scalars(select(Alert.rule_id)))


async def audit_actions(harness: BotHarness, action: str) -> list[AuditEvent]:
    async with harness.ctx.sessions() as session:
        return list(await session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_qr_code_is_a_png_of_the_link() -> None:
    image = qr_png("https://t.me/cryo_followup_bot?start=abc")
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    assert image != qr_png("https://t.me/cryo_followup_bot?start=abd")


async def test_welcome_names_the_unit_more_information_then_consent(harness: BotHarness) -> None:
    invitation = await harness.enrol("P-001", language="en")
    patient = VirtualPatient(harness.server, 4001, "fr")
    patient.say(f"/start {invitation.token}")
    welcome = await patient.next()
    text = welcome.text or ""
    assert "Radiologie interventionnelle" in text
    assert "/stop" in text and "Do you agree" in text  # the episode's language, not Telegram's
    assert [label for label, _ in welcome.buttons()] == ["I agree", "I refuse", "More information"]
    patient.tap(welcome, "More information")
    details = await patient.next()
    assert "/delete" in (details.text or "")
    patient.tap(details, "I agree")
    baseline = await patient.next()
    assert "Before the procedure" in (baseline.text or "")
    patient.say("seven")
    await patient.until("Noted: 7/10")
    await patient.until("Next check-in")
    episode = await episode_of(harness)
    assert (episode.status, episode.consent_version, episode.baseline_pain) == ("active", 1, 7)
    assert episode.baseline_source == "patient"
    (given,) = await audit_actions(harness, "consent_given")
    assert given.details == {"consent_version": 1}


async def test_refusal_is_respected_and_staff_informed(harness: BotHarness) -> None:
    invitation = await harness.enrol("P-002", language="fr")
    patient = VirtualPatient(harness.server, 4002, "fr")
    patient.say(f"/start {invitation.token}")
    patient.tap(await patient.next(), "Je refuse")
    await patient.until("vous ne recevrez aucun")
    await harness.staff_message("P-002 a refusé le suivi")
    patient.say("j'ai quand même mal au genou")
    declined = await patient.next()
    assert "refusé le suivi" in (declined.text or "")
    assert "01 23 45 67 89" in (declined.text or "")
    episode = await episode_of(harness, "P-002")
    assert episode.status == "refused"
    assert await answers(harness) == []
    async with harness.ctx.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CheckIn)) == 0


async def test_a_linked_chat_cannot_be_hijacked_by_another_token(harness: BotHarness) -> None:
    first = await harness.consented_patient(4003, language="fr", label="P-003")
    other = await harness.enrol("P-004", language="en")
    first.say(f"/start {other.token}")
    assert "déjà lié" in ((await first.next()).text or "")
    refused = await audit_actions(harness, "enrol_token_refused")
    assert [event.details["reason"] for event in refused] == ["linked"]
    assert refused[0].actor == "chat:4003"
    # The token was not used up: its real owner can still enrol.
    owner = VirtualPatient(harness.server, 4004, "en")
    owner.say(f"/start {other.token}")
    assert "I agree" in [label for label, _ in (await owner.next()).buttons()]
    async with harness.ctx.sessions() as session:
        linked = dict((await session.execute(select(Patient.label, Patient.chat_id))).all())
    assert linked == {"P-003": 4003, "P-004": 4004}


async def test_opening_ones_own_link_again_resumes(harness: BotHarness) -> None:
    invitation = await harness.enrol("P-005", language="fr")
    patient = VirtualPatient(harness.server, 4005, "fr")
    patient.say(f"/start {invitation.token}")
    await patient.next()
    patient.say(f"/start {invitation.token}")  # consent not given yet: asked again
    again = await patient.next()
    assert "J'accepte" in [label for label, _ in again.buttons()]
    patient.tap(again, "J'accepte")
    patient.tap(await patient.until("Avant le geste"), "5")
    await patient.until("Prochain point")
    await harness.advance_to(EVENING)
    await patient.until("douleur")
    patient.say(f"/start {invitation.token}")
    await patient.until("déjà inscrit")
    again = await question(patient)
    assert "douleur" in (again.text or "")
    assert await audit_actions(harness, "enrol_token_refused") == []


async def test_a_newer_consent_text_is_asked_before_anything_else(
    harness: BotHarness, tmp_path: Path
) -> None:
    patient = await harness.consented_patient(4006, language="fr")
    await harness.advance_to(EVENING)
    pain = await question(patient)
    schedules = tmp_path / "schedules_v2"
    schedules.mkdir()
    text = (default_schedules_dir() / "knee-cryoneurolysis.yaml").read_text()
    (version,) = re.findall(r"\nversion: (\d+)\n", text)
    assert text.count("consent:\n  version: 1\n") == 1
    text = text.replace(f"\nversion: {version}\n", f"\nversion: {int(version) + 1}\n").replace(
        "consent:\n  version: 1\n", "consent:\n  version: 2\n"
    )
    (schedules / "knee-cryoneurolysis.yaml").write_text(text)
    await harness.stop_bot()
    harness.settings_overrides = {"schedules_dir": schedules}
    await harness.start_bot()

    patient.tap(pain, "4")
    renewal = await patient.next()
    assert "ont changé" in (renewal.text or "")
    assert [label for label, _ in renewal.buttons()] == [
        "J'accepte",
        "Je refuse",
        "En savoir plus",
    ]
    patient.say("7")  # not a yes/no: the consent is asked again, nothing is recorded
    asked_again = await question(patient)
    assert "ont changé" in (asked_again.text or "")
    patient.tap(asked_again, "J'accepte")
    await patient.until("votre suivi continue")
    again = await question(patient)
    assert "douleur" in (again.text or "")
    patient.tap(again, "4")
    await patient.until("Noté : 4/10")
    episode = await episode_of(harness)
    assert (episode.consent_version, episode.status) == (2, "active")
    assert [a.question_id for a in await answers(harness)] == ["baseline", "pain_evening"]
    asked = await audit_actions(harness, "consent_renewal_asked")
    assert [event.details for event in asked] == [{"consent_version": 2}]
    shutil.rmtree(schedules)


async def test_note_read_for_red_flags_with_negation(harness: BotHarness) -> None:
    patient = await harness.consented_patient(4007, language="fr")
    patient.say("pas de fièvre, juste un peu fatiguée ce soir")
    saved = await patient.next()
    assert "votre message est enregistré" in (saved.text or "")
    assert await alert_rules(harness) == []
    patient.say("en fait j'ai 39 de fièvre depuis midi")
    advice = await patient.until("vérifié aujourd'hui")
    assert "01 23 45 67 89" in (advice.text or "")
    card = await harness.staff_message("P-001")
    assert "URGENT" in (card.text or "")
    notes = [(a.kind, a.raw_text) for a in await answers(harness) if a.kind == "note"]
    assert notes == [
        ("note", "pas de fièvre, juste un peu fatiguée ce soir"),
        ("note", "en fait j'ai 39 de fièvre depuis midi"),
    ]
    assert await alert_rules(harness) == ["fever"]


async def test_doubtful_mention_gets_a_clarifying_question(harness: BotHarness) -> None:
    fr = await harness.consented_patient(4008, language="fr", label="P-FR")
    en = await harness.consented_patient(4009, language="en", label="P-EN")
    fr.say("j'ai un truc au mollet")
    clarify = await question(fr)
    assert "mollet" in (clarify.text or "")
    assert [label for label, _ in clarify.buttons()] == ["Oui", "Non"]
    fr.tap(clarify, "Oui")
    await fr.until("vérifié aujourd'hui")
    await harness.staff_message("P-FR")

    en.say("my calf feels funny")
    en.tap(await question(en), "No")
    await en.until("Thank you, noted.")
    en.say("I think I have a fever maybe")
    await question(en)
    en.say("hmm")
    second = await question(en)
    assert (second.text or "").startswith("Please answer yes or no")
    en.say("dunno")
    await en.until("A nurse will contact you")
    async with harness.ctx.sessions() as session:
        rules = dict(
            (
                await session.execute(
                    select(Patient.label, Alert.rule_id)
                    .select_from(Alert)
                    .join(Episode, Alert.episode_id == Episode.id)
                    .join(Patient, Episode.patient_id == Patient.id)
                )
            ).all()
        )
    assert rules == {"P-FR": "calf_clot", "P-EN": "unclear_red_flag_answer"}


async def test_edited_answer_is_saved_as_a_correction_and_reevaluated(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(4010, language="fr")
    await harness.advance_to(EVENING)
    await question(patient)
    sent = harness.server.send_text(patient.user_id, "4")
    await patient.until("Noté : 4/10")
    await question(patient)  # the bleeding question
    harness.server.edit_text(patient.user_id, sent["message"]["message_id"], "9 en fait")
    await patient.until("j'ai corrigé votre réponse : 9/10")
    await patient.until("vérifié aujourd'hui")
    card = await harness.staff_message("P-001")
    assert "9/10" in (card.text or "")
    rows = [(a.kind, a.value, a.raw_text) for a in await answers(harness)]
    assert rows[-2:] == [("text", 4, "4"), ("correction", 9, "9 en fait")]
    # The conversation carries on where it was.
    bleeding = await question(patient)
    assert "Du sang traverse-t-il encore le pansement" in (bleeding.text or "")


async def test_edited_note_is_read_again_for_new_red_flags_only(harness: BotHarness) -> None:
    patient = await harness.consented_patient(4011, language="en")
    sent = harness.server.send_text(patient.user_id, "all good today")
    await patient.until("saved")
    harness.server.edit_text(patient.user_id, sent["message"]["message_id"], "all good today")
    await patient.until("saved")
    assert await alert_rules(harness) == []
    harness.server.edit_text(
        patient.user_id, sent["message"]["message_id"], "all good but there is pus coming out"
    )
    await patient.until("checked today")
    assert await alert_rules(harness) == ["discharge"]
    kinds = [a.kind for a in await answers(harness) if a.raw_text]
    assert kinds == ["note", "correction", "correction"]

    async def staff_told() -> None:
        assert [m for m in harness.server.sent(STAFF_CHAT) if "P-001" in (m.text or "")]

    await eventually(staff_told)


async def test_strangers_are_answered_in_their_telegram_language(harness: BotHarness) -> None:
    english = VirtualPatient(harness.server, 4012, "en-GB")
    english.say("hello?")
    assert "To start your follow-up" in ((await english.next()).text or "")
    french = VirtualPatient(harness.server, 4013, "fr")
    french.say("/start")
    assert "Pour commencer votre suivi" in ((await french.next()).text or "")
    german = VirtualPatient(harness.server, 4014, "de")
    german.say("hallo")
    assert "Pour commencer" in ((await german.next()).text or "")  # the unit's language
    assert await answers(harness) == []
