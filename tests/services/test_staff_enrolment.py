"""The staff dialogs as services, without Telegram: given the open dialog and what the nurse
sent, the reply to show and the step the dialog moved to (the guided /enroll, dialog buttons,
the resolution note)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from bot.db.models import Alert, Episode, Patient
from bot.services import alert_actions, staff_answers, staff_dialogs, staff_enrolment
from bot.services.ports import OutgoingMessage, SentRef
from bot.services.staff_dialogs import Dialog, DialogKind
from bot.services.staff_enrolment import EnrolStep
from bot.services.staff_reply import CardChange, Edit, StaffReply
from tests.harness import TestDatabase as Database
from tests.services.course import PARIS, STAFF_CHAT, Services, play_course, services

START = datetime(2026, 12, 1, 8, 0, tzinfo=PARIS)
NURSE = 5001
PRIVATE = NURSE
PNG = b"\x89PNG\r\n\x1a\n"


def only_text(reply: StaffReply) -> str:
    """The text of a reply made of one message."""
    assert len(reply.messages) == 1, reply
    return reply.messages[0].text


def labels(message: OutgoingMessage) -> list[list[str]]:
    return [[button.label for button in row] for row in message.buttons]


async def dialog_of(svc: Services, chat_id: int = PRIVATE) -> Dialog:
    dialog = await staff_dialogs.current(svc.ctx, chat_id=chat_id, user_id=NURSE)
    assert dialog is not None
    return dialog


async def test_each_answer_moves_the_dialog_on_and_the_last_choice_enrols(
    database: Database,
) -> None:
    async with services(database, START) as svc:
        ctx = svc.ctx
        first = await staff_enrolment.start(ctx, chat_id=PRIVATE, user_id=NURSE, args=[])
        dialog = await dialog_of(svc)
        assert (dialog.kind, dialog.step, dialog.data) == (DialogKind.ENROL, "label", {})
        assert (
            only_text(first)
            == "Nouveau patient (1/6) : numéro du patient dans le service ? (pas de nom)"
        )
        assert [[b.data for b in row] for row in first.messages[0].buttons] == [[f"sx:{dialog.id}"]]

        refused = await staff_enrolment.take_text(
            ctx, dialog=dialog, chat_id=PRIVATE, text="Jean Dupont"
        )
        assert "pas de nom" in only_text(refused) and "Recommencez" in only_text(refused)
        assert (await dialog_of(svc)).step == EnrolStep.LABEL

        when = await staff_enrolment.take_text(ctx, dialog=dialog, chat_id=PRIVATE, text=" P-050 ")
        assert only_text(when).startswith("P-050 (2/6) : date et heure du geste ?")
        assert labels(when.messages[0]) == [["Annuler"]]
        dialog = await dialog_of(svc)
        assert (dialog.step, dialog.data) == (EnrolStep.PROCEDURE_AT, {"label": "P-050"})

        unreadable = await staff_enrolment.take_text(
            ctx, dialog=dialog, chat_id=PRIVATE, text="32/13/2026 25:00"
        )
        assert only_text(unreadable).startswith("Je n'ai pas pu lire cette date")
        assert (await dialog_of(svc)).step == EnrolStep.PROCEDURE_AT

        side = await staff_enrolment.take_text(
            ctx, dialog=dialog, chat_id=PRIVATE, text="01/12/2026 14:00"
        )
        assert only_text(side) == "P-050 (3/6) : quel genou ?"
        assert labels(side.messages[0]) == [["gauche", "droit", "des deux côtés"], ["Annuler"]]
        dialog = await dialog_of(svc)
        assert dialog.step == EnrolStep.SIDE
        assert dialog.data["procedure_at"] == "2026-12-01T14:00:00+01:00"
        assert side.messages[0].buttons[0][0].data == f"se:{dialog.id}:s:left"

        indication = await staff_enrolment.take_choice(
            ctx, dialog=dialog, user_id=NURSE, code="s", value="left"
        )
        assert indication is not None and indication.toast == "gauche"
        assert only_text(indication) == "P-050 (4/6) : indication ?"
        assert labels(indication.messages[0])[0] == ["arthrose"]
        dialog = await dialog_of(svc)
        assert (dialog.step, dialog.data["side"]) == (EnrolStep.INDICATION, "left")

        protocol = await staff_enrolment.take_choice(
            ctx, dialog=dialog, user_id=NURSE, code="i", value="osteoarthritis"
        )
        assert protocol is not None and protocol.toast == "arthrose"
        assert only_text(protocol) == "P-050 (5/6) : quel protocole ?"
        assert ["Suivi après cryoneurolyse du genou"] in labels(protocol.messages[0])
        dialog = await dialog_of(svc)
        assert dialog.step == EnrolStep.PROTOCOL

        language = await staff_enrolment.take_choice(
            ctx, dialog=dialog, user_id=NURSE, code="p", value="knee-cryoneurolysis"
        )
        assert language is not None
        assert language.toast == "Suivi après cryoneurolyse du genou"
        assert only_text(language) == "P-050 (6/6) : langue du patient ?"
        assert labels(language.messages[0]) == [["Français", "English"], ["Annuler"]]
        dialog = await dialog_of(svc)
        assert (dialog.step, dialog.data["protocol"]) == (EnrolStep.LANGUAGE, "knee-cryoneurolysis")

        done = await staff_enrolment.take_choice(
            ctx, dialog=dialog, user_id=NURSE, code="l", value="fr"
        )
        assert done is not None and done.toast == "Fait."
        link, qr = done.messages
        assert link.text.startswith("P-050 inscrit.")
        assert link.text.splitlines()[-1].startswith("https://t.me/cryo_followup_bot?start=")
        assert qr.text.startswith("QR code pour P-050")
        assert (qr.photo or b"")[:8] == PNG
        assert await staff_dialogs.current(ctx, chat_id=PRIVATE, user_id=NURSE) is None

        # A second tap on the language button of the finished dialog enrols nobody twice.
        again = await staff_enrolment.take_choice(
            ctx, dialog=dialog, user_id=NURSE, code="l", value="fr"
        )
        assert again == StaffReply(toast="Fait.")
        async with ctx.sessions() as session:
            episodes = list(
                await session.scalars(select(Episode).join(Patient).where(Patient.label == "P-050"))
            )
        assert [(e.side, e.indication, e.language, e.created_by) for e in episodes] == [
            ("left", "osteoarthritis", "fr", f"staff:{NURSE}")
        ]
        assert episodes[0].procedure_at == datetime(2026, 12, 1, 14, 0, tzinfo=PARIS)


async def test_words_after_the_command_skip_their_steps_and_groups_are_told_to_reply(
    database: Database,
) -> None:
    async with services(database, START) as svc:
        ctx = svc.ctx
        both = await staff_enrolment.start(
            ctx, chat_id=STAFF_CHAT, user_id=NURSE, args=["P-060", "01/12", "15:00"]
        )
        assert only_text(both) == "P-060 (3/6) : quel genou ?"
        dialog = await dialog_of(svc, STAFF_CHAT)
        assert dialog.step == EnrolStep.SIDE
        assert dialog.data == {"label": "P-060", "procedure_at": "2026-12-01T15:00:00+01:00"}

        label_only = await staff_enrolment.start(
            ctx, chat_id=STAFF_CHAT, user_id=NURSE, args=["P-061"]
        )
        assert only_text(label_only).startswith("P-061 (2/6)")
        assert only_text(label_only).endswith("\n(Dans le groupe : répondez à ce message.)")
        # A new /enroll replaces the open dialog: what the first one was told is gone.
        replaced = await dialog_of(svc, STAFF_CHAT)
        assert (replaced.step, replaced.data) == (EnrolStep.PROCEDURE_AT, {"label": "P-061"})

        not_a_label = await staff_enrolment.start(
            ctx, chat_id=STAFF_CHAT, user_id=NURSE, args=["Dupont,Jean", "14:00"]
        )
        assert "Recommencez" in only_text(not_a_label)
        assert (await dialog_of(svc, STAFF_CHAT)).step == EnrolStep.LABEL


async def test_a_press_or_a_text_for_another_step_changes_nothing(database: Database) -> None:
    async with services(database, START) as svc:
        ctx = svc.ctx
        await staff_enrolment.start(
            ctx, chat_id=PRIVATE, user_id=NURSE, args=["P-070", "01/12/2026", "14:00"]
        )
        dialog = await dialog_of(svc)
        assert dialog.step == EnrolStep.SIDE
        old = await staff_enrolment.take_choice(
            ctx, dialog=dialog, user_id=NURSE, code="i", value="osteoarthritis"
        )
        assert old is None
        absurd = await staff_enrolment.take_choice(
            ctx, dialog=dialog, user_id=NURSE, code="s", value="middle"
        )
        assert absurd is None
        typed = await staff_enrolment.take_text(ctx, dialog=dialog, chat_id=PRIVATE, text="gauche")
        assert only_text(typed) == "Touchez l'un des boutons ci-dessus."
        assert await dialog_of(svc) == dialog


async def test_dialog_buttons_cancel_or_are_told_the_step_is_over(database: Database) -> None:
    async with services(database, START) as svc:
        ctx = svc.ctx
        await staff_enrolment.start(
            ctx, chat_id=STAFF_CHAT, user_id=NURSE, args=["P-080", "01/12/2026", "14:00"]
        )
        dialog = await dialog_of(svc, STAFF_CHAT)

        async def press(data: str) -> StaffReply:
            return await staff_answers.answer_button(
                ctx,
                chat_id=STAFF_CHAT,
                user_id=NURSE,
                user_name="Claire",
                data=data,
                pressed_message_id=41,
            )

        over = StaffReply(toast="Cette étape est terminée.")
        assert await press(f"se:{dialog.id + 1}:s:left") == over
        assert await press(f"sn:{dialog.id}") == over
        assert await press(f"se:{dialog.id}:i:osteoarthritis") == over
        chosen = await press(f"se:{dialog.id}:s:right")
        assert chosen.toast == "droit" and only_text(chosen) == "P-080 (4/6) : indication ?"

        cancelled = await press(f"sx:{dialog.id}")
        assert cancelled == StaffReply(toast="Annulé.", edit=Edit(41, OutgoingMessage("Annulé.")))
        assert await staff_dialogs.current(ctx, chat_id=STAFF_CHAT, user_id=NURSE) is None
        assert await press(f"se:{dialog.id}:i:osteoarthritis") == over
        async with ctx.sessions() as session:
            assert await session.scalar(select(Patient).where(Patient.label == "P-080")) is None


async def pain_alert(svc: Services) -> Alert:
    """The alert a patient's day-2 pain of 8 raises, its card posted in the staff chat."""
    await play_course(svc, label="P-090", until="d2")
    async with svc.ctx.sessions() as session:
        alert = await session.scalar(select(Alert).where(Alert.rule_id == "pain_high"))
    assert alert is not None and alert.staff_message_id is not None
    return alert


