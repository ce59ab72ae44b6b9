"""What staff look at between two tasks: the follow-ups in progress, one patient's course, the
open alerts, and a message from the unit to a patient.

Views are short on purpose (a phone, a busy nurse): the most urgent patient first, one line
each, the day since the procedure and the last pain on that line. Texts are rendered here (in
the staff language) so the Telegram adapter only sends them, and tests read the same words.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Answer, Episode, Patient, UnitMessage
from bot.db.queries import alerts as alert_queries
from bot.db.queries import views
from bot.db.queries.patients import latest_episode, patient_by_label
from bot.domain.protocol import Indication, Protocol, Question, Severity
from bot.domain.schedule import day_number
from bot.domain.scores import koos_jr_interval
from bot.domain.states import AlertStatus, CheckInStatus, EpisodeStatus
from bot.errors import NotFoundError
from bot.i18n import format_local, t, tn
from bot.services import audit
from bot.services.cards import alert_explanation, day_label, knee_label, labelled, quoted
from bot.services.charts import SWELLING_QUESTION, Point, pain_question_ids
from bot.services.context import ServiceContext
from bot.services.outcome_views import painkiller_line, relief_line
from bot.services.painkiller_questions import describe_use
from bot.services.ports import DeliveryError, OutgoingMessage, RecipientBlocked

log = structlog.get_logger(__name__)

SEVERITY_MARK = {"emergency": "🔴", "urgent": "🔴", "review": "🟠"}
#: Telegram refuses longer messages (4096); keep room for the header.
MAX_TEXT = 3800
#: A free-text answer is cut to this many characters in a view (the export has it whole).
QUOTE_CHARS = 80


@dataclass(frozen=True)
class PatientRow:
    """One follow-up in the list, with what decides how urgent it is."""

    label: str
    episode_id: int
    status: EpisodeStatus
    day: int
    last_pain: int | None
    last_checkin_day: int | None
    last_checkin_status: CheckInStatus | None
    open_alerts: int
    worst_severity: str | None

    @property
    def urgency(self) -> tuple[int, int, int, int, str]:
        """Sort key: worst open alert, then silence, then the highest pain, then the label."""
        severity_rank = Severity(self.worst_severity).rank if self.worst_severity else 3
        silent = 0 if self.last_checkin_status == CheckInStatus.MISSED else 1
        return (severity_rank, -self.open_alerts, silent, -(self.last_pain or -1), self.label)


@dataclass(frozen=True)
class AlertRow:
    """An open alert as listed by ``/alerts``."""

    alert_id: int
    label: str
    severity: str
    explanation: str
    day: int
    created_at: datetime
    acknowledged_by: str | None
    time_zone: str


@dataclass
class PatientCourse:
    """One patient's follow-up: the timeline text and what the chart needs."""

    label: str
    episode_id: int
    protocol: Protocol
    indication: Indication
    baseline: int | None
    day: int
    text: str
    pain: list[Point] = field(default_factory=list)
    swelling: list[Point] = field(default_factory=list)


_day = day_label


def _checkin_state(language: str, status: CheckInStatus | None) -> str:
    states = {
        CheckInStatus.ANSWERED: t(language, "answered"),
        CheckInStatus.PARTIAL: t(language, "partly answered"),
        CheckInStatus.MISSED: t(language, "no answer"),
        CheckInStatus.AWAITING: t(language, "in progress"),
        CheckInStatus.SENDING: t(language, "in progress"),
    }
    return "" if status is None else states.get(status, str(status))


def _episode_state(language: str, status: EpisodeStatus) -> str:
    states = {
        EpisodeStatus.INVITED: t(language, "link not opened yet"),
        EpisodeStatus.CONSENT: t(language, "consent pending"),
        EpisodeStatus.ACTIVE: t(language, "follow-up running"),
        EpisodeStatus.PAUSED: t(language, "paused"),
        EpisodeStatus.STOPPED: t(language, "stopped"),
        EpisodeStatus.COMPLETED: t(language, "completed"),
        EpisodeStatus.REFUSED: t(language, "declined"),
    }
    return states[status]


