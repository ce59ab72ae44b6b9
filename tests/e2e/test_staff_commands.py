"""Staff commands end to end, through python-telegram-bot and the fake Telegram server: the
staff group and a nurse's private chat, refusals for strangers, unknown labels, and dialogs that
survive a restart because they live in the database."""

from __future__ import annotations

import csv
import io
import struct
from datetime import datetime

from sqlalchemy import select

from bot.db.models import Alert, AuditEvent, Episode, Patient, UnitMessage
from bot.sandbox.fake_api import SentMessage
from bot.telegram.staff_commands import MENU
from tests.harness import NURSE, PARIS, STAFF_CHAT, BotHarness, eventually
from tests.harness import Patient as VirtualPatient

STRANGER = 6666
REFUSAL = "seule l'équipe du service"


async def command(
    harness: BotHarness,
    text: str,
    *,
    needle: str = "",
    user: int = NURSE,
    chat: int = STAFF_CHAT,
    reply_to: int | None = None,
    kind: str | None = None,
) -> SentMessage:
    """Send ``text`` as ``user`` in ``chat``; the bot's first later message there with
    ``needle`` (and of ``kind``, e.g. "photo")."""
    sent = harness.server.send_text(user, text, chat_id=chat, reply_to=reply_to)
    after = sent["message"]["message_id"]
    return await harness.server.wait_for(
        lambda m: (
            m.chat_id == chat
            and m.message_id > after
            and needle in (m.text or "")
            and (kind is None or m.kind == kind)
        )
    )


async def press(
    harness: BotHarness, message: SentMessage, label: str, *, user: int = NURSE
) -> None:
    """Tap a button of a bot message."""
    harness.server.press_button(
        user, message.message_id, message.button_data(label), chat_id=message.chat_id
    )


async def next_in(harness: BotHarness, chat: int, after: SentMessage, needle: str) -> SentMessage:
    """The bot's first message in ``chat`` after ``after`` containing ``needle``."""
    return await harness.server.wait_for(
        lambda m: m.chat_id == chat and m.message_id > after.message_id and needle in (m.text or "")
    )


async def _callback_answer(harness: BotHarness, needle: str) -> dict[str, object]:
    async def seen() -> dict[str, object]:
        found = [a for a in harness.server.callback_answers if needle in str(a.get("text") or "")]
        assert found, harness.server.callback_answers
        return found[0]

    result: dict[str, object] = await eventually(seen)
    return result


async def _alerting_patient(
    harness: BotHarness, user_id: int = 1001, label: str = "P-001"
) -> VirtualPatient:
    """A patient whose day-0 evening pain of 9 raised an urgent alert."""
    patient = await harness.consented_patient(user_id, language="fr", label=label)
    await harness.advance_to(datetime(2026, 12, 1, 18, 0, tzinfo=PARIS))
    patient.tap(await patient.until("douleur"), "9")
    await harness.staff_message(f"URGENT — {label}")
    return patient


async def test_strangers_are_refused_politely_and_audited(harness: BotHarness) -> None:
    harness.server.add_user(STRANGER, first_name="Visitor")
    in_group = await command(harness, "/patients", user=STRANGER, needle=REFUSAL)
    assert "P-" not in (in_group.text or "")
    private = await command(harness, "/export", user=STRANGER, chat=STRANGER, needle=REFUSAL)
    assert private.kind == "text"
    # A stranger's /stop in a private chat is a patient command, not a refused staff command.
    await command(harness, "/stop", user=STRANGER, chat=STRANGER)

    async def audited() -> None:
        async with harness.ctx.sessions() as session:
            refused = list(
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.action == "staff_action_refused")
                )
            )
        assert sorted(e.details["attempted"] for e in refused) == [
            "command_export",
            "command_patients",
        ]
        assert {e.actor for e in refused} == {f"user:{STRANGER}"}

    await eventually(audited)


async def test_a_stranger_repeating_commands_in_the_group_is_told_once_and_always_audited(
    harness: BotHarness,
) -> None:
    """Each refusal used to be a group message, and groups get 20 a minute: 40 `/patients` from
    a stranger delayed every other message by a minute."""
    harness.server.add_user(STRANGER, first_name="Visitor")
    for _ in range(40):
        harness.server.send_text(STRANGER, "/patients", chat_id=STAFF_CHAT)
    await harness.settle()

    async def audited() -> None:
        async with harness.ctx.sessions() as session:
            refused = list(
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.action == "staff_action_refused")
                )
            )
        assert len(refused) == 40

    await eventually(audited)
    told = [m for m in harness.server.sent(STAFF_CHAT) if REFUSAL in (m.text or "")]
    assert len(told) == 1


