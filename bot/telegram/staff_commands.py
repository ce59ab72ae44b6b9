"""Staff commands in Telegram, and the staff group's command menu.

Commands work in the staff group and in a private chat with the bot, nowhere else (a command
typed in another group would show patient data to strangers). Each one parses its words, calls
the service and sends what comes back; a :class:`~bot.errors.BotError` becomes a short answer.
The handlers run in ``app.STAFF_GROUP``, before the patient handlers, and stop the update once
handled; a patient's own ``/stop``, ``/pause`` or ``/resume`` goes on to them untouched.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from telegram import Bot, BotCommand, BotCommandScopeChat, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.errors import BotError, NotFoundError
from bot.i18n import t, tn
from bot.services import (
    audit,
    charts,
    export,
    followup,
    outcomes,
    outcomes_render,
    staff_enrolment,
    staff_views,
)
from bot.services.context import ServiceContext
from bot.services.ports import OutgoingMessage
from bot.telegram.staff_access import StaffAccess

log = structlog.get_logger(__name__)
#: Patients have commands of the same name in their private chat: a non-staff sender there is
#: a patient, so the update is left to the patient handlers instead of being refused.
SHARED_COMMANDS = frozenset({"stop", "pause", "resume"})
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
    ("outcomes", "Outcomes: pain, opioids, relief duration (figure and table)"),
)

Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class StaffCall:
    """A staff command as the handlers need it: where, who, and the words after the command."""

    chat_id: int
    user_id: int
    args: list[str]
    text: str


Command = Callable[[StaffCall], Awaitable[None]]


class StaffCommands:
    """One method per staff command, each wrapped by :meth:`callbacks` with the checks."""

    def __init__(self, access: StaffAccess) -> None:
        self._access = access
        self._ctx = access.ctx

    def callbacks(self) -> dict[str, Callback]:
        """The python-telegram-bot callback of each command, by command name."""
        commands: dict[str, Command] = {
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
            "outcomes": self.cmd_outcomes,
        }
        return {name: self._wrap(name, command) for name, command in commands.items()}

    async def _say(self, chat_id: int, text: str) -> None:
        await self._access.say(chat_id, OutgoingMessage(text))

    def _wrap(self, name: str, command: Command) -> Callback:
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
            lang = self._ctx.unit.staff_language
            if not await self._access.is_staff(user_id):
                if chat.type == ChatType.PRIVATE and name in SHARED_COMMANDS:
                    return
                await self._access.refuse(user_id, f"command_{name}")
                if self._access.should_tell(user_id, chat.id):
                    await self._say(chat.id, self._access.refusal())
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
                await command(call)
            except NotFoundError as exc:
                await self._say(chat.id, str(exc))
            except BotError as exc:
                await self._say(chat.id, t(lang, "Not done: {reason}", reason=str(exc)))
            raise ApplicationHandlerStop

        run.__doc__ = f"/{name} from a staff member."
        return run

    async def cmd_enroll(self, call: StaffCall) -> None:
        """``/enroll [label [date time]]``: the guided enrolment (:mod:`staff_enrolment`)."""
        reply = await staff_enrolment.start(
            self._ctx, chat_id=call.chat_id, user_id=call.user_id, args=call.args
        )
        await self._access.show(call.chat_id, reply)

    async def cmd_patients(self, call: StaffCall) -> None:
        """``/patients``: follow-ups in progress, most urgent first."""
        rows = await staff_views.active_patients(self._ctx)
        await staff_views.record_view(
            self._ctx, staff_id=call.user_id, what="patients", episode_id=None
        )
        await self._say(
            call.chat_id, staff_views.render_patient_list(rows, self._ctx.unit.staff_language)
        )

    async def cmd_alerts(self, call: StaffCall) -> None:
        """``/alerts``: alerts not yet resolved."""
        rows = await staff_views.open_alerts(self._ctx, language=self._ctx.unit.staff_language)
        await self._say(
            call.chat_id, staff_views.render_alert_list(rows, self._ctx.unit.staff_language)
        )

    async def cmd_patient(self, call: StaffCall) -> None:
        """``/patient <label>``: the timeline, then the chart of pain and swelling."""
        lang = self._ctx.unit.staff_language
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
        await self._access.say(call.chat_id, OutgoingMessage("", photo=png))

    async def cmd_msg(self, call: StaffCall) -> None:
        """``/msg <label> <text>``: a message from the unit to the patient, through the bot."""
        lang = self._ctx.unit.staff_language
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
        lang = self._ctx.unit.staff_language
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
        await self._access.say(
            call.chat_id,
            OutgoingMessage(
                tn(lang, "{count} answer exported (CSV)", "{count} answers exported (CSV)", count),
                document=buffer.getvalue().encode("utf-8"),
                file_name=f"cryo-followup-{day}.csv",
            ),
        )

    async def cmd_outcomes(self, call: StaffCall) -> None:
        """``/outcomes``: the outcomes report's summary, then its main figure."""
        lang = self._ctx.unit.staff_language
        report = await outcomes.build_outcomes(self._ctx)
        await staff_views.record_view(
            self._ctx, staff_id=call.user_id, what="outcomes", episode_id=None
        )
        await self._say(call.chat_id, outcomes_render.summary_text(report, lang))
        png = await asyncio.to_thread(outcomes_render.render_png, report, lang)
        await self._access.say(call.chat_id, OutgoingMessage("", photo=png))

    async def cmd_pause(self, call: StaffCall) -> None:
        """``/pause <label>``: nothing is sent until ``/resume``."""
        lang = self._ctx.unit.staff_language
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
        lang = self._ctx.unit.staff_language
        if not call.args:
            await self._say(call.chat_id, t(lang, "Usage: /resume <label>"))
            return
        label = call.args[0]
        await followup.resume(self._ctx, label=label, actor=f"staff:{call.user_id}")
        await self._say(call.chat_id, t(lang, "Follow-up of {label} resumed.", label=label))

    async def cmd_stop(self, call: StaffCall) -> None:
        """``/stop <label> [reason]``: end the follow-up (the patient is not told)."""
        lang = self._ctx.unit.staff_language
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
        lang = self._ctx.unit.staff_language
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


async def publish_staff_commands(bot: Bot, ctx: ServiceContext) -> None:
    """The staff command menu in the staff group (setMyCommands for that chat only: patients
    never see it). A failure is logged, not fatal."""
    if ctx.unit.staff_chat_id is None:
        return
    commands = [
        BotCommand(name, t(ctx.unit.staff_language, description)) for name, description in MENU
    ]
    try:
        await bot.set_my_commands(commands, scope=BotCommandScopeChat(ctx.unit.staff_chat_id))
    except TelegramError as exc:
        log.warning("set_staff_commands_failed", error=type(exc).__name__)
