"""The patient's commands: /help, /next, /language, /stop, /mydata, /delete.

They work whatever the conversation is waiting for (data rights never wait for a check-in to
end) and for a follow-up that is over. Destructive ones ask first with two buttons
(``x:<y|n>`` for /stop, ``e:<y|n>`` for /delete); /language offers a button per language that has
both a catalog and the protocol's wording (``l:<lang>``). Staff hear about /stop and /delete in
their chat; every command that changes something is audited.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from babel import Locale

from bot.db.queries import episodes
from bot.domain.states import FOLLOW_UP_OVER, EpisodeStatus
from bot.i18n import format_local, t, tn
from bot.services import erasure
from bot.services.context import ServiceContext
from bot.services.conversation import envelope
from bot.services.conversation.blocking import unblock
from bot.services.conversation.languages import interface_languages, unknown_chat_text
from bot.services.conversation.prompts import resume
from bot.services.conversation.stop import stop_episode
from bot.services.conversation.turn import Outbox, Reply, Turn
from bot.services.ports import Button, OutgoingMessage
from bot.services.questions import decode

log = structlog.get_logger(__name__)

COMMANDS = ("help", "next", "language", "stop", "mydata", "delete")


def command_descriptions(language: str) -> list[tuple[str, str]]:
    """The command menu Telegram shows (setMyCommands), in ``language``."""
    return [
        ("help", t(language, "How this follow-up works")),
        ("next", t(language, "When is my next check-in?")),
        ("language", t(language, "Change the language")),
        ("stop", t(language, "Stop the follow-up messages")),
        ("mydata", t(language, "Get a copy of my data")),
        ("delete", t(language, "Ask for my data to be deleted")),
    ]


def language_name(language: str) -> str:
    """A language's name in itself ("Français", "English"), from CLDR: no list in code."""
    try:
        name = Locale.parse(language).get_display_name(language) or language
    except (ValueError, LookupError):
        return language
    return name[:1].upper() + name[1:]


def help_text(ctx: ServiceContext, language: str) -> str:
    """What the bot does and the commands, short enough for a small phone."""
    lines = [
        t(
            language,
            "I ask you short questions about your knee after the procedure. Answer by tapping a button or by typing a few words. The care team reads your answers.",
        ),
        "",
    ]
    lines += [
        f"/{command} — {description}" for command, description in command_descriptions(language)
    ]
    lines += [
        "",
        t(
            language,
            "If you are worried, call the unit on {phone}. In an emergency, call 15 or 112.",
            phone=ctx.unit.unit_phone,
        ),
    ]
    return "\n".join(lines)


async def handle_command(
    ctx: ServiceContext,
    *,
    chat_id: int,
    command: str,
    update_id: int | None,
    language_code: str | None,
) -> None:
    """One of :data:`COMMANDS` (or ``"unknown"``) typed by a patient; strangers are told how to
    enrol."""

    def stranger(outbox: Outbox, language: str) -> None:
        if command == "help":
            outbox.say(help_text(ctx, language))
        outbox.say(unknown_chat_text(language))

    async def route(turn: Turn) -> None:
        unblock(turn)
        await _run(turn, command=command)

    await envelope.run(
        ctx,
        chat_id=chat_id,
        update_id=update_id,
        language_code=language_code,
        route=route,
        stranger=stranger,
    )