async def test_a_forged_alert_button_is_refused_before_any_query(harness: BotHarness) -> None:
    """Callback data ``k:99999999999999999999`` overflowed PostgreSQL's integer."""
    listing = await command(harness, "/alerts", needle="Aucune alerte")
    harness.server.press_button(
        NURSE, listing.message_id, "k:99999999999999999999", chat_id=STAFF_CHAT
    )
    await harness.settle()
    toasts = [a.get("text") or "" for a in harness.server.callback_answers]
    assert toasts == ["Cette alerte n'existe plus."]


async def test_staff_commands_are_refused_in_other_groups(harness: BotHarness) -> None:
    other_group = -1009999999999
    harness.server.add_group(other_group, title="Famille")
    reply = await command(harness, "/patients", chat=other_group, needle="groupe du service")
    assert "P-" not in (reply.text or "")


async def test_patients_lists_follow_ups_most_urgent_first(harness: BotHarness) -> None:
    quiet = await harness.consented_patient(1002, language="fr", label="P-002")
    await _alerting_patient(harness, 1001, "P-001")
    quiet.tap(await quiet.until("douleur"), "3")
    await quiet.until("Noté : 3/10")
    listing = await command(harness, "/patients", needle="Suivis en cours (2)")
    lines = (listing.text or "").splitlines()
    assert lines[1].startswith("🔴 P-001 · J+0")
    assert "douleur 9/10" in lines[1] and "1 alerte ouverte" in lines[1]
    assert lines[2].startswith("• P-002 · J+0") and "douleur 3/10" in lines[2]


