"""The patient's commands through the fake Telegram server: /help, /next (localised dates and
plurals), /language (choices from the catalogs and the protocol, not from code), /stop, /mydata,
/delete, unknown commands, and the command menu published with setMyCommands."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bot import i18n
from bot.db.models import AuditEvent, CheckIn, Episode, Patient
from bot.domain.protocol import Protocol
from bot.protocols import default_schedules_dir, load_protocol_file
from bot.services.conversation import interface_languages
from bot.services.patient_commands import COMMANDS, language_name
from tests.harness import PARIS, STAFF_CHAT, BotHarness, question
from tests.harness import Patient as VirtualPatient

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)


async def episode(harness: BotHarness) -> Episode:
    async with harness.ctx.sessions() as session:
        found = await session.scalar(select(Episode))
        assert found is not None
        return found


async def actions(harness: BotHarness) -> list[str]:
    async with harness.ctx.sessions() as session:
        return list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


async def test_command_menu_is_published_for_private_chats_in_each_language(
    harness: BotHarness,
) -> None:
    menus = {key: menu for key, menu in harness.server.commands.items() if "private" in key[0]}
    assert set(menus) == {("all_private_chats", lang) for lang in ("fr", "en", "")}
    for menu in menus.values():
        assert [item["command"] for item in menu] == list(COMMANDS)
    french = {item["command"]: item["description"] for item in menus[("all_private_chats", "fr")]}
    assert french["language"] == "Changer de langue"
    assert menus[("all_private_chats", "")] == menus[("all_private_chats", "fr")]


async def test_help_and_unknown_commands(harness: BotHarness) -> None:
    patient = await harness.consented_patient(5001, language="fr")
    patient.say("/help")
    help_text = (await patient.next()).text or ""
    assert "/stop — Arrêter les messages du suivi" in help_text
    assert "01 23 45 67 89" in help_text and "112" in help_text
    patient.say("/aide")
    unknown = (await patient.next()).text or ""
    assert unknown.startswith("Désolé, je ne connais pas cette commande.")
    assert "/mydata" in unknown
    stranger = VirtualPatient(harness.server, 5002, "en")
    stranger.say("/help")
    assert "/delete — Ask for my data to be deleted" in ((await stranger.next()).text or "")
    assert "To start your follow-up" in ((await stranger.next()).text or "")


async def test_next_check_in_is_localised_with_plurals(harness: BotHarness) -> None:
    fr = await harness.consented_patient(5003, language="fr", label="P-FR")
    en = await harness.consented_patient(5004, language="en", label="P-EN")
    en.say("/next")
    assert (await en.next()).text == "Your next check-in: Tuesday 1 December at 18:00 (today)."
    await harness.advance_to(EVENING)
    await question(fr)
    fr.say("/next")
    assert (await fr.next()).text == "Un suivi attend vos réponses :"
    assert "douleur" in ((await fr.next()).text or "")
    await harness.advance_to(datetime(2026, 12, 1, 21, 0, tzinfo=PARIS))  # evening missed
    fr.say("/next")
    assert (await fr.until("Votre prochain")).text == (
        "Votre prochain suivi : mercredi 2 décembre à 10:00 (demain)."
    )
    await harness.advance_to(datetime(2026, 12, 4, 21, 0, tzinfo=PARIS))  # days 1-3 missed
    fr.say("/next")
    assert (await fr.until("Votre prochain")).text == (
        "Votre prochain suivi : mardi 8 décembre à 10:00 (dans 4 jours)."
    )
    en.say("/next")
    assert (await en.until("Your next")).text == (
        "Your next check-in: Tuesday 8 December at 10:00 (in 4 days)."
    )


async def test_language_is_changed_with_buttons_and_the_question_follows(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(5005, language="fr")
    await harness.advance_to(EVENING)
    await question(patient)
    patient.say("/language")
    choice = await patient.next()
    assert choice.text == "Quelle langue préférez-vous ?"
    assert [label for label, _ in choice.buttons()] == ["Français", "English"]
    patient.tap(choice, "English")
    assert (await patient.next()).text == "From now on I will write to you in English."
    again = await question(patient)
    assert "How much does your knee hurt right now" in (again.text or "")
    patient.tap(again, "2")
    await patient.until("Noted: 2/10")
    assert (await episode(harness)).language == "en"
    assert "language_changed" in await actions(harness)


def _with_german(raw: Any) -> Any:
    """A copy of protocol YAML data with a "de" entry wherever a text has "en" and "fr"."""
    if isinstance(raw, dict):
        copied = {key: _with_german(value) for key, value in raw.items()}
        if "en" in copied and "fr" in copied and "de" not in copied:
            copied["de"] = copied["en"]
        return copied
    if isinstance(raw, list):
        return [_with_german(item) for item in raw]
    return raw


def test_language_choices_come_from_catalogs_and_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = default_schedules_dir() / "knee-cryoneurolysis.yaml"
    protocol = load_protocol_file(path)
    data = _with_german(yaml.safe_load(path.read_text()))
    data["languages"] = [*data["languages"], "de"]
    german_protocol = Protocol.model_validate(data)
    locales = tmp_path / "locales"
    shutil.copytree(i18n.LOCALES_DIR, locales)
    monkeypatch.setattr(i18n, "LOCALES_DIR", locales)
    assert interface_languages(german_protocol) == ["fr", "en"]  # no German catalog yet
    shutil.copytree(locales / "en", locales / "de")
    assert interface_languages(german_protocol) == ["fr", "en", "de"]
    assert interface_languages(protocol) == ["fr", "en"]  # no German wording in the protocol
    assert language_name("de") == "Deutsch"
    assert language_name("fr") == "Français"


async def test_stop_asks_first_then_stops_everything_and_tells_staff(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(5006, language="fr")
    patient.say("/stop")
    confirm = await patient.next()
    assert [label for label, _ in confirm.buttons()] == ["Oui, arrêter", "Non, continuer"]
    patient.tap(confirm, "Non, continuer")
    await patient.until("votre suivi continue")
    assert (await episode(harness)).status == "active"
    patient.say("/stop")
    patient.tap(await patient.next(), "Oui, arrêter")
    stopped = await patient.until("Votre suivi est arrêté")
    assert "/mydata" in (stopped.text or "")
    await harness.staff_message("P-001 a arrêté le suivi (/stop)")
    async with harness.ctx.sessions() as session:
        statuses = set(await session.scalars(select(CheckIn.status)))
        reasons = set(await session.scalars(select(CheckIn.status_reason)))
    assert (statuses, reasons) == ({"cancelled"}, {"patient_stop"})
    assert (await episode(harness)).status == "stopped"
    sent_before = len(harness.server.sent(patient.user_id))
    report = await harness.advance_to(EVENING)
    assert report.sent == 0
    assert len(harness.server.sent(patient.user_id)) == sent_before
    # A message after /stop is still read: the note is saved and a red flag still alerts.
    patient.say("tout va bien merci")
    assert "Votre suivi est terminé" in ((await patient.next()).text or "")
    patient.say("j'ai 39 de fièvre")
    await patient.until("vérifié aujourd'hui")
    card = await harness.staff_message("URGENT")
    assert "P-001" in (card.text or "")
    patient.tap(confirm, "Oui, arrêter")  # the old confirmation, pressed again
    assert "follow_up_stopped" in await actions(harness)
    assert (await actions(harness)).count("follow_up_stopped") == 1


async def test_mydata_sends_everything_as_a_json_file(harness: BotHarness) -> None:
    patient = await harness.consented_patient(5007, language="en")
    patient.say("my knee is a bit stiff tonight")
    await patient.until("saved")
    patient.say("/mydata")
    document = await patient.next()
    assert document.kind == "document"
    assert document.file_name == "my-data.json"
    assert document.text == "Here is a copy of everything the follow-up stores about you."
    assert document.file_bytes is not None
    data = json.loads(document.file_bytes)
    assert data["patient"]["label"] == "P-001"
    assert data["patient"]["telegram_chat_id"] == 5007
    (followup,) = data["episodes"]
    assert (followup["baseline_pain"], followup["consent_version"]) == (5, 1)
    texts = [answer["text"] for answer in followup["answers"]]
    assert "my knee is a bit stiff tonight" in texts
    assert len(followup["checkins"]) == 9
    assert "consent_given" in [event["action"] for event in followup["events"]]
    assert "data_copy_sent" in await actions(harness)


async def test_delete_records_a_request_for_staff_once(harness: BotHarness) -> None:
    patient = await harness.consented_patient(5008, language="fr")
    patient.say("/delete")
    first = await patient.next()
    assert [label for label, _ in first.buttons()] == ["Oui, demander l'effacement", "Non"]
    patient.tap(first, "Non")
    await patient.until("rien ne sera effacé")
    patient.say("/delete")
    patient.tap(await patient.next(), "Oui, demander l'effacement")
    await patient.until("Votre demande est enregistrée")
    notice = await harness.staff_message("demande l'effacement")
    assert "python -m bot erase --label P-001" in (notice.text or "")
    patient.say("/delete")
    assert "déjà été enregistrée le mardi 1 décembre à 08:00" in ((await patient.next()).text or "")
    async with harness.ctx.sessions() as session:
        row = await session.scalar(select(Patient))
        assert row is not None and row.erasure_requested_at is not None
        assert row.erased_at is None
    assert (await actions(harness)).count("erasure_requested") == 1
    assert [m for m in harness.server.sent(STAFF_CHAT) if "effacement" in (m.text or "")] == [
        notice
    ]
    assert (await episode(harness)).status == "active"