async def _run(turn: Turn, *, command: str) -> None:
    """One command of an enrolled patient (whatever the follow-up's state)."""
    ctx, patient, episode, outbox, lang = (
        turn.ctx,
        turn.patient,
        turn.episode,
        turn.outbox,
        turn.language,
    )
    if command == "help":
        outbox.say(help_text(ctx, lang))
    elif command == "next":
        await _next(turn)
    elif command == "language":
        outbox.say(
            t(lang, "Which language do you prefer?"),
            tuple(
                (Button(language_name(code), f"l:{code}"),)
                for code in interface_languages(turn.protocol)
            ),
        )
    elif command == "stop":
        if episode.status not in (
            EpisodeStatus.CONSENT,
            EpisodeStatus.ACTIVE,
            EpisodeStatus.PAUSED,
        ):
            outbox.say(
                t(lang, "Your follow-up is not running: you will not receive any questions.")
            )
            return
        outbox.say(
            t(
                lang,
                "Do you want to stop the follow-up? You will not receive any more questions, and the team will be told.",
            ),
            (
                (
                    Button(t(lang, "Yes, stop"), "x:y"),
                    Button(t(lang, "No, continue"), "x:n"),
                ),
            ),
        )
    elif command == "mydata":
        document = await _my_data(turn)
        turn.audit("data_copy_sent", actor="patient")
        outbox.messages.append(
            OutgoingMessage(
                text=t(lang, "Here is a copy of everything the follow-up stores about you."),
                document=document,
                file_name="my-data.json",
            )
        )
    elif command == "delete":
        if patient.erasure_requested_at is not None:
            outbox.say(_already_requested(turn))
            return
        outbox.say(
            t(
                lang,
                "Do you want to ask the unit to delete your data? The team decides according to the hospital's rules on keeping medical records, and will tell you.",
            ),
            (
                (
                    Button(t(lang, "Yes, ask for deletion"), "e:y"),
                    Button(t(lang, "No"), "e:n"),
                ),
            ),
        )
    else:
        outbox.say(t(lang, "Sorry, I do not know this command.") + "\n\n" + help_text(ctx, lang))


def _already_requested(turn: Turn) -> str:
    """When the patient's erasure request was recorded (they asked again)."""
    requested = turn.patient.erasure_requested_at
    assert requested is not None
    return t(
        turn.language,
        "Your request to delete your data was already recorded on {date}. The team will tell you when it is done.",
        date=format_local(requested, turn.language, turn.episode.time_zone),
    )