async def _pain_ids(ctx: ServiceContext, session: AsyncSession, rows: set[int]) -> set[str]:
    ids: set[str] = set()
    for row in rows:
        ids.update(pain_question_ids(await ctx.protocols.protocol_of(session, row)))
    return ids


async def active_patients(ctx: ServiceContext) -> list[PatientRow]:
    """Follow-ups in progress (invited to paused), most urgent first."""
    now = ctx.clock.now()
    async with ctx.sessions() as session:
        episodes = await views.live_follow_ups(session)
        if not episodes:
            return []
        ids = [episode.id for episode, _ in episodes]
        pain_ids = await _pain_ids(ctx, session, {e.protocol_version_id for e, _ in episodes})
        pains = await views.last_pain_by_episode(session, episode_ids=ids, question_ids=pain_ids)
        last_checkins = await views.last_past_checkin_by_episode(session, episode_ids=ids)
        open_by_episode = await views.unresolved_severities_by_episode(session, episode_ids=ids)
    rows = []
    for episode, label in episodes:
        last = last_checkins.get(episode.id)
        severities = open_by_episode.get(episode.id, [])
        rows.append(
            PatientRow(
                label=label,
                episode_id=episode.id,
                status=episode.status,
                day=day_number(episode.procedure_at, now, episode.time_zone),
                last_pain=pains.get(episode.id),
                last_checkin_day=(
                    day_number(episode.procedure_at, last.due_at, episode.time_zone)
                    if last
                    else None
                ),
                last_checkin_status=last.status if last else None,
                open_alerts=len(severities),
                worst_severity=(
                    min(severities, key=lambda s: Severity(s).rank) if severities else None
                ),
            )
        )
    return sorted(rows, key=lambda row: row.urgency)


def render_patient_list(rows: list[PatientRow], language: str) -> str:
    """``/patients``: one line per follow-up, most urgent first."""
    if not rows:
        return t(language, "No follow-up in progress.")
    lines = [t(language, "Follow-ups in progress ({count})", count=len(rows))]
    for row in rows:
        mark = SEVERITY_MARK.get(row.worst_severity or "", "•")
        parts = [f"{mark} {row.label}", _day(language, row.day)]
        if row.status != EpisodeStatus.ACTIVE:
            parts.append(_episode_state(language, row.status))
        if row.last_pain is not None:
            parts.append(t(language, "pain {value}/10", value=row.last_pain))
        if row.last_checkin_status is not None:
            parts.append(
                labelled(
                    language,
                    _day(language, row.last_checkin_day or 0),
                    _checkin_state(language, row.last_checkin_status),
                )
            )
        if row.open_alerts:
            parts.append(tn(language, "{count} open alert", "{count} open alerts", row.open_alerts))
        lines.append(" · ".join(parts))
    return _fit(lines, keep="head")


async def open_alerts(ctx: ServiceContext, *, language: str) -> list[AlertRow]:
    """Alerts not yet resolved, most severe first, oldest first within a severity."""
    now = ctx.clock.now()
    rows: list[AlertRow] = []
    async with ctx.sessions() as session:
        for alert, episode, patient in await views.unresolved_alerts(session):
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            rows.append(
                AlertRow(
                    alert_id=alert.id,
                    label=patient.label,
                    severity=alert.severity,
                    explanation=alert_explanation(protocol, alert, language),
                    day=day_number(episode.procedure_at, now, episode.time_zone),
                    created_at=alert.created_at,
                    acknowledged_by=alert.acknowledged_by,
                    time_zone=episode.time_zone,
                )
            )
    return sorted(rows, key=lambda row: Severity(row.severity).rank)


