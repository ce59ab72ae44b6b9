"""The patient conversation, with its position kept in the database (never in memory).

An incoming update is: find the patient by chat → skip it if its update id was already handled →
find what we are waiting for (consent, baseline, a clarification, the open check-in question) →
parse → save the answer with its raw text → evaluate the rules → reply. Replies and alerts are
sent after the transaction commits, so a crash never leaves an answer half-saved, and a failure
to send never loses an answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Alert, Answer, CheckIn, Episode, Patient, ProcessedUpdate
from bot.domain.parsing import Parsed, parse_question, parse_scale, parse_yes_no, scan_red_flags
from bot.domain.protocol import Indication, Protocol, Question, Severity
from bot.domain.rules import (
    Finding,
    History,
    Observation,
    evaluate_answers,
    evaluate_unheard_media,
    most_severe,
)
from bot.domain.schedule import day_number
from bot.errors import EnrolmentError
from bot.i18n import format_local, normalise_language, t
from bot.metrics import ANSWERS_SAVED
from bot.services import alerts, audit
from bot.services.context import ServiceContext
from bot.services.enrolment import LIVE_STATUSES, link_chat, plan_episode
from bot.services.ports import Button, DeliveryError, OutgoingMessage, RecipientBlocked, SentRef
from bot.services.questions import ButtonPress, answer_label, decode, render_question, scale_rows

log = structlog.get_logger(__name__)

RED_FLAG_TYPES = ("checklist", "yes_no")


@dataclass
class Outbox:
    """What to send once the transaction has committed."""

    chat_id: int
    messages: list[OutgoingMessage] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    #: Messages to edit in place (checklist ticks), as (message id, new content).
    edits: list[tuple[int, OutgoingMessage]] = field(default_factory=list)
    forward_message_id: int | None = None

    def say(self, text: str, buttons: tuple[tuple[Button, ...], ...] = ()) -> None:
        """Queue a message to the patient."""
        self.messages.append(OutgoingMessage(text=text, buttons=buttons))


@dataclass
class Reply:
    """What a handler tells the Telegram adapter: a short toast for a button press, if any."""

    toast: str | None = None


async def _already_processed(session: AsyncSession, update_id: int | None, now: datetime) -> bool:
    """Record the update id; True when Telegram delivered it before (idempotency)."""
    if update_id is None:
        return False
    if await session.get(ProcessedUpdate, update_id) is not None:
        return True
    session.add(ProcessedUpdate(update_id=update_id, processed_at=now))
    return False


async def _live_episode(session: AsyncSession, chat_id: int) -> tuple[Patient, Episode] | None:
    patient = await session.scalar(select(Patient).where(Patient.chat_id == chat_id))
    if patient is None or patient.erased_at is not None:
        return None
    episode = await session.scalar(
        select(Episode)
        .where(Episode.patient_id == patient.id, Episode.status.in_(LIVE_STATUSES))
        .order_by(Episode.id.desc())
    )
    if episode is None:
        return None
    return patient, episode


async def _open_checkin(session: AsyncSession, episode_id: int) -> CheckIn | None:
    return await session.scalar(
        select(CheckIn).where(CheckIn.episode_id == episode_id, CheckIn.status == "awaiting")
    )


async def flush(ctx: ServiceContext, outbox: Outbox) -> None:
    """Send queued patient messages, then post alerts to staff (never the other way round:
    safety advice first)."""
    for message_id, message in outbox.edits:
        try:
            await ctx.messenger.edit(SentRef(outbox.chat_id, message_id), message)
        except DeliveryError as exc:
            log.warning("patient_edit_failed", error=type(exc).__name__)
    for message in outbox.messages:
        try:
            await ctx.messenger.send(outbox.chat_id, message)
        except RecipientBlocked:
            await mark_blocked(ctx, chat_id=outbox.chat_id)
            break
        except DeliveryError as exc:
            log.warning("patient_message_failed", error=type(exc).__name__)
            break
    if outbox.forward_message_id is not None and ctx.unit.staff_chat_id is not None:
        try:
            await ctx.messenger.forward(
                ctx.unit.staff_chat_id, outbox.chat_id, outbox.forward_message_id
            )
        except DeliveryError as exc:
            log.warning("forward_failed", error=type(exc).__name__)
    if outbox.alerts:
        await alerts.deliver_pending(ctx)


async def handle_start(
    ctx: ServiceContext,
    *,
    chat_id: int,
    token: str | None,
    update_id: int | None,
    language_code: str | None,
) -> None:
    """``/start <token>``: link the chat and ask for consent, or explain why not."""
    outbox = Outbox(chat_id)
    now = ctx.clock.now()
    language = normalise_language(language_code, ("fr", "en"))
    async with ctx.sessions.begin() as session:
        if await _already_processed(session, update_id, now):
            return
        found = await _live_episode(session, chat_id)
    if found is not None and found[1].status != "invited" and not token:
        episode = found[1]
        outbox.say(
            t(episode.language, "You are already enrolled. Type /help to see what I can do.")
        )
        await flush(ctx, outbox)
        return
    if not token:
        outbox.say(
            t(
                language,
                "Hello! To start your follow-up, please open the link or scan the QR code the unit gave you.",
            )
        )
        await flush(ctx, outbox)
        return
    try:
        episode = await link_chat(ctx, token=token, chat_id=chat_id)
    except EnrolmentError as exc:
        messages = {
            "unknown": "This link is not valid. Please check it, or ask the unit for a new one.",
            "used": "This link has already been used. If you did not use it, please call the unit.",
            "expired": "This link has expired. Please ask the unit for a new one.",
            "linked": "This Telegram account is already linked to a follow-up. Please call the unit if this is not right.",
        }
        if found is not None:
            language = found[1].language
        outbox.say(
            t(language, messages.get(exc.reason, messages["unknown"]), phone=ctx.unit.unit_phone)
        )
        await flush(ctx, outbox)
        return
    async with ctx.sessions() as session:
        protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
    outbox.messages.append(consent_message(ctx, protocol, episode.language))
    await flush(ctx, outbox)


def consent_message(ctx: ServiceContext, protocol: Protocol, language: str) -> OutgoingMessage:
    """Welcome naming the unit, what will be asked and when, and the consent buttons."""
    welcome = t(
        language,
        "Hello, I am the follow-up assistant of the {unit} unit. After your knee cryoneurolysis I "
        "will ask you a few short questions (1 to 2 minutes): this evening, then on days 1, 2, 3, 7 "
        "and 14, then at 6 weeks, 3 and 6 months.",
        unit=ctx.unit.unit_name,
    )
    text = f"{welcome}\n\n{protocol.consent.text.get(language)}"
    return OutgoingMessage(
        text=text,
        buttons=(
            (Button(t(language, "I agree"), "c:y"), Button(t(language, "I refuse"), "c:n")),
            (Button(t(language, "More information"), "c:i"),),
        ),
    )


async def handle_text(
    ctx: ServiceContext,
    *,
    chat_id: int,
    text: str,
    update_id: int | None,
    message_id: int | None,
) -> None:
    """A typed message: an answer to what we wait for, or a note read for red flags."""
    outbox = Outbox(chat_id)
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        if await _already_processed(session, update_id, now):
            return
        found = await _live_episode(session, chat_id)
        if found is None:
            outbox.say(
                t(
                    "fr",
                    "I do not know this chat yet. Please open the link the unit gave you. / Je ne connais pas encore cette conversation : ouvrez le lien donné par le service.",
                )
            )
        else:
            _patient, episode = found
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            await _route_text(session, ctx, outbox, protocol, episode, text, message_id, now)
    await flush(ctx, outbox)


async def _route_text(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    text: str,
    message_id: int | None,
    now: datetime,
) -> None:
    lang = episode.language
    awaiting = episode.awaiting or ""
    if awaiting == "consent":
        parsed = parse_yes_no(text)
        if parsed.status == "ok":
            await _consent(session, ctx, outbox, protocol, episode, parsed.value == 1, now)
        else:
            outbox.messages.append(consent_message(ctx, protocol, lang))
        return
    if awaiting == "baseline":
        parsed = parse_scale(text, minimum=0, maximum=10)
        _save(session, episode, None, "baseline", "text", text, parsed, now, message_id)
        if parsed.status == "ok" and parsed.value is not None:
            await _set_baseline(session, ctx, outbox, protocol, episode, parsed.value, now)
        else:
            outbox.say(
                t(lang, "Sorry, I did not understand. Could you choose a number from 0 to 10?"),
                scale_rows("b:", 0, 10),
            )
        await _scan_free_text(session, ctx, outbox, protocol, episode, text, now)
        return
    if awaiting.startswith("clarify:"):
        flag = awaiting.split(":", 1)[1]
        parsed = parse_yes_no(text)
        _save(session, episode, None, f"clarify_{flag}", "text", text, parsed, now, message_id)
        await _clarified(session, ctx, outbox, protocol, episode, flag, parsed, now)
        return
    checkin = await _open_checkin(session, episode.id)
    if checkin is not None:
        questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
        if checkin.question_index < len(questions):
            question = questions[checkin.question_index]
            parsed = parse_question(
                question,
                text,
                language=lang,
                red_flags=protocol.red_flags,
                fever_threshold=protocol.fever_threshold_celsius,
            )
            await _answer(
                session,
                ctx,
                outbox,
                protocol,
                episode,
                checkin,
                question,
                parsed,
                "text",
                text,
                message_id,
                now,
            )
            return
    _save(session, episode, None, None, "note", text, Parsed(status="ok"), now, message_id)
    found_flags = await _scan_free_text(session, ctx, outbox, protocol, episode, text, now)
    if not found_flags and episode.awaiting is None:
        outbox.say(
            t(
                lang,
                "Thank you, your message has been saved and the team will read it. If you are worried, call the unit on {phone}.",
                phone=ctx.unit.unit_phone,
            )
        )


def _save(
    session: AsyncSession,
    episode: Episode,
    checkin: CheckIn | None,
    question_id: str | None,
    kind: str,
    raw: str | None,
    parsed: Parsed,
    now: datetime,
    message_id: int | None,
    *,
    flags: frozenset[str] | None = None,
    file_id: str | None = None,
) -> Answer:
    answer = Answer(
        episode_id=episode.id,
        checkin_id=checkin.id if checkin else None,
        question_id=question_id,
        kind=kind,
        raw_text=raw,
        value=parsed.value,
        option_id=parsed.option_id,
        flags=sorted(flags if flags is not None else parsed.flags),
        status=parsed.status,
        day=day_number(episode.procedure_at, now, episode.time_zone),
        file_id=file_id,
        telegram_message_id=message_id,
        created_at=now,
    )
    session.add(answer)
    ANSWERS_SAVED.labels(kind=kind).inc()
    return answer


async def _history(session: AsyncSession, episode: Episode) -> tuple[History, dict[int, str]]:
    rows = await session.execute(
        select(Answer, CheckIn.def_id)
        .outerjoin(CheckIn, Answer.checkin_id == CheckIn.id)
        .where(Answer.episode_id == episode.id)
        .order_by(Answer.created_at, Answer.id)
    )
    observations = []
    for answer, def_id in rows:
        if answer.status == "skip" or answer.question_id == "baseline":
            continue
        observations.append(
            Observation(
                checkin_id=def_id,
                question_id=answer.question_id if answer.kind != "note" else None,
                day=answer.day,
                value=answer.value,
                flags=frozenset(answer.flags or ()),
                unclear=answer.status == "unclear",
            )
        )
    history = History(
        indication=Indication(episode.indication),
        baseline=episode.baseline_pain,
        observations=tuple(observations),
    )
    return history, {}


async def _escalate(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    findings: list[Finding],
    now: datetime,
) -> None:
    """Open alerts and give the patient safety advice at once (never waiting for staff)."""
    if not findings:
        return
    touched = await alerts.raise_findings(session, now=now, episode=episode, findings=findings)
    for alert in touched:
        alerts.schedule_escalation(alert, now=now, after=ctx.unit.reescalate_after)
    outbox.alerts.extend(touched)
    severity = most_severe(findings)
    if severity is not None:
        outbox.say(alerts.safety_advice(protocol, severity, language=episode.language, ctx=ctx))
        audit.record(
            session,
            at=now,
            actor="system",
            action="safety_advice_sent",
            episode_id=episode.id,
            severity=severity.value,
        )
    log.info("findings", episode_id=episode.id, count=len(findings))


async def _evaluate(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    new: list[Observation],
    now: datetime,
) -> list[Finding]:
    await session.flush()
    history, _ = await _history(session, episode)
    findings = evaluate_answers(protocol, history, new)
    await _escalate(session, ctx, outbox, protocol, episode, findings, now)
    return findings


async def _scan_free_text(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    text: str,
    now: datetime,
    *,
    skip_flags: frozenset[str] = frozenset(),
) -> bool:
    """Read free text for red flags: certain ones alert, a doubtful one gets a yes/no question."""
    mentions = scan_red_flags(
        text, protocol.red_flags, fever_threshold=protocol.fever_threshold_celsius
    )
    certain = frozenset(m.flag for m in mentions if m.certainty == "certain") - skip_flags
    doubtful = [
        m.flag
        for m in mentions
        if m.certainty == "doubtful" and m.flag not in certain and m.flag not in skip_flags
    ]
    day = day_number(episode.procedure_at, now, episode.time_zone)
    if certain:
        _save(
            session,
            episode,
            None,
            None,
            "text_flags",
            None,
            Parsed(status="ok"),
            now,
            None,
            flags=certain,
        )
        await _evaluate(
            session,
            ctx,
            outbox,
            protocol,
            episode,
            [Observation(checkin_id=None, question_id=None, day=day, value=None, flags=certain)],
            now,
        )
    if doubtful and not (episode.awaiting or "").startswith("clarify:"):
        flag = doubtful[0]
        episode.awaiting = f"clarify:{flag}"
        episode.reask_count = 0
        outbox.say(
            protocol.red_flags[flag].question.get(episode.language),
            (
                (
                    Button(t(episode.language, "Yes"), f"f:{flag}:y"),
                    Button(t(episode.language, "No"), f"f:{flag}:n"),
                ),
            ),
        )
    return bool(certain or doubtful)


async def _clarified(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    flag: str,
    parsed: Parsed,
    now: datetime,
) -> None:
    lang = episode.language
    day = day_number(episode.procedure_at, now, episode.time_zone)
    if parsed.status != "ok":
        if episode.reask_count == 0:
            episode.reask_count = 1
            outbox.say(
                t(lang, "Please answer yes or no:")
                + "\n"
                + protocol.red_flags[flag].question.get(lang),
                ((Button(t(lang, "Yes"), f"f:{flag}:y"), Button(t(lang, "No"), f"f:{flag}:n")),),
            )
            return
        observation = Observation(
            checkin_id=None, question_id=None, day=day, value=None, flags=frozenset(), unclear=True
        )
        episode.awaiting = None
        episode.reask_count = 0
        await _escalate(
            session,
            ctx,
            outbox,
            protocol,
            episode,
            _unclear_findings(protocol, episode, observation),
            now,
        )
        await _resume(session, ctx, outbox, protocol, episode)
        return
    episode.awaiting = None
    episode.reask_count = 0
    if parsed.value == 1:
        await _evaluate(
            session,
            ctx,
            outbox,
            protocol,
            episode,
            [
                Observation(
                    checkin_id=None, question_id=None, day=day, value=1, flags=frozenset({flag})
                )
            ],
            now,
        )
    else:
        outbox.say(t(lang, "Thank you, noted."))
    await _resume(session, ctx, outbox, protocol, episode)


def _unclear_findings(
    protocol: Protocol, episode: Episode, observation: Observation
) -> list[Finding]:
    """The unclear-answer rule for a clarification that stayed unclear (a yes/no question)."""
    from bot.domain.protocol import UnclearAnswerRule
    from bot.domain.rules import Evidence

    findings = []
    for rule in protocol.rules_for(Indication(episode.indication)):
        if isinstance(rule, UnclearAnswerRule) and "yes_no" in rule.question_types:
            findings.append(
                Finding(
                    rule_id=rule.id,
                    severity=rule.severity,
                    evidence=(
                        Evidence(question_id=None, flag=None, value=None, day=observation.day),
                    ),
                )
            )
    return findings


async def _resume(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
) -> None:
    """After an interruption (clarification, language), ask the open question again."""
    checkin = await _open_checkin(session, episode.id)
    if checkin is None:
        return
    questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
    if checkin.question_index < len(questions):
        outbox.messages.append(
            render_question(
                protocol,
                questions[checkin.question_index],
                language=episode.language,
                checkin_id=checkin.id,
                index=checkin.question_index,
                selection=checkin.selection,
            )
        )


async def _consent(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    accepted: bool,
    now: datetime,
) -> None:
    lang = episode.language
    if not accepted:
        episode.status = "refused"
        episode.awaiting = None
        audit.record(
            session, at=now, actor="patient", action="consent_refused", episode_id=episode.id
        )
        outbox.say(
            t(
                lang,
                "Understood: you will not receive any follow-up messages. If you change your mind, ask the unit for a new link. Take care!",
            )
        )
        patient = await session.get(Patient, episode.patient_id)
        if patient is not None:
            await _notify_staff(
                ctx, t("fr", "ℹ️ {label} refused the follow-up.", label=patient.label)
            )
        return
    episode.consent_version = protocol.consent.version
    episode.consented_at = now
    audit.record(
        session,
        at=now,
        actor="patient",
        action="consent_given",
        episode_id=episode.id,
        consent_version=protocol.consent.version,
    )
    if episode.baseline_pain is None:
        episode.awaiting = "baseline"
        outbox.say(
            t(lang, "Thank you.") + " " + protocol.baseline_question.get(lang),
            scale_rows("b:", 0, 10),
        )
        return
    await _start_follow_up(session, ctx, outbox, episode, now)


async def _set_baseline(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    value: int,
    now: datetime,
) -> None:
    episode.baseline_pain = value
    episode.baseline_source = "patient"
    outbox.say(t(episode.language, "Noted: {value}/10.", value=value))
    await _start_follow_up(session, ctx, outbox, episode, now)


async def _start_follow_up(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    episode: Episode,
    now: datetime,
) -> None:
    episode.status = "active"
    episode.awaiting = None
    await plan_episode(session, ctx, episode)
    await session.flush()
    next_due = await session.scalar(
        select(CheckIn.due_at)
        .where(CheckIn.episode_id == episode.id, CheckIn.status == "scheduled")
        .order_by(CheckIn.due_at)
    )
    lang = episode.language
    if next_due is not None:
        outbox.say(
            t(
                lang,
                "Your follow-up has started. Next check-in: {when}.",
                when=format_local(next_due, lang, episode.time_zone),
            )
        )
    ctx.on_schedule_changed()


async def _answer(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    checkin: CheckIn,
    question: Question,
    parsed: Parsed,
    kind: str,
    raw: str | None,
    message_id: int | None,
    now: datetime,
) -> None:
    """Save an answer to the open question, evaluate the rules, ask the next question."""
    lang = episode.language
    if parsed.status == "unclear" and checkin.reask_count == 0:
        checkin.reask_count = 1
        _save(session, episode, checkin, question.id, kind, raw, parsed, now, message_id)
        hint = (
            question.hint.get(lang)
            if question.hint
            else t(lang, "Sorry, I did not understand. Please tap one of the buttons.")
        )
        outbox.messages.append(
            render_question(
                protocol,
                question,
                language=lang,
                checkin_id=checkin.id,
                index=checkin.question_index,
                selection=checkin.selection,
                prefix_text=hint,
            )
        )
        if raw:
            await _scan_free_text(session, ctx, outbox, protocol, episode, raw, now)
        return
    _save(session, episode, checkin, question.id, kind, raw, parsed, now, message_id)
    day = day_number(episode.procedure_at, now, episode.time_zone)
    observation = Observation(
        checkin_id=checkin.def_id,
        question_id=question.id,
        day=day,
        value=parsed.value,
        flags=parsed.flags,
        unclear=parsed.status == "unclear" and question.type in RED_FLAG_TYPES,
    )
    said = answer_label(question, language=lang, value=parsed.value, option_id=parsed.option_id)
    if said and parsed.status == "ok":
        outbox.say(t(lang, "Noted: {answer}.", answer=said))
    await _evaluate(session, ctx, outbox, protocol, episode, [observation], now)
    if raw and kind == "text":
        await _scan_free_text(
            session, ctx, outbox, protocol, episode, raw, now, skip_flags=parsed.flags
        )
    checkin.question_index += 1
    checkin.reask_count = 0
    checkin.selection = []
    checkin.next_reminder_at = None
    if (episode.awaiting or "").startswith("clarify:"):
        return
    questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
    if checkin.question_index < len(questions):
        outbox.messages.append(
            render_question(
                protocol,
                questions[checkin.question_index],
                language=lang,
                checkin_id=checkin.id,
                index=checkin.question_index,
            )
        )
        return
    checkin.status = "answered"
    checkin.closed_at = now
    next_due = await session.scalar(
        select(CheckIn.due_at)
        .where(
            CheckIn.episode_id == episode.id, CheckIn.status == "scheduled", CheckIn.due_at > now
        )
        .order_by(CheckIn.due_at)
    )
    if next_due is None:
        outbox.say(t(lang, "Thank you, that is all. This was the last check-in of your follow-up."))
        episode.status = "completed"
    else:
        outbox.say(
            t(
                lang,
                "Thank you, that is all for today. Next check-in: {when}.",
                when=format_local(next_due, lang, episode.time_zone),
            )
        )


async def handle_button(
    ctx: ServiceContext,
    *,
    chat_id: int,
    data: str,
    update_id: int | None,
    message_id: int | None,
) -> Reply:
    """A button press from a patient; stale and forged presses are refused politely."""
    outbox = Outbox(chat_id)
    now = ctx.clock.now()
    press = decode(data)
    toast: str | None = None
    async with ctx.sessions.begin() as session:
        if await _already_processed(session, update_id, now):
            return Reply()
        found = await _live_episode(session, chat_id)
        if found is None or press is None:
            return Reply(
                toast=t("fr", "This button is no longer active. / Ce bouton n'est plus actif.")
            )
        _patient, episode = found
        protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
        toast = await _route_button(session, ctx, outbox, protocol, episode, press, message_id, now)
    await flush(ctx, outbox)
    return Reply(toast=toast)


async def _route_button(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    press: ButtonPress,
    message_id: int | None,
    now: datetime,
) -> str | None:
    lang = episode.language
    stale = t(lang, "This question is closed. Thank you!")
    if press.kind == "c":
        if episode.awaiting != "consent":
            return stale
        if press.value == "i":
            outbox.say(
                protocol.consent.details.get(lang),
                ((Button(t(lang, "I agree"), "c:y"), Button(t(lang, "I refuse"), "c:n")),),
            )
            return None
        await _consent(session, ctx, outbox, protocol, episode, press.value == "y", now)
        return None
    if press.kind == "b":
        if episode.awaiting != "baseline" or press.value is None or not press.value.isdigit():
            return stale
        value = int(press.value)
        if not 0 <= value <= 10:
            return stale
        _save(
            session,
            episode,
            None,
            "baseline",
            "button",
            None,
            Parsed(status="ok", value=value),
            now,
            message_id,
        )
        await _set_baseline(session, ctx, outbox, protocol, episode, value, now)
        return None
    if press.kind == "f":
        assert press.value is not None
        flag, answer = press.value.split(":")
        if episode.awaiting != f"clarify:{flag}":
            return stale
        parsed = Parsed(
            status="ok", value=1 if answer == "y" else 0, option_id="yes" if answer == "y" else "no"
        )
        _save(session, episode, None, f"clarify_{flag}", "button", None, parsed, now, message_id)
        await _clarified(session, ctx, outbox, protocol, episode, flag, parsed, now)
        return None
    if press.kind in ("a", "t", "d", "n"):
        checkin = await session.get(CheckIn, press.checkin_id)
        if (
            checkin is None
            or checkin.episode_id != episode.id
            or checkin.status != "awaiting"
            or checkin.question_index != press.question_index
        ):
            return stale
        questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
        if checkin.question_index >= len(questions):
            return stale
        question = questions[checkin.question_index]
        return await _checkin_button(
            session, ctx, outbox, protocol, episode, checkin, question, press, message_id, now
        )
    return stale


async def _checkin_button(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    checkin: CheckIn,
    question: Question,
    press: ButtonPress,
    message_id: int | None,
    now: datetime,
) -> str | None:
    lang = episode.language
    stale = t(lang, "This question is closed. Thank you!")
    if question.type == "checklist":
        if press.kind == "t":
            try:
                flag = question.flags[int(press.value or "")]
            except (ValueError, IndexError):
                return stale
            selection = list(checkin.selection or [])
            if flag in selection:
                selection.remove(flag)
            else:
                selection.append(flag)
            checkin.selection = selection
            rendered = render_question(
                protocol,
                question,
                language=lang,
                checkin_id=checkin.id,
                index=checkin.question_index,
                selection=selection,
            )
            if message_id is None:
                outbox.messages.append(rendered)
            else:
                outbox.edits.append((message_id, rendered))
            return None
        flags = frozenset(checkin.selection or []) if press.kind == "d" else frozenset()
        if press.kind == "d" and not flags:
            return t(lang, "Tick the signs you have, or tap “None of these”.")
        parsed = Parsed(
            status="ok", flags=flags, option_id="none" if not flags else None, value=len(flags)
        )
        await _answer(
            session,
            ctx,
            outbox,
            protocol,
            episode,
            checkin,
            question,
            parsed,
            "button",
            None,
            message_id,
            now,
        )
        return None
    if press.kind != "a" or press.value is None:
        return stale
    pressed = _button_value(question, press.value)
    if pressed is None:
        return stale
    parsed = pressed
    await _answer(
        session,
        ctx,
        outbox,
        protocol,
        episode,
        checkin,
        question,
        parsed,
        "button",
        None,
        message_id,
        now,
    )
    return None


def _button_value(question: Question, value: str) -> Parsed | None:
    """Turn button data into a parsed answer (None when it does not fit the question)."""
    if value == "s":
        return Parsed(status="skip") if question.optional else None
    if not value.lstrip("-").isdigit():
        return None
    number = int(value)
    if question.type == "scale":
        return Parsed(status="ok", value=number) if question.min <= number <= question.max else None
    if question.type == "choice":
        if not 0 <= number < len(question.options):
            return None
        option = question.options[number]
        return Parsed(
            status="ok",
            value=option.value,
            option_id=option.id,
            flags=frozenset({option.flag}) if option.flag else frozenset(),
        )
    if question.type == "yes_no" and number in (0, 1):
        flags = frozenset({question.flag}) if (number == 1 and question.flag) else frozenset()
        return Parsed(status="ok", value=number, option_id="yes" if number else "no", flags=flags)
    return None


async def _notify_staff(ctx: ServiceContext, text: str) -> None:
    if ctx.unit.staff_chat_id is None:
        return
    try:
        await ctx.messenger.send(ctx.unit.staff_chat_id, OutgoingMessage(text=text))
    except DeliveryError as exc:
        log.warning("staff_notice_failed", error=type(exc).__name__)


async def handle_media(
    ctx: ServiceContext,
    *,
    chat_id: int,
    kind: str,
    update_id: int | None,
    message_id: int | None,
    file_id: str | None = None,
    caption: str | None = None,
) -> None:
    """Photos, voice notes, videos, stickers, documents, locations: never silently ignored."""
    outbox = Outbox(chat_id)
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        if await _already_processed(session, update_id, now):
            return
        found = await _live_episode(session, chat_id)
        if found is None:
            outbox.say(
                t(
                    "fr",
                    "I do not know this chat yet. Please open the link the unit gave you. / Je ne connais pas encore cette conversation : ouvrez le lien donné par le service.",
                )
            )
        else:
            _patient, episode = found
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            lang = episode.language
            checkin = await _open_checkin(session, episode.id)
            question = None
            if checkin is not None:
                questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
                if checkin.question_index < len(questions):
                    question = questions[checkin.question_index]
            if (
                kind == "photo"
                and question is not None
                and question.type == "photo"
                and checkin is not None
            ):
                await _answer(
                    session,
                    ctx,
                    outbox,
                    protocol,
                    episode,
                    checkin,
                    question,
                    Parsed(status="ok"),
                    "photo",
                    caption,
                    message_id,
                    now,
                )
                answers = [a for a in session.new if isinstance(a, Answer) and a.kind == "photo"]
                for answer in answers:
                    answer.file_id = file_id
            else:
                _save(
                    session,
                    episode,
                    None,
                    None,
                    kind,
                    caption,
                    Parsed(status="ok"),
                    now,
                    message_id,
                    file_id=file_id,
                )
                if kind in ("voice", "video", "video_note", "audio"):
                    day = day_number(episode.procedure_at, now, episode.time_zone)
                    findings = evaluate_unheard_media(
                        protocol, (await _history(session, episode))[0], day=day
                    )
                    touched = await alerts.raise_findings(
                        session, now=now, episode=episode, findings=findings
                    )
                    outbox.alerts.extend(touched)
                    outbox.forward_message_id = message_id
                    outbox.say(
                        t(
                            lang,
                            "I cannot listen to voice or video messages. I have passed it to the team. To be sure nothing is missed, please tap the buttons or type your answer.",
                        )
                    )
                elif kind == "photo":
                    outbox.say(t(lang, "Thank you, the photo has been saved for the team."))
                else:
                    outbox.say(
                        t(
                            lang,
                            "Thank you. I can only read text and buttons: please type your answer or tap a button.",
                        )
                    )
                if caption:
                    await _scan_free_text(session, ctx, outbox, protocol, episode, caption, now)
                await _resume(session, ctx, outbox, protocol, episode)
    await flush(ctx, outbox)


async def mark_blocked(ctx: ServiceContext, *, chat_id: int) -> None:
    """The patient blocked the bot: stop sending and tell staff (silence is clinical data)."""
    from bot.domain.rules import evaluate_blocked

    now = ctx.clock.now()
    outbox = Outbox(chat_id)
    async with ctx.sessions.begin() as session:
        found = await _live_episode(session, chat_id)
        if found is None:
            return
        _patient, episode = found
        if episode.blocked_at is not None:
            return
        episode.blocked_at = now
        protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
        history, _ = await _history(session, episode)
        history = History(
            indication=history.indication,
            baseline=history.baseline,
            observations=history.observations,
            blocked=True,
        )
        findings = evaluate_blocked(protocol, history)
        outbox.alerts.extend(
            await alerts.raise_findings(session, now=now, episode=episode, findings=findings)
        )
        audit.record(session, at=now, actor="system", action="bot_blocked", episode_id=episode.id)
    if outbox.alerts:
        await alerts.deliver_pending(ctx)


def severity_of(findings: list[Finding]) -> Severity | None:
    """The most pressing severity among findings."""
    return most_severe(findings)