async def _next(turn: Turn) -> None:
    """When the next check-in is, in the patient's language and time zone."""
    session, episode, outbox, lang, now = (
        turn.session,
        turn.episode,
        turn.outbox,
        turn.language,
        turn.now,
    )
    if episode.status in FOLLOW_UP_OVER or episode.status == EpisodeStatus.REFUSED:
        outbox.say(t(lang, "Your follow-up is not running: you will not receive any questions."))
        return
    if episode.status != EpisodeStatus.ACTIVE:
        outbox.say(t(lang, "Your follow-up has not started yet."))
        await resume(turn)
        return
    if await episodes.open_checkin(session, episode_id=episode.id) is not None:
        outbox.say(t(lang, "A check-in is waiting for your answers:"))
        await resume(turn)
        return
    due = await episodes.next_checkin_due(session, episode_id=episode.id)
    if due is None:
        outbox.say(t(lang, "There are no more check-ins planned."))
        return
    zone = ZoneInfo(episode.time_zone)
    days = (due.astimezone(zone).date() - now.astimezone(zone).date()).days
    relative = (
        t(lang, "today")
        if days <= 0
        else t(lang, "tomorrow")
        if days == 1
        else tn(lang, "in {count} day", "in {count} days", days)
    )
    outbox.say(
        t(
            lang,
            "Your next check-in: {when} ({relative}).",
            when=format_local(due, lang, episode.time_zone),
            relative=relative,
        )
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def _my_data(turn: Turn) -> bytes:
    """Everything stored about the patient, as readable JSON (staff names are left out)."""
    session, patient, now = turn.session, turn.patient, turn.now
    data: dict[str, Any] = {
        "generated_at": now.isoformat(),
        "patient": {
            "label": patient.label,
            "telegram_chat_id": patient.chat_id,
            "created_at": _iso(patient.created_at),
            "erasure_requested_at": _iso(patient.erasure_requested_at),
        },
        "episodes": [],
    }
    for episode in await episodes.episodes_of_patient(session, patient_id=patient.id):
        record = await episodes.episode_record(session, episode_id=episode.id)
        def_of = {}
        checkin_rows = []
        for checkin in record.checkins:
            def_of[checkin.id] = checkin.def_id
            checkin_rows.append(
                {
                    "checkin": checkin.def_id,
                    "due_at": _iso(checkin.due_at),
                    "status": checkin.status,
                    "closed_at": _iso(checkin.closed_at),
                }
            )
        data["episodes"].append(
            {
                "procedure_at": _iso(episode.procedure_at),
                "time_zone": episode.time_zone,
                "side": episode.side,
                "indication": episode.indication,
                "language": episode.language,
                "status": episode.status,
                "baseline_pain": episode.baseline_pain,
                "baseline_source": episode.baseline_source,
                "consent_version": episode.consent_version,
                "consented_at": _iso(episode.consented_at),
                "created_at": _iso(episode.created_at),
                "checkins": checkin_rows,
                "answers": [
                    {
                        "at": _iso(answer.created_at),
                        "day": answer.day,
                        "checkin": def_of.get(answer.checkin_id) if answer.checkin_id else None,
                        "question": answer.question_id,
                        "kind": answer.kind,
                        "text": answer.raw_text,
                        "value": answer.value,
                        "score": answer.score,
                        "option": answer.option_id,
                        "flags": list(answer.flags or []),
                        "choices": list(answer.choices or []),
                        "status": answer.status,
                        "telegram_file_id": answer.file_id,
                        "local_copy_kept": answer.file_path is not None,
                    }
                    for answer in record.answers
                ],
                "alerts": [
                    {
                        "rule": alert.rule_id,
                        "severity": alert.severity,
                        "status": alert.status,
                        "created_at": _iso(alert.created_at),
                        "acknowledged_at": _iso(alert.acknowledged_at),
                        "resolved_at": _iso(alert.resolved_at),
                    }
                    for alert in record.alerts
                ],
                "events": [
                    {"at": _iso(event.at), "action": event.action} for event in record.events
                ],
            }
        )
    return json.dumps(data, ensure_ascii=False, indent=2).encode()


async def handle_button(
    ctx: ServiceContext,
    *,
    chat_id: int,
    data: str,
    update_id: int | None,
    message_id: int | None,
    language_code: str | None = None,
) -> Reply:
    """The buttons of the commands: confirm /stop or /delete, choose a language."""
    press = decode(data)

    async def route(turn: Turn) -> None:
        if press is None or press.value is None:
            turn.outbox.toast = t(turn.language, "This question is closed. Thank you!")
        else:
            turn.outbox.toast = await _press(turn, kind=press.kind, value=press.value)

    return await envelope.run(
        ctx,
        chat_id=chat_id,
        update_id=update_id,
        language_code=language_code,
        route=route,
        stranger=envelope.inactive_button,
    )


async def _press(turn: Turn, *, kind: str, value: str) -> str | None:
    """A command's button: choose a language, confirm /stop or /delete. Returns the toast."""
    ctx, patient, episode, outbox, lang = (
        turn.ctx,
        turn.patient,
        turn.episode,
        turn.outbox,
        turn.language,
    )
    stale = t(lang, "This question is closed. Thank you!")
    if kind == "l":
        if value not in interface_languages(turn.protocol):
            return stale
        episode.language = value
        turn.audit("language_changed", actor="patient", language=value)
        outbox.say(
            t(
                value,
                "From now on I will write to you in {language}.",
                language=language_name(value),
            )
        )
        await resume(turn)
        return None
    if kind == "x":
        if episode.status not in (
            EpisodeStatus.CONSENT,
            EpisodeStatus.ACTIVE,
            EpisodeStatus.PAUSED,
        ):
            return t(lang, "Your follow-up is not running: you will not receive any questions.")
        if value != "y":
            outbox.say(t(lang, "Good, your follow-up goes on."))
            await resume(turn)
            return None
        await stop_episode(turn, reason="patient_stop")
        outbox.say(
            t(
                lang,
                "Your follow-up is stopped: you will not receive any more questions. If you are worried, call the unit on {phone}. You can still get your data with /mydata or ask for its deletion with /delete.",
                phone=ctx.unit.unit_phone,
            )
        )
        outbox.staff_notices.append(
            t(
                ctx.unit.staff_language,
                "ℹ️ {label} stopped the follow-up (/stop).",
                label=patient.label,
            )
        )
        ctx.on_schedule_changed()
        return None
    if kind == "e":
        if value != "y":
            outbox.say(t(lang, "Understood, nothing will be deleted."))
            await resume(turn)
            return None
        if not erasure.record_request(
            turn.session, patient=patient, episode_id=episode.id, now=turn.now
        ):
            outbox.say(_already_requested(turn))
            return None
        outbox.say(
            t(
                lang,
                "Your request has been recorded. The team will handle it and tell you. If you also want to stop the questions, type /stop.",
            )
        )
        outbox.staff_notices.append(
            t(
                ctx.unit.staff_language,
                "🗑 {label} asked for their data to be deleted (/delete). Decide under the unit's retention policy; to erase: python -m bot erase --label {label}",
                label=patient.label,
            )
        )
        return None
    return stale