def render_alert_list(rows: list[AlertRow], language: str) -> str:
    """``/alerts``: who, how bad, why, since when, and whether someone took it."""
    if not rows:
        return t(language, "No open alert.")
    lines = [t(language, "Open alerts ({count})", count=len(rows))]
    for row in rows:
        since = format_local(row.created_at, language, row.time_zone, "short")
        line = " · ".join(
            [
                f"{SEVERITY_MARK.get(row.severity, '•')} {row.label}",
                _day(language, row.day),
                row.explanation,
                t(language, "since {time}", time=since),
            ]
        )
        if row.acknowledged_by:
            line += " · " + t(language, "taken by {who}", who=row.acknowledged_by)
        lines.append(line)
    return _fit(lines, keep="head")


async def first_delivery(ctx: ServiceContext, update_id: int) -> bool:
    """Record a staff command's update id; False when Telegram delivered it before (a webhook
    retry must not send a ``/msg`` twice)."""
    from bot.services.conversation import already_processed

    async with ctx.sessions.begin() as session:
        return not await already_processed(session, update_id, ctx.clock.now())


async def alert_status(ctx: ServiceContext, alert_id: int) -> AlertStatus | None:
    """An alert's status (open, acknowledged, resolved), or None when it does not exist."""
    async with ctx.sessions() as session:
        return await alert_queries.alert_status(session, alert_id=alert_id)


async def record_view(
    ctx: ServiceContext, *, staff_id: int, what: str, episode_id: int | None
) -> None:
    """Audit that a staff member read patient data (who looked at what, and when)."""
    async with ctx.sessions.begin() as session:
        audit.record(
            session,
            at=ctx.clock.now(),
            actor=f"staff:{staff_id}",
            action="staff_view",
            episode_id=episode_id,
            view=what,
        )


async def find_episode(
    session: AsyncSession, label: str, *, language: str
) -> tuple[Patient, Episode]:
    """The patient with this label and their latest episode; NotFoundError otherwise."""
    patient = await patient_by_label(session, label=label)
    if patient is None or patient.erased_at is not None:
        raise NotFoundError(
            t(
                language,
                "No patient with the label {label}: check the label (the unit's own id, e.g. P-001).",
                label=label,
            )
        )
    episode = await latest_episode(session, patient_id=patient.id)
    if episode is None:
        raise NotFoundError(
            t(language, "{label} has no follow-up: enrol the patient first.", label=label)
        )
    return patient, episode