async def test_resolving_asks_a_note_edits_the_question_and_closes_once(
    database: Database,
) -> None:
    async with services(database, START) as svc:
        ctx = svc.ctx
        alert = await pain_alert(svc)
        assert alert.staff_message_id is not None
        card = SentRef(STAFF_CHAT, alert.staff_message_id)

        asked = await alert_actions.ask_note(
            ctx, alert_id=alert.id, chat_id=STAFF_CHAT, user_id=NURSE, pressed=card
        )
        dialog = await dialog_of(svc, STAFF_CHAT)
        assert (dialog.kind, dialog.step) == (DialogKind.RESOLVE, "note")
        assert asked.toast is None and asked.prompt_of == dialog
        assert only_text(asked).startswith("Note ?")
        assert only_text(asked).endswith("(Dans le groupe : répondez à ce message.)")
        assert [[b.data for b in row] for row in asked.messages[0].buttons] == [
            [f"sn:{dialog.id}", f"sx:{dialog.id}"]
        ]
        await staff_answers.after_shown(ctx, asked, first=SentRef(STAFF_CHAT, 900))
        dialog = await dialog_of(svc, STAFF_CHAT)
        assert dialog.data["prompt"] == 900

        resolved = await staff_answers.answer_text(
            ctx,
            dialog=dialog,
            chat_id=STAFF_CHAT,
            user_id=NURSE,
            user_name="Claire",
            text="  Rappelée, RAS ",
        )
        assert resolved == StaffReply(
            edit=Edit(900, OutgoingMessage("✅ Résolu, note enregistrée.")),
            card=CardChange(alert.id, alert.staff_message_id, card),
        )
        assert await staff_dialogs.current(ctx, chat_id=STAFF_CHAT, user_id=NURSE) is None
        async with ctx.sessions() as session:
            stored = await session.get(Alert, alert.id)
        assert stored is not None
        assert (stored.status, stored.resolved_by, stored.resolution_note) == (
            "resolved",
            "Claire",
            "Rappelée, RAS",
        )
        # "No note" tapped after the note was taken: the dialog is closed, nothing happens.
        assert (
            await alert_actions.resolve(
                ctx, dialog=dialog, user_id=NURSE, user_name="Claire", note=None
            )
            == StaffReply()
        )
        handled = await alert_actions.ask_note(
            ctx, alert_id=alert.id, chat_id=STAFF_CHAT, user_id=NURSE, pressed=card
        )
        assert handled == StaffReply(toast="Cette alerte a déjà été traitée.")
        acknowledged = await alert_actions.acknowledge(
            ctx, alert_id=alert.id, staff_id=NURSE, staff_name=None, pressed=card
        )
        assert acknowledged == StaffReply(toast="Cette alerte a déjà été traitée.")


