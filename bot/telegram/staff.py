"""The staff side in Telegram: alert buttons (Acknowledge / Resolve…) and staff commands.

Only allow-listed user ids (``STAFF_USER_IDS`` plus ``python -m bot staff add``) may act; anyone
else gets a polite refusal and the attempt is audited. Commands work in the staff group and in
a private chat with the bot, nowhere else (a command typed in another group would show patient
data to strangers).

Handler groups (order matters):

* group ``STAFF_GROUP`` (-1, before the patient handlers): staff commands, and text that answers
  an open staff dialog (a guided ``/enroll`` step, a resolution note). They stop the update
  with ``ApplicationHandlerStop`` once handled; anything else — a patient's answer, a patient's
  own ``/stop`` — goes on to group 0 untouched.
* group 0: alert and dialog buttons, registered before the patient button handler; their
  callback patterns never match a patient's button.

Multi-step dialogs live in the database (:mod:`bot.services.staff_dialogs`), so a restart or
another process carries on where the nurse left off.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from babel import Locale
from telegram import Bot, BotCommand, BotCommandScopeChat, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.domain.protocol import Indication, KneeSide, Protocol
from bot.domain.states import AlertStatus
from bot.errors import BotError, NotFoundError, UsageError
from bot.i18n import format_local, t, tn
from bot.services import (
    alerts,
    audit,
    charts,
    enrolment,
    export,
    followup,
    staff_dialogs,
    staff_views,
)
from bot.services.context import STAFF_LANGUAGE, ServiceContext
from bot.services.ports import Button, DeliveryError, OutgoingMessage, SentRef

log = structlog.get_logger(__name__)
#: Before the patient handlers (group 0): staff commands and dialog answers are taken first.
STAFF_GROUP = -1
#: Patients have commands of the same name in their private chat: a non-staff sender there is
#: a patient, so the update is left to the patient handlers instead of being refused.
SHARED_COMMANDS = frozenset({"stop", "pause", "resume"})
DEFAULT_PROTOCOL = "knee-cryoneurolysis"

Handler = Callable[["StaffCall"], Awaitable[None]]
#: The staff group's command menu (what Telegram shows when a nurse types "/").
MENU = (
    ("patients", "Active follow-ups, most urgent first"),
    ("alerts", "Open alerts"),
    ("patient", "A patient's course and chart: /patient <label>"),
    ("enroll", "Enrol a patient (deep link and QR code)"),
    ("msg", "Message a patient: /msg <label> <text>"),
    ("checkin", "Send the next check-in now: /checkin <label> now"),
    ("pause", "Pause a follow-up: /pause <label>"),
    ("resume", "Resume a follow-up: /resume <label>"),
    ("stop", "Stop a follow-up: /stop <label> [reason]"),
    ("export", "Every answer as a CSV file"),
)


@dataclass(frozen=True)
class StaffCall:
    """A staff command as the handlers need it: where, who, and the words after the command."""

    chat_id: int
    user_id: int
    args: list[str]
    text: str


class StaffHandlers:
    """Handlers for the staff chat and staff members' private chats."""

    def __init__(self, ctx: ServiceContext, staff_ids: Callable[[], Awaitable[set[int]]]) -> None:
        self._ctx = ctx
        self._staff_ids = staff_ids

    def register(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Add the staff handlers (buttons before the patient button handler: patterns are
        exclusive; commands and dialog text in ``STAFF_GROUP``, before every patient handler)."""
        application.add_handler(CallbackQueryHandler(self.on_alert_button, pattern=r"^[kr]:\d+$"))
        application.add_handler(
            CallbackQueryHandler(self.on_dialog_button, pattern=r"^s[enx]:\d+(:|$)")
        )
        commands: dict[str, Handler] = {
            "enroll": self.cmd_enroll,
            "patients": self.cmd_patients,
            "patient": self.cmd_patient,
            "alerts": self.cmd_alerts,
            "msg": self.cmd_msg,
            "pause": self.cmd_pause,
            "resume": self.cmd_resume,
            "stop": self.cmd_stop,
            "checkin": self.cmd_checkin,
            "export": self.cmd_export,
        }
        for name, handler in commands.items():
            application.add_handler(
                # New messages only: an edited command must not send a /msg twice.
                CommandHandler(
                    name, self._command(name, handler), filters=filters.UpdateType.MESSAGE
                ),
                group=STAFF_GROUP,
            )
        application.add_handler(
            MessageHandler(
                filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, self.on_dialog_text
            ),
            group=STAFF_GROUP,
        )

    async def is_staff(self, user_id: int | None) -> bool:
        """True for allow-listed staff."""
        return user_id is not None and user_id in await self._staff_ids()

    async def refuse(self, user_id: int | None, action: str) -> None:
        """Audit a refused staff action."""
        async with self._ctx.sessions.begin() as session:
            audit.record(
                session,
                at=self._ctx.clock.now(),
                actor=f"user:{user_id}",
                action="staff_action_refused",
                attempted=action,
            )

    async def _say(
        self,
        chat_id: int,
        text: str,
        buttons: tuple[tuple[Button, ...], ...] = (),
        **media: Any,
    ) -> SentRef | None:
        """Send to a staff chat; a failure is logged (the nurse sees no answer and retries)."""
        try:
            return await self._ctx.messenger.send(
                chat_id, OutgoingMessage(text=text, buttons=buttons, **media)
            )
        except DeliveryError as exc:
            log.warning("staff_reply_failed", error=type(exc).__name__)
            return None

    async def _edit(self, chat_id: int, message_id: int, text: str) -> None:
        try:
            await self._ctx.messenger.edit(SentRef(chat_id, message_id), OutgoingMessage(text))
        except DeliveryError as exc:
            log.warning("staff_edit_failed", error=type(exc).__name__)

    # --- commands --------------------------------------------------------------------------

    def _command(
        self, name: str, handler: Handler
    ) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]:
        """Wrap a command: staff check, allowed chat, errors turned into short answers."""

        async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            message, chat, user = (
                update.effective_message,
                update.effective_chat,
                update.effective_user,
            )
            if message is None or chat is None:
                return
            user_id = user.id if user is not None else None
            lang = STAFF_LANGUAGE
            if not await self.is_staff(user_id):
                if chat.type == ChatType.PRIVATE and name in SHARED_COMMANDS:
                    return
                await self.refuse(user_id, f"command_{name}")
                await self._say(chat.id, t(lang, "Sorry, only the unit's staff can do this."))
                raise ApplicationHandlerStop
            assert user is not None
            if chat.type != ChatType.PRIVATE and chat.id != self._ctx.unit.staff_chat_id:
                await self._say(
                    chat.id,
                    t(
                        lang,
                        "Staff commands work only in the staff group or in a private chat with me.",
                    ),
                )
                raise ApplicationHandlerStop
            if not await staff_views.first_delivery(self._ctx, update.update_id):
                raise ApplicationHandlerStop
            text = message.text or ""
            call = StaffCall(
                chat_id=chat.id,
                user_id=user.id,
                args=list(context.args or []),
                text=text.split(maxsplit=1)[1] if len(text.split(maxsplit=1)) > 1 else "",
            )
            try:
                await handler(call)
            except NotFoundError as exc:
                await self._say(chat.id, str(exc))
            except BotError as exc:
                await self._say(chat.id, t(lang, "Not done: {reason}", reason=str(exc)))
            raise ApplicationHandlerStop

        run.__doc__ = f"/{name} from a staff member."
        return run

    async def cmd_patients(self, call: StaffCall) -> None:
        """``/patients``: follow-ups in progress, most urgent first."""
        rows = await staff_views.active_patients(self._ctx)
        await staff_views.record_view(
            self._ctx, staff_id=call.user_id, what="patients", episode_id=None
        )
        await self._say(call.chat_id, staff_views.render_patient_list(rows, STAFF_LANGUAGE))

    async def cmd_alerts(self, call: StaffCall) -> None:
        """``/alerts``: alerts not yet resolved."""
        rows = await staff_views.open_alerts(self._ctx, language=STAFF_LANGUAGE)
        await self._say(call.chat_id, staff_views.render_alert_list(rows, STAFF_LANGUAGE))

    async def cmd_patient(self, call: StaffCall) -> None:
        """``/patient <label>``: the timeline, then the chart of pain and swelling."""
        lang = STAFF_LANGUAGE
        if not call.args:
            await self._say(call.chat_id, t(lang, "Usage: /patient <label>"))
            return
        course = await staff_views.patient_course(self._ctx, label=call.args[0], language=lang)
        await staff_views.record_view(
            self._ctx, staff_id=call.user_id, what="patient", episode_id=course.episode_id
        )
        await self._say(call.chat_id, course.text)
        png = await asyncio.to_thread(
            charts.render_course_chart,
            course.protocol,
            indication=course.indication,
            pain=course.pain,
            swelling=course.swelling,
            baseline=course.baseline,
            language=lang,
            title=t(lang, "{label} — pain and swelling", label=course.label),
            today=course.day,
        )
        await self._say(call.chat_id, "", photo=png)

    async def cmd_msg(self, call: StaffCall) -> None:
        """``/msg <label> <text>``: a message from the unit to the patient, through the bot."""
        lang = STAFF_LANGUAGE
        parts = call.text.split(maxsplit=1)
        if len(parts) < 2 or not parts[1].strip():
            await self._say(call.chat_id, t(lang, "Usage: /msg <label> <message>"))
            return
        label, body = parts[0], parts[1].strip()
        status = await staff_views.send_unit_message(
            self._ctx, label=label, text=body, staff_id=call.user_id
        )
        replies = {
            "sent": t(lang, "Message sent to {label}.", label=label),
            "not_linked": t(
                lang, "{label} has not opened the link yet: message not sent.", label=label
            ),
            "blocked": t(lang, "{label} blocked the bot: message not delivered.", label=label),
            "failed": t(
                lang, "Telegram did not accept the message for {label}: try again.", label=label
            ),
        }
        await self._say(call.chat_id, replies[status])

    async def cmd_export(self, call: StaffCall) -> None:
        """``/export``: every answer as a CSV document."""
        lang = STAFF_LANGUAGE
        buffer = io.StringIO()
        count = await export.write_csv(self._ctx, buffer)
        async with self._ctx.sessions.begin() as session:
            audit.record(
                session,
                at=self._ctx.clock.now(),
                actor=f"staff:{call.user_id}",
                action="export",
                format="csv",
                rows=count,
            )
        day = (
            self._ctx.clock.now().astimezone(ZoneInfo(self._ctx.unit.time_zone)).strftime("%Y%m%d")
        )
        await self._say(
            call.chat_id,
            tn(lang, "{count} answer exported (CSV)", "{count} answers exported (CSV)", count),
            document=buffer.getvalue().encode("utf-8"),
            file_name=f"cryo-followup-{day}.csv",
        )

    async def cmd_pause(self, call: StaffCall) -> None:
        """``/pause <label>``: nothing is sent until ``/resume``."""
        lang = STAFF_LANGUAGE
        if not call.args:
            await self._say(call.chat_id, t(lang, "Usage: /pause <label>"))
            return
        label = call.args[0]
        await followup.pause(self._ctx, label=label, actor=f"staff:{call.user_id}")
        await self._say(
            call.chat_id,
            t(
                lang,
                "Follow-up of {label} paused: nothing is sent until /resume {label}.",
                label=label,
            ),
        )

    async def cmd_resume(self, call: StaffCall) -> None:
        """``/resume <label>``: the follow-up goes on with the next check-in to come."""
        lang = STAFF_LANGUAGE
        if not call.args:
            await self._say(call.chat_id, t(lang, "Usage: /resume <label>"))
            return
        label = call.args[0]
        await followup.resume(self._ctx, label=label, actor=f"staff:{call.user_id}")
        await self._say(call.chat_id, t(lang, "Follow-up of {label} resumed.", label=label))

    async def cmd_stop(self, call: StaffCall) -> None:
        """``/stop <label> [reason]``: end the follow-up (the patient is not told)."""
        lang = STAFF_LANGUAGE
        parts = call.text.split(maxsplit=1)
        if not parts:
            await self._say(call.chat_id, t(lang, "Usage: /stop <label> [reason]"))
            return
        label = parts[0]
        reason = parts[1].strip() if len(parts) > 1 else None
        await followup.stop(self._ctx, label=label, actor=f"staff:{call.user_id}", reason=reason)
        await self._say(
            call.chat_id,
            t(lang, "Follow-up of {label} stopped. The patient was not told.", label=label),
        )

    async def cmd_checkin(self, call: StaffCall) -> None:
        """``/checkin <label> now``: send the next check-in at once."""
        lang = STAFF_LANGUAGE
        if len(call.args) != 2 or call.args[1].lower() not in ("now", "maintenant"):
            await self._say(call.chat_id, t(lang, "Usage: /checkin <label> now"))
            return
        label = call.args[0]
        sent = await followup.checkin_now(self._ctx, label=label, actor=f"staff:{call.user_id}")
        if sent:
            text = t(lang, "The next check-in of {label} is being sent now.", label=label)
        else:
            text = t(lang, "{label} has no check-in left to send.", label=label)
        await self._say(call.chat_id, text)

    # --- guided enrolment -------------------------------------------------------------------

    def _protocol(self, protocol_id: str | None = None) -> Protocol:
        """The chosen protocol, else the default one (the only one when the unit has one)."""
        registry = self._ctx.protocols.registry
        ids = registry.ids()
        if protocol_id in ids:
            return registry.latest(protocol_id)
        return registry.latest(DEFAULT_PROTOCOL if DEFAULT_PROTOCOL in ids else ids[0])

    def _steps(self) -> int:
        """Label, time, side, indication, (protocol when the unit has several), language."""
        return 5 + (len(self._ctx.protocols.registry.ids()) > 1)

    def _cancel_row(self, dialog_id: int) -> tuple[Button, ...]:
        return (Button(t(STAFF_LANGUAGE, "Cancel"), f"sx:{dialog_id}"),)

    def _group_hint(self, chat_id: int) -> str:
        """In a group the bot sees only replies to its own messages (privacy mode): say so."""
        if chat_id >= 0:
            return ""
        return "\n" + t(STAFF_LANGUAGE, "(In the group: reply to this message.)")

    async def _ask(self, chat_id: int, dialog_id: int, text: str) -> SentRef | None:
        """A dialog question answered by typing, with a Cancel button."""
        return await self._say(
            chat_id, text + self._group_hint(chat_id), (self._cancel_row(dialog_id),)
        )

    async def cmd_enroll(self, call: StaffCall) -> None:
        """``/enroll [label [date time]]``: the guided enrolment; what is typed after the
        command skips the matching steps."""
        dialog = await staff_dialogs.begin(
            self._ctx, chat_id=call.chat_id, user_id=call.user_id, kind="enroll", step="label"
        )
        if call.args:
            accepted = await self._enroll_label(
                call.chat_id, dialog, call.args[0], ask=len(call.args) == 1
            )
            if accepted and len(call.args) > 1:
                moved = await staff_dialogs.current(
                    self._ctx, chat_id=call.chat_id, user_id=call.user_id
                )
                assert moved is not None
                await self._enroll_time(call.chat_id, moved, " ".join(call.args[1:]))
            return
        await self._ask(
            call.chat_id,
            dialog.id,
            t(
                STAFF_LANGUAGE,
                "New patient (1/{total}): the unit's patient number? (no name)",
                total=self._steps(),
            ),
        )

    async def _enroll_label(
        self, chat_id: int, dialog: staff_dialogs.Dialog, label: str, *, ask: bool = True
    ) -> bool:
        """Take the label (step 1); True when accepted. ``ask`` prompts for step 2."""
        lang = STAFF_LANGUAGE
        label = label.strip()
        if not enrolment.LABEL_PATTERN.match(label):
            await self._ask(
                chat_id,
                dialog.id,
                t(lang, "A label is 1-64 letters, digits, '.', '_' or '-' (no name). Try again:"),
            )
            return False
        await staff_dialogs.advance(
            self._ctx, dialog_id=dialog.id, step="procedure_at", data={"label": label}
        )
        if not ask:
            return True
        await self._ask(
            chat_id,
            dialog.id,
            t(
                lang,
                "{label} (2/{total}): date and time of the procedure? e.g. 01/12/2026 09:30, or 09:30 for today",
                label=label,
                total=self._steps(),
            ),
        )
        return True

    async def _enroll_time(self, chat_id: int, dialog: staff_dialogs.Dialog, text: str) -> None:
        lang = STAFF_LANGUAGE
        moment = staff_dialogs.parse_procedure_time(
            text, now=self._ctx.clock.now(), time_zone=self._ctx.unit.time_zone
        )
        if moment is None:
            await self._ask(
                chat_id,
                dialog.id,
                t(
                    lang,
                    "I could not read this date, or it is too far from today. Example: 01/12/2026 09:30",
                ),
            )
            return
        data = {**dialog.data, "procedure_at": moment.isoformat()}
        await staff_dialogs.advance(self._ctx, dialog_id=dialog.id, step="side", data=data)
        sides = tuple(
            Button(t(lang, side.value), f"se:{dialog.id}:s:{side.value}") for side in KneeSide
        )
        await self._say(
            chat_id,
            t(lang, "{label} (3/{total}): which knee?", label=data["label"], total=self._steps()),
            (sides, self._cancel_row(dialog.id)),
        )

    async def _enroll_choice(
        self, chat_id: int, user_id: int, dialog: staff_dialogs.Dialog, step: str, value: str
    ) -> str | None:
        """Record a button choice and ask the next question; returns the toast text, or None
        when the press belongs to another step (an old message)."""
        lang = STAFF_LANGUAGE
        data = dict(dialog.data)
        total = self._steps()
        ids = self._ctx.protocols.registry.ids()
        if step == "s" and dialog.step == "side" and value in {s.value for s in KneeSide}:
            data["side"] = value
            await staff_dialogs.advance(
                self._ctx, dialog_id=dialog.id, step="indication", data=data
            )
            rows = tuple(
                (Button(t(lang, i.value), f"se:{dialog.id}:i:{i.value}"),) for i in Indication
            )
            await self._say(
                chat_id,
                t(lang, "{label} (4/{total}): indication?", label=data["label"], total=total),
                (*rows, self._cancel_row(dialog.id)),
            )
            return t(lang, value)
        if step == "i" and dialog.step == "indication" and value in {i.value for i in Indication}:
            data["indication"] = value
            if len(ids) > 1:
                await staff_dialogs.advance(
                    self._ctx, dialog_id=dialog.id, step="protocol", data=data
                )
                rows = tuple(
                    (Button(self._protocol(pid).title.get(lang), f"se:{dialog.id}:p:{pid}"),)
                    for pid in ids
                )
                await self._say(
                    chat_id,
                    t(
                        lang,
                        "{label} (5/{total}): which protocol?",
                        label=data["label"],
                        total=total,
                    ),
                    (*rows, self._cancel_row(dialog.id)),
                )
                return t(lang, value)
            await self._ask_language(chat_id, dialog.id, data)
            return t(lang, value)
        if step == "p" and dialog.step == "protocol" and value in ids:
            data["protocol"] = value
            await self._ask_language(chat_id, dialog.id, data)
            return self._protocol(value).title.get(lang)
        protocol = self._protocol(data.get("protocol"))
        if step == "l" and dialog.step == "language" and value in protocol.languages:
            if await staff_dialogs.finish(self._ctx, dialog_id=dialog.id):
                await self._enroll_done(chat_id, user_id, {**data, "language": value})
            return t(lang, "Done.")
        return None

    async def _ask_language(self, chat_id: int, dialog_id: int, data: dict[str, Any]) -> None:
        """The last step: the patient's language, among the chosen protocol's languages."""
        lang = STAFF_LANGUAGE
        await staff_dialogs.advance(self._ctx, dialog_id=dialog_id, step="language", data=data)
        languages = tuple(
            Button(
                (Locale.parse(code).get_display_name(code) or code).capitalize(),
                f"se:{dialog_id}:l:{code}",
            )
            for code in self._protocol(data.get("protocol")).languages
        )
        total = self._steps()
        await self._say(
            chat_id,
            t(
                lang,
                "{label} ({step}/{total}): the patient's language?",
                label=data["label"],
                step=total,
                total=total,
            ),
            (languages, self._cancel_row(dialog_id)),
        )

    async def _enroll_done(self, chat_id: int, user_id: int, data: dict[str, Any]) -> None:
        lang = STAFF_LANGUAGE
        try:
            invitation = await enrolment.enrol(
                self._ctx,
                label=data["label"],
                procedure_at=datetime.fromisoformat(data["procedure_at"]),
                side=KneeSide(data["side"]),
                indication=Indication(data["indication"]),
                language=data["language"],
                protocol=self._protocol(data.get("protocol")),
                actor=f"staff:{user_id}",
            )
        except UsageError as exc:
            await self._say(chat_id, t(lang, "Not done: {reason}", reason=str(exc)))
            return
        expiry = format_local(invitation.expires_at, lang, self._ctx.unit.time_zone, "short")
        text = t(
            lang,
            "{label} enrolled. Give the patient this link (single use, until {expiry}):\n{link}",
            label=invitation.label,
            expiry=expiry,
            link=invitation.link,
        )
        await self._say(chat_id, text)
        await self._say(
            chat_id,
            t(
                lang,
                "QR code for {label}: the patient scans it with the phone camera.",
                label=invitation.label,
            ),
            photo=enrolment.qr_png(invitation.link),
        )

    # --- dialog answers ---------------------------------------------------------------------

    async def on_dialog_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Text answering a staff member's open dialog; anything else goes on to group 0."""
        message, chat, user = update.effective_message, update.effective_chat, update.effective_user
        if message is None or chat is None or user is None or not message.text:
            return
        if chat.type != ChatType.PRIVATE:
            # Only a reply to the bot counts: chatter between nurses must never become a
            # resolution note (and with privacy mode on, replies are all the bot receives).
            replied = message.reply_to_message
            if (
                replied is None
                or replied.from_user is None
                or replied.from_user.id != context.bot.id
            ):
                return
        dialog = await staff_dialogs.current(self._ctx, chat_id=chat.id, user_id=user.id)
        if dialog is None:
            return
        if not await self.is_staff(user.id):
            await staff_dialogs.finish(self._ctx, dialog_id=dialog.id)
            return
        if dialog.kind == "enroll" and dialog.step == "label":
            await self._enroll_label(chat.id, dialog, message.text)
        elif dialog.kind == "enroll" and dialog.step == "procedure_at":
            await self._enroll_time(chat.id, dialog, message.text)
        elif dialog.kind == "resolve":
            await self._resolve(chat.id, dialog, user.id, user.full_name, note=message.text.strip())
        else:
            await self._say(chat.id, t(STAFF_LANGUAGE, "Please tap one of the buttons above."))
        raise ApplicationHandlerStop

    async def on_dialog_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button of a staff dialog: enrolment choices, "No note", "Cancel"."""
        query = update.callback_query
        assert query is not None
        user, message = query.from_user, query.message
        lang = STAFF_LANGUAGE
        if not await self.is_staff(user.id if user else None):
            await self.refuse(user.id if user else None, "dialog_button")
            await query.answer(
                t(lang, "Sorry, only the unit's staff can do this."), show_alert=True
            )
            return
        assert user is not None
        chat_id = message.chat.id if message is not None else user.id
        parts = (query.data or "").split(":")
        dialog = await staff_dialogs.current(self._ctx, chat_id=chat_id, user_id=user.id)
        if dialog is None or dialog.id != int(parts[1]):
            await query.answer(t(lang, "This step is over."))
            return
        if parts[0] == "sx":
            await staff_dialogs.finish(self._ctx, dialog_id=dialog.id)
            await query.answer(t(lang, "Cancelled."))
            if message is not None:
                await self._edit(chat_id, message.message_id, t(lang, "Cancelled."))
            return
        if parts[0] == "sn" and dialog.kind == "resolve":
            await query.answer()
            await self._resolve(chat_id, dialog, user.id, user.full_name, note=None)
            return
        toast = None
        if parts[0] == "se" and dialog.kind == "enroll" and len(parts) == 4:
            toast = await self._enroll_choice(chat_id, user.id, dialog, parts[2], parts[3])
        await query.answer(toast if toast is not None else t(lang, "This step is over."))

    # --- alert buttons ----------------------------------------------------------------------

    async def on_alert_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Acknowledge an alert from its card, or start resolving it (with an optional note)."""
        query = update.callback_query
        assert query is not None
        user = query.from_user
        kind, alert_id = (query.data or "").split(":")
        lang = STAFF_LANGUAGE
        if not await self.is_staff(user.id if user else None):
            await self.refuse(user.id if user else None, f"alert_{kind}")
            await query.answer(
                t(lang, "Sorry, only the unit's staff can do this."), show_alert=True
            )
            return
        assert user is not None
        message = query.message
        if kind == "r":
            await self._ask_note(query, int(alert_id), user.id)
            return
        name = user.full_name or str(user.id)
        changed = await alerts.acknowledge(
            self._ctx, alert_id=int(alert_id), staff_name=name, staff_id=user.id
        )
        if changed is None:
            await query.answer(t(lang, "This alert was already handled."))
            return
        await query.answer(t(lang, "Done."))
        card_ref = SentRef(message.chat.id, message.message_id) if message is not None else None
        await self._refresh_card(int(alert_id), changed.staff_message_id, card_ref)

    async def _ask_note(self, query: Any, alert_id: int, user_id: int) -> None:
        """ "Résolu…": ask for an optional note; the pending state is a dialog row."""
        lang = STAFF_LANGUAGE
        if await staff_views.alert_status(self._ctx, alert_id) in (None, AlertStatus.RESOLVED):
            await query.answer(t(lang, "This alert was already handled."))
            return
        message = query.message
        chat_id = message.chat.id if message is not None else user_id
        data: dict[str, Any] = {"alert_id": alert_id}
        if message is not None:
            data.update(card_chat=message.chat.id, card_message=message.message_id)
        dialog = await staff_dialogs.begin(
            self._ctx, chat_id=chat_id, user_id=user_id, kind="resolve", step="note", data=data
        )
        await query.answer()
        prompt = await self._say(
            chat_id,
            t(lang, "Note? (optional) Reply with a short note, or tap “No note”.")
            + self._group_hint(chat_id),
            (
                (
                    Button(t(lang, "No note"), f"sn:{dialog.id}"),
                    Button(t(lang, "Cancel"), f"sx:{dialog.id}"),
                ),
            ),
        )
        if prompt is not None:
            await staff_dialogs.advance(
                self._ctx,
                dialog_id=dialog.id,
                step="note",
                data={**data, "prompt": prompt.message_id},
            )

    async def _resolve(
        self,
        chat_id: int,
        dialog: staff_dialogs.Dialog,
        user_id: int,
        user_name: str | None,
        *,
        note: str | None,
    ) -> None:
        lang = STAFF_LANGUAGE
        if not await staff_dialogs.finish(self._ctx, dialog_id=dialog.id):
            return
        alert_id = int(dialog.data["alert_id"])
        changed = await alerts.resolve(
            self._ctx,
            alert_id=alert_id,
            staff_name=user_name or str(user_id),
            staff_id=user_id,
            note=note or None,
        )
        prompt = dialog.data.get("prompt")
        if changed is None:
            done = t(lang, "This alert was already handled.")
        elif note:
            done = t(lang, "✅ Resolved, note saved.")
        else:
            done = t(lang, "✅ Resolved without a note.")
        if prompt is not None:
            await self._edit(chat_id, int(prompt), done)
        else:
            await self._say(chat_id, done)
        if changed is not None:
            card = dialog.data.get("card_message")
            card_ref = (
                SentRef(int(dialog.data["card_chat"]), int(card)) if card is not None else None
            )
            await self._refresh_card(alert_id, changed.staff_message_id, card_ref)

    async def _refresh_card(
        self, alert_id: int, staff_message_id: int | None, pressed: SentRef | None
    ) -> None:
        """Post the card's new state: the staff chat's copy through the alert delivery (retried),
        the copy whose button was pressed (e.g. in the on-call chat) directly."""
        await alerts.deliver_pending(self._ctx)
        card = await alerts.card_for(self._ctx, alert_id)
        in_staff_chat = pressed is not None and (pressed.chat_id, pressed.message_id) == (
            self._ctx.unit.staff_chat_id,
            staff_message_id,
        )
        if card is not None and pressed is not None and not in_staff_chat:
            try:
                await self._ctx.messenger.edit(pressed, card)
            except DeliveryError as exc:
                log.warning("card_edit_failed", error=type(exc).__name__)


async def publish_staff_commands(bot: Bot, ctx: ServiceContext) -> None:
    """The staff command menu in the staff group (setMyCommands for that chat only: patients
    never see it). A failure is logged, not fatal."""
    if ctx.unit.staff_chat_id is None:
        return
    commands = [BotCommand(name, t(STAFF_LANGUAGE, description)) for name, description in MENU]
    try:
        await bot.set_my_commands(commands, scope=BotCommandScopeChat(ctx.unit.staff_chat_id))
    except TelegramError as exc:
        log.warning("set_staff_commands_failed", error=type(exc).__name__)