async def patient_course(ctx: ServiceContext, *, label: str, language: str) -> PatientCourse:
    """``/patient <label>``: the timeline of check-ins, notes, alerts and unit messages."""
    now = ctx.clock.now()
    async with ctx.sessions() as session:
        patient, episode = await find_episode(session, label, language=language)
        protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
        checkins = await views.past_checkins(session, episode_id=episode.id)
        answers = await views.answers_of_episode(session, episode_id=episode.id)
        alerts = await views.alerts_of_episode(session, episode_id=episode.id)
        messages = await views.unit_messages_of_episode(session, episode_id=episode.id)
    zone = episode.time_zone
    pain_ids = set(pain_question_ids(protocol))
    by_checkin: dict[int, list[Answer]] = defaultdict(list)
    events: list[tuple[datetime, str]] = []
    course = PatientCourse(
        label=patient.label,
        episode_id=episode.id,
        protocol=protocol,
        indication=Indication(episode.indication),
        baseline=episode.baseline_pain,
        day=day_number(episode.procedure_at, now, zone),
        text="",
    )
    for answer in answers:
        if answer.status == "ok" and answer.value is not None:
            if answer.question_id in pain_ids:
                course.pain.append(Point(answer.day, answer.value))
            elif answer.question_id == SWELLING_QUESTION:
                course.swelling.append(Point(answer.day, answer.value))
        if answer.kind == "photo":
            # A photo gets its own line (the check-in line only says what was answered).
            events.append((answer.created_at, _photo_line(answer, language, zone)))
        elif answer.checkin_id is not None:
            by_checkin[answer.checkin_id].append(answer)
        elif answer.question_id is None:
            what = (
                quoted(language, _quote(answer.raw_text))
                if answer.raw_text
                else _media_name(language, answer.kind)
            )
            events.append(
                (
                    answer.created_at,
                    f"📝 {_when(answer.created_at, language, zone)} — "
                    + t(language, "message: {what}", what=what),
                )
            )
    for checkin in checkins:
        day = day_number(episode.procedure_at, checkin.due_at, zone)
        summary = _summarise(protocol, by_checkin.get(checkin.id, []), pain_ids, language)
        line = (
            f"{_day(language, day)} ({format_local(checkin.due_at, language, zone, 'short')}) "
            f"— {_checkin_state(language, checkin.status)}"
        )
        events.append((checkin.due_at, labelled(language, line, summary) if summary else line))
    for alert in alerts:
        explanation = alert_explanation(protocol, alert, language)
        line = (
            f"{SEVERITY_MARK.get(alert.severity, '•')} "
            f"{_when(alert.created_at, language, zone)} — {explanation}"
        )
        if alert.status == AlertStatus.RESOLVED:
            line += " · " + t(language, "resolved by {who}", who=alert.resolved_by or "?")
        elif alert.acknowledged_by:
            line += " · " + t(language, "taken by {who}", who=alert.acknowledged_by)
        else:
            line += " · " + t(language, "open")
        events.append((alert.created_at, line))
    for message in messages:
        events.append(
            (
                message.created_at,
                f"✉️ {_when(message.created_at, language, zone)} — "
                + t(language, "unit message: « {text} »", text=_quote(message.text)),
            )
        )
    header = [
        f"{patient.label} · {knee_label(language, episode.side)} "
        f"({t(language, episode.indication)}) · {_day(language, course.day)} · "
        f"{_episode_state(language, episode.status)}",
        t(
            language,
            "Procedure: {when}",
            when=format_local(episode.procedure_at, language, zone, "short"),
        ),
    ]
    if episode.baseline_pain is not None:
        header.append(t(language, "Baseline pain: {value}/10", value=episode.baseline_pain))
    header += [
        line
        for line in (
            painkiller_line(protocol, answers, language),
            relief_line(
                protocol, baseline=episode.baseline_pain, answers=answers, language=language
            ),
        )
        if line
    ]
    body = [text for _, text in sorted(events, key=lambda item: item[0])]
    if not body:
        body = [t(language, "No answer yet.")]
    course.text = _fit([*header, "", *body], keep="tail", fixed=len(header) + 1)
    return course


def _summarise(protocol: Protocol, answers: list[Answer], pain_ids: set[str], language: str) -> str:
    """One check-in's answers in a few words: pain first, red flags named, KOOS JR scored."""
    parts: list[str] = []
    koos: dict[str, int] = {}
    for answer in answers:
        if answer.status != "ok" or answer.question_id is None:
            continue
        try:
            question = protocol.question(answer.question_id)
        except KeyError:
            continue
        if question.score == "koos_jr" and answer.value is not None:
            koos[question.id] = answer.value
            continue
        text = _describe(protocol, question, answer, pain_ids, language)
        if text:
            parts.append(text)
    items = [q.id for q in protocol.questions if q.score == "koos_jr"]
    if items and all(item in koos for item in items):
        score = koos_jr_interval([koos[item] for item in items])
        if score is not None:
            parts.append(f"KOOS JR {score:.1f}")
    return " · ".join(parts)


def _describe(
    protocol: Protocol, question: Question, answer: Answer, pain_ids: set[str], language: str
) -> str:
    if question.type == "scale" and answer.value is not None:
        if question.id in pain_ids:
            return t(language, "pain {value}/10", value=answer.value)
        return f"{question.name(language)} {answer.value}/{question.max}"
    if question.type == "choice":
        option = next((o for o in question.options if o.id == answer.option_id), None)
        # Value 0 is "none" / "normal" (no bruise, walks normally): left out to keep the line
        # short, except for swelling, whose course staff follow day by day.
        if option is None or (option.value == 0 and question.id != SWELLING_QUESTION):
            return ""
        warning = "⚠️ " if option.flag else ""
        return warning + labelled(language, question.name(language), option.label.get(language))
    if question.type == "yes_no":
        if answer.value and question.flag:
            return "⚠️ " + protocol.red_flags[question.flag].label.get(language)
        return ""
    if question.type == "checklist":
        if not answer.flags:
            return t(language, "no warning sign")
        labels = [
            protocol.red_flags[flag].label.get(language)
            for flag in answer.flags
            if flag in protocol.red_flags
        ]
        return "⚠️ " + ", ".join(labels)
    if question.type == "text" and answer.raw_text:
        return quoted(language, _quote(answer.raw_text))
    if question.type == "photo":
        return t(language, "a photo")
    if question.type == "painkillers":
        use = describe_use(answer.choices or (), answer.value if answer.choices else None, language)
        return f"💊 {use}"
    return ""