async def test_acknowledge_then_no_note_answers_below_when_the_question_id_is_unknown(
    database: Database,
) -> None:
    async with services(database, START) as svc:
        ctx = svc.ctx
        alert = await pain_alert(svc)
        assert alert.staff_message_id is not None
        card = SentRef(STAFF_CHAT, alert.staff_message_id)
        acknowledged = await alert_actions.acknowledge(
            ctx, alert_id=alert.id, staff_id=NURSE, staff_name=None, pressed=card
        )
        assert acknowledged == StaffReply(
            toast="Fait.", card=CardChange(alert.id, alert.staff_message_id, card)
        )
        twice = await alert_actions.acknowledge(
            ctx, alert_id=alert.id, staff_id=NURSE, staff_name="Claire", pressed=card
        )
        assert twice == StaffReply(toast="Cette alerte a déjà été traitée.")

        # Pressed where Telegram no longer has the card: asked in the nurse's private chat.
        asked = await alert_actions.ask_note(
            ctx, alert_id=alert.id, chat_id=PRIVATE, user_id=NURSE, pressed=None
        )
        assert (
            only_text(asked)
            == "Note ? (facultatif) Répondez par une courte note, ou touchez « Sans note »."
        )
        dialog = await dialog_of(svc)
        assert dialog.data == {"alert_id": alert.id}
        resolved = await staff_answers.answer_button(
            ctx,
            chat_id=PRIVATE,
            user_id=NURSE,
            user_name=None,
            data=f"sn:{dialog.id}",
            pressed_message_id=None,
        )
        assert resolved == StaffReply(
            messages=(OutgoingMessage("✅ Résolu sans note."),),
            card=CardChange(alert.id, alert.staff_message_id, None),
        )
        async with ctx.sessions() as session:
            stored = await session.get(Alert, alert.id)
        assert stored is not None
        assert (stored.status, stored.acknowledged_by, stored.resolved_by) == (
            "resolved",
            str(NURSE),
            str(NURSE),
        )
        assert stored.resolution_note is None