async def test_patient_shows_the_timeline_and_a_chart(harness: BotHarness) -> None:
    await _alerting_patient(harness)
    timeline = await command(harness, "/patient P-001", needle="P-001 · genou gauche")
    text = timeline.text or ""
    assert "Douleur de référence : 5/10" in text
    assert "J+0" in text and "douleur 9/10" in text
    assert "🔴" in text and "Douleur ≥ 8/10 le soir du geste" in text
    chart = await next_in(harness, STAFF_CHAT, timeline, "")
    assert chart.kind == "photo" and chart.file_bytes is not None
    assert chart.file_bytes[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", chart.file_bytes[16:24]) == (800, 450)

    missing = await command(harness, "/patient P-404", needle="P-404")
    assert "Aucun patient" in (missing.text or "")
    usage = await command(harness, "/patient", needle="Utilisation")
    assert "/patient <identifiant>" in (usage.text or "")

    async def audited() -> None:
        async with harness.ctx.sessions() as session:
            views = list(
                await session.scalars(select(AuditEvent).where(AuditEvent.action == "staff_view"))
            )
        assert [(e.actor, e.details["view"]) for e in views] == [(f"staff:{NURSE}", "patient")]

    await eventually(audited)


async def test_alerts_lists_open_alerts(harness: BotHarness) -> None:
    nothing = await command(harness, "/alerts", needle="Aucune alerte")
    assert nothing.text == "Aucune alerte ouverte."
    await _alerting_patient(harness)
    listing = await command(harness, "/alerts", needle="Alertes ouvertes (1)")
    assert "🔴 P-001 · J+0 · Douleur ≥ 8/10 le soir du geste" in (listing.text or "")


async def test_resolve_asks_for_an_optional_note(harness: BotHarness) -> None:
    await _alerting_patient(harness, 1001, "P-001")
    card = await harness.staff_message("URGENT — P-001")
    await press(harness, card, "Résolu")
    prompt = await next_in(harness, STAFF_CHAT, card, "Note ?")
    # Chatter that does not reply to the bot is never taken as the note.
    harness.server.send_text(NURSE, "je m'en occupe", chat_id=STAFF_CHAT)
    harness.server.send_text(NURSE, "Rappelée, RAS", chat_id=STAFF_CHAT, reply_to=prompt.message_id)
    resolved = await harness.server.wait_for(
        lambda m: m.message_id == card.message_id and "Note : Rappelée, RAS" in (m.text or "")
    )
    assert "✅ Résolu par Claire" in (resolved.text or "")
    assert resolved.buttons() == []
    # The prompt is edited in place (or answered below it when the note beat the prompt's id
    # to the database).
    await next_in(harness, STAFF_CHAT, card, "note enregistrée")

    await _alerting_patient(harness, 1003, "P-003")
    second = await harness.staff_message("URGENT — P-003")
    await press(harness, second, "Résolu")
    prompt = await next_in(harness, STAFF_CHAT, second, "Note ?")
    await press(harness, prompt, "Sans note")
    await harness.server.wait_for(
        lambda m: m.message_id == second.message_id and "✅ Résolu par Claire" in (m.text or "")
    )

    async def saved() -> None:
        async with harness.ctx.sessions() as session:
            rows = list(await session.scalars(select(Alert).order_by(Alert.id)))
        assert [(a.status, a.resolution_note) for a in rows] == [
            ("resolved", "Rappelée, RAS"),
            ("resolved", None),
        ]

    await eventually(saved)


async def test_msg_reaches_the_patient_and_is_recorded(harness: BotHarness) -> None:
    patient = await harness.consented_patient(1001, language="fr", label="P-001")
    done = await command(harness, "/msg P-001 Bonjour, pouvez-vous nous rappeler ?", needle="P-001")
    assert done.text == "Message envoyé à P-001."
    received = await patient.until("Message de l'équipe soignante")
    assert (received.text or "").endswith("Bonjour, pouvez-vous nous rappeler ?")
    # Telegram delivering the same update again (a webhook retry) sends nothing twice.
    update = harness.server.send_text(NURSE, "/msg P-001 Une seule fois", chat_id=STAFF_CHAT)
    await patient.until("Une seule fois")
    harness.server.redeliver(update["update_id"])
    await command(harness, "/alerts", needle="Aucune alerte")
    assert sum("Une seule fois" in text for text in patient.all_texts()) == 1

    await harness.enrol("P-002")
    not_linked = await command(harness, "/msg P-002 Bonjour", needle="P-002")
    assert "n'a pas encore ouvert le lien" in (not_linked.text or "")
    missing = await command(harness, "/msg P-404 Bonjour", needle="P-404")
    assert "Aucun patient" in (missing.text or "")
    usage = await command(harness, "/msg P-001", needle="Utilisation")
    assert "/msg" in (usage.text or "")

    async def recorded() -> None:
        async with harness.ctx.sessions() as session:
            rows = list(await session.scalars(select(UnitMessage).order_by(UnitMessage.id)))
            events = list(
                await session.scalars(select(AuditEvent).where(AuditEvent.action == "unit_message"))
            )
        assert [(m.status, m.sent_by) for m in rows] == [
            ("sent", f"staff:{NURSE}"),
            ("sent", f"staff:{NURSE}"),
            ("not_linked", f"staff:{NURSE}"),
        ]
        assert rows[0].text == "Bonjour, pouvez-vous nous rappeler ?"
        assert [e.details["status"] for e in events] == ["sent", "sent", "not_linked"]

    await eventually(recorded)


async def _left_knee_osteoarthritis_in_french(
    harness: BotHarness, chat: int, label: str
) -> SentMessage:
    """The guided enrolment's steps after the label: procedure today 14:00, left knee,
    osteoarthritis, the knee protocol when asked, French; the last step answered."""
    side = await command(harness, "01/12/2026 14:00", chat=chat, needle="quel genou")
    await press(harness, side, "gauche")
    step = await next_in(harness, chat, side, "indication")
    await press(harness, step, "arthrose")
    step = await next_in(harness, chat, step, f"{label} (")
    if "protocole" in (step.text or ""):
        await press(harness, step, "Suivi après cryoneurolyse du genou")
        step = await next_in(harness, chat, step, "langue du patient")
    await press(harness, step, "Français")
    return step


async def test_guided_enrolment_survives_a_restart(harness: BotHarness) -> None:
    private = NURSE
    first = await command(harness, "/enroll", chat=private, needle="Nouveau patient")
    assert [label for label, _ in first.buttons()] == ["Annuler"]
    bad = await command(harness, "Jean Dupont", chat=private, needle="Recommencez")
    assert "pas de nom" in (bad.text or "")
    when = await command(harness, "P-050", chat=private, needle="date et heure du geste")

    await harness.stop_bot()
    await harness.start_bot()

    retry = await command(harness, "32/13/2026 25:00", chat=private, needle="Je n'ai pas pu lire")
    assert retry.message_id > when.message_id
    step = await _left_knee_osteoarthritis_in_french(harness, private, "P-050")
    link = await next_in(harness, private, step, "P-050 inscrit")
    url = (link.text or "").splitlines()[-1]
    assert url.startswith("https://t.me/cryo_followup_bot?start=")
    qr = await next_in(harness, private, link, "QR code")
    assert qr.kind == "photo" and (qr.file_bytes or b"")[:8] == b"\x89PNG\r\n\x1a\n"

    patient = VirtualPatient(harness.server, 1050, "fr")
    patient.say(f"/start {url.split('start=')[1]}")
    assert "J'accepte" in [label for label, _ in (await patient.next()).buttons()]
    async with harness.ctx.sessions() as session:
        episode = await session.scalar(
            select(Episode).join(Patient).where(Patient.label == "P-050")
        )
    assert episode is not None
    assert (episode.side, episode.indication, episode.language, episode.created_by) == (
        "left",
        "osteoarthritis",
        "fr",
        f"staff:{NURSE}",
    )
    assert episode.procedure_at == datetime(2026, 12, 1, 14, 0, tzinfo=PARIS)


async def test_enrolment_in_the_staff_group_takes_replies_and_can_be_cancelled(
    harness: BotHarness,
) -> None:
    prompt = await command(harness, "/enroll P-060", needle="date et heure")
    assert "répondez à ce message" in (prompt.text or "")
    # Not a reply to the bot: ignored (with privacy mode on, Telegram would not even send it).
    harness.server.send_text(NURSE, "01/12/2026 14:00", chat_id=STAFF_CHAT)
    side = await command(
        harness, "01/12/2026 15:00", needle="quel genou", reply_to=prompt.message_id
    )
    stale = side.button_data("droit")
    await press(harness, side, "Annuler")
    await harness.server.wait_for(lambda m: m.message_id == side.message_id and m.text == "Annulé.")
    harness.server.press_button(NURSE, side.message_id, stale, chat_id=STAFF_CHAT)
    await _callback_answer(harness, "Cette étape est terminée")
    assert not [m for m in harness.server.sent(STAFF_CHAT) if "indication" in (m.text or "")]
    async with harness.ctx.sessions() as session:
        assert await session.scalar(select(Patient).where(Patient.label == "P-060")) is None


async def test_pause_resume_checkin_now_and_stop(harness: BotHarness) -> None:
    patient = await harness.consented_patient(1001, language="fr", label="P-001")
    paused = await command(harness, "/pause P-001", needle="P-001")
    assert "en pause" in (paused.text or "")
    resumed = await command(harness, "/resume P-001", needle="P-001")
    assert resumed.text == "Suivi de P-001 repris."
    sent = await command(harness, "/checkin P-001 now", needle="P-001")
    assert "part maintenant" in (sent.text or "")
    await harness.tick()
    await patient.until("douleur")
    usage = await command(harness, "/checkin P-001", needle="Utilisation")
    assert "now" in (usage.text or "")
    stopped = await command(harness, "/stop P-001 hospitalisé ailleurs", needle="P-001")
    assert "arrêté" in (stopped.text or "")
    again = await command(harness, "/pause P-001", needle="P-001")
    assert "Non effectué" in (again.text or "")
    for verb in ("pause", "resume", "stop"):
        missing = await command(harness, f"/{verb} P-404", needle="P-404")
        assert "Aucun patient" in (missing.text or "")
    async with harness.ctx.sessions() as session:
        episode = await session.scalar(select(Episode))
        assert episode is not None
        assert (episode.status, episode.stop_reason) == ("stopped", "hospitalisé ailleurs")


async def test_export_sends_the_answers_as_a_csv_document(harness: BotHarness) -> None:
    patient = await harness.consented_patient(1001, language="fr", label="P-001")
    await harness.advance_to(datetime(2026, 12, 1, 18, 0, tzinfo=PARIS))
    patient.tap(await patient.until("douleur"), "4")
    await patient.until("Noté : 4/10")
    document = await command(harness, "/export", needle="exportée", kind="document")
    assert document.file_name is not None and document.file_name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO((document.file_bytes or b"").decode("utf-8"))))
    assert {(r["patient_label"], r["question_id"], r["value"]) for r in rows} >= {
        ("P-001", "baseline", "5"),
        ("P-001", "pain_evening", "4"),
    }
    assert f"{len(rows)} réponse" in (document.text or "")


async def test_the_staff_group_gets_its_own_command_menu(harness: BotHarness) -> None:
    menu = harness.server.commands[(f"chat:{STAFF_CHAT}", "")]
    assert [item["command"] for item in menu][:3] == ["patients", "alerts", "patient"]
    assert menu[0]["description"] == "Suivis en cours, les plus urgents d'abord"
    assert all(
        item["description"] != english for item, (_, english) in zip(menu, MENU, strict=True)
    )


async def test_a_refused_enrolment_says_why_in_the_teams_language(harness: BotHarness) -> None:
    """The reason came from the enrolment service in English ("patient P-070 is already
    enrolled …") inside a French dialog; it is translated like the rest of the dialog."""
    await harness.enrol("P-070")
    private = NURSE
    await command(harness, "/enroll", chat=private, needle="Nouveau patient")
    await command(harness, "P-070", chat=private, needle="date et heure du geste")
    step = await _left_knee_osteoarthritis_in_french(harness, private, "P-070")
    refused = await next_in(harness, private, step, "Non effectué")
    assert "le patient P-070 est déjà inclus" in (refused.text or "")
    assert "already" not in (refused.text or "")