def _photo_line(answer: Answer, language: str, zone: str) -> str:
    """'📷 02/12 10:05 · J+1 — une photo « mon genou »': when, which day, and its caption."""
    line = f"📷 {_when(answer.created_at, language, zone)} · {_day(language, answer.day)} — "
    line += t(language, "a photo")
    return line + (" " + quoted(language, _quote(answer.raw_text)) if answer.raw_text else "")


def _media_name(language: str, kind: str) -> str:
    names = {
        "photo": t(language, "a photo"),
        "voice": t(language, "a voice note"),
        "audio": t(language, "a voice note"),
        "video": t(language, "a video"),
        "video_note": t(language, "a video"),
    }
    return names.get(kind, t(language, "an attachment"))


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTE_CHARS else flat[: QUOTE_CHARS - 1] + "…"


def _when(moment: datetime, language: str, zone: str) -> str:
    return format_local(moment, language, zone, "short")


def _fit(lines: list[str], *, keep: str, fixed: int = 1) -> str:
    """Join lines under Telegram's limit, dropping the oldest (tail) or the last (head) ones."""
    text = "\n".join(lines)
    if len(text) <= MAX_TEXT:
        return text
    head, rest = lines[:fixed], lines[fixed:]
    while rest and len("\n".join([*head, "…", *rest])) > MAX_TEXT:
        rest = rest[1:] if keep == "tail" else rest[:-1]
    return "\n".join([*head, "…", *rest] if keep == "tail" else [*head, *rest, "…"])


async def send_unit_message(ctx: ServiceContext, *, label: str, text: str, staff_id: int) -> str:
    """``/msg``: a message from the unit to the patient, recorded and audited.

    Returns ``sent``, ``not_linked`` (the patient never opened the link), ``blocked`` or
    ``failed``; the message row is written whatever happens, so the record shows the attempt.
    """
    now = ctx.clock.now()
    async with ctx.sessions() as session:
        patient, episode = await find_episode(session, label, language=ctx.unit.staff_language)
        chat_id, language, episode_id = patient.chat_id, episode.language, episode.id
    status, message_id = "not_linked", None
    if chat_id is not None:
        outgoing = OutgoingMessage(
            text=t(
                language,
                "Message from the care team ({unit}):",
                unit=ctx.unit.unit_name_in(language),
            )
            + "\n"
            + text
        )
        try:
            message_id = (await ctx.messenger.send(chat_id, outgoing)).message_id
            status = "sent"
        except RecipientBlocked:
            status = "blocked"
        except DeliveryError as exc:
            status = "failed"
            log.warning("unit_message_failed", episode_id=episode_id, error=type(exc).__name__)
    async with ctx.sessions.begin() as session:
        session.add(
            UnitMessage(
                episode_id=episode_id,
                sent_by=f"staff:{staff_id}",
                text=text,
                status=status,
                created_at=now,
                telegram_message_id=message_id,
            )
        )
        audit.record(
            session,
            at=now,
            actor=f"staff:{staff_id}",
            action="unit_message",
            episode_id=episode_id,
            status=status,
        )
    if status == "blocked" and chat_id is not None:
        from bot.services.conversation import mark_blocked

        await mark_blocked(ctx, chat_id=chat_id)
    log.info("unit_message", episode_id=episode_id, status=status)
    return status
