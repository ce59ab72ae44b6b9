"""Alerts: raise findings for staff, deliver them without ever dropping one, acknowledge, resolve,
re-escalate.

An alert row is written in the same transaction as the answer that caused it, with delivery
``pending``; delivery happens after the commit and is retried with backoff until the staff chat
accepts it, so a network failure, a 429 or a missing chat delays an alert but never loses it.
One open alert per episode and rule: a later finding for the same rule is appended to it and the
staff card is edited instead of posting a new one (no alert fatigue).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Alert, Episode, Patient
from bot.db.queries.alerts import (
    alerts_by_ids,
    claim_due_reescalations,
    claim_pending_deliveries,
    unresolved_by_rule,
)
from bot.domain.protocol import LocalizedText, MissedInRowRule, Protocol, Rule, Severity
from bot.domain.rules import Finding
from bot.domain.schedule import day_number
from bot.domain.states import AlertDelivery, AlertStatus
from bot.i18n import format_local, t, tn
from bot.metrics import ALERT_ACK_SECONDS, ALERT_DELIVERY_FAILURES, ALERTS_RAISED
from bot.services import audit
from bot.services.context import STAFF_LANGUAGE, ServiceContext
from bot.services.outcome_cards import describe_outcome_evidence
from bot.services.ports import (
    Button,
    ChatNotFound,
    DeliveryError,
    OutgoingMessage,
    SentRef,
)

log = structlog.get_logger(__name__)

SEVERITY_MARK = {"emergency": "🔴", "urgent": "🔴", "review": "🟠"}
#: Backoff for staff-chat delivery retries: 5 s, 10 s, 20 s ... capped at 5 minutes.
RETRY_BASE = timedelta(seconds=5)
RETRY_CAP = timedelta(minutes=5)
#: How long a claimed delivery is reserved for the process that claimed it.
CLAIM_FOR = timedelta(minutes=2)


async def raise_findings(
    session: AsyncSession,
    *,
    now: datetime,
    episode: Episode,
    findings: list[Finding],
) -> list[Alert]:
    """Create or extend alerts for ``findings`` (to flush in the caller's transaction).

    Returns the alerts whose staff card must be posted or edited after the commit.
    """
    touched: list[Alert] = []
    open_alerts = await unresolved_by_rule(session, episode_id=episode.id)
    for finding in findings:
        evidence = [asdict(item) for item in finding.evidence]
        alert = open_alerts.get(finding.rule_id)
        if alert is None:
            alert = Alert(
                episode_id=episode.id,
                rule_id=finding.rule_id,
                severity=finding.severity.value,
                status=AlertStatus.OPEN,
                open_key=1,
                evidence=evidence,
                created_at=now,
                updated_at=now,
                delivery=AlertDelivery.PENDING,
                delivery_attempts=0,
                next_delivery_at=now,
                escalation_count=0,
                needs_edit=False,
            )
            session.add(alert)
            ALERTS_RAISED.labels(severity=finding.severity.value).inc()
            audit.record(
                session,
                at=now,
                actor="system",
                action="alert_raised",
                episode_id=episode.id,
                rule=finding.rule_id,
                severity=finding.severity.value,
            )
        else:
            alert.evidence = [*alert.evidence, *evidence]
            alert.updated_at = now
            if alert.delivery == AlertDelivery.SENT:
                alert.needs_edit = True
            audit.record(
                session,
                at=now,
                actor="system",
                action="alert_extended",
                episode_id=episode.id,
                alert_id=alert.id,
                rule=finding.rule_id,
            )
        touched.append(alert)
    return touched


def safety_advice(
    protocol: Protocol, severity: Severity, *, language: str, ctx: ServiceContext
) -> str:
    """The advice a patient gets at once: numbers to call, never waiting for staff."""
    advice: LocalizedText = getattr(protocol.safety_advice, severity.value)
    return advice.get(language).format(
        unit_phone=ctx.unit.unit_phone, oncall_phone=ctx.unit.oncall_phone
    )


def _describe_evidence(
    protocol: Protocol, rule: Rule | None, item: dict[str, Any], language: str
) -> str:
    """One line of what triggered an alert: the answer and what it was compared with."""
    parts: list[str] = []
    flag = item.get("flag")
    question_id = item.get("question_id")
    value = item.get("value")
    day = item.get("day")
    if isinstance(rule, MissedInRowRule) and value is not None:
        return tn(
            language,
            "{count} check-in in a row unanswered",
            "{count} check-ins in a row unanswered",
            int(value),
        )
    outcome = describe_outcome_evidence(rule, item, language)
    if outcome is not None:
        return outcome
    if flag and flag in protocol.red_flags:
        parts.append(protocol.red_flags[flag].label.get(language))
    if question_id and value is not None and not flag:
        question = next((q for q in protocol.questions if q.id == question_id), None)
        if question is not None and question.type == "scale":
            parts.append(f"{question_id} {value}/{question.max}")
        elif question is not None and question.type == "choice":
            option = next((o for o in question.options if o.value == value), None)
            parts.append(f"{question_id}: {option.label.get(language) if option else value}")
        else:
            parts.append(f"{question_id}: {value}")
    reference = item.get("reference")
    if reference is not None:
        source = item.get("reference_source") or "baseline"
        parts.append(
            t(language, "reference {value} ({source})", value=reference, source=t(language, source))
        )
    if parts and day is not None:
        parts.append(f"J+{day}" if language == "fr" else f"D+{day}")
    return " · ".join(parts)


def staff_card(
    protocol: Protocol,
    alert: Alert,
    episode: Episode,
    patient: Patient,
    *,
    now: datetime,
    escalated: bool = False,
) -> OutgoingMessage:
    """The alert as staff see it: who, how bad and why in the first two lines."""
    lang = STAFF_LANGUAGE
    severity = Severity(alert.severity)
    rule = next((r for r in protocol.rules if r.id == alert.rule_id), None)
    explanation = rule.explanation.get(lang) if rule else alert.rule_id
    day = day_number(episode.procedure_at, now, episode.time_zone)
    side = t(lang, episode.side)
    indication = t(lang, episode.indication)
    header = (
        f"{SEVERITY_MARK[severity.value]} {t(lang, severity.value).upper()} — {patient.label} · "
        f"J+{day} · {t(lang, 'knee')} {side} ({indication})"
    )
    lines = [header, explanation]
    seen: set[str] = set()
    for item in alert.evidence[-6:]:
        text = _describe_evidence(protocol, rule, item, lang)
        if text and text not in seen:
            seen.add(text)
            lines.append("• " + text)
    if episode.baseline_pain is not None:
        lines.append(t(lang, "Baseline pain: {value}/10", value=episode.baseline_pain))
    if severity in (Severity.EMERGENCY, Severity.URGENT):
        lines.append(
            t(
                lang,
                "Safety advice sent to the patient at {time}",
                time=format_local(alert.created_at, lang, episode.time_zone, "time"),
            )
        )
    if escalated:
        minutes = int((now - alert.created_at).total_seconds() // 60)
        lines.insert(0, t(lang, "⏰ not acknowledged for {minutes} min", minutes=minutes))
    if alert.acknowledged_by:
        assert alert.acknowledged_at is not None
        lines.append(
            t(
                lang,
                "✅ Acknowledged by {who} at {time}",
                who=alert.acknowledged_by,
                time=format_local(alert.acknowledged_at, lang, episode.time_zone, "time"),
            )
        )
    if alert.resolved_by:
        assert alert.resolved_at is not None
        lines.append(
            t(
                lang,
                "✅ Resolved by {who} at {time}",
                who=alert.resolved_by,
                time=format_local(alert.resolved_at, lang, episode.time_zone, "time"),
            )
        )
        if alert.resolution_note:
            lines.append(t(lang, "Note: {note}", note=alert.resolution_note))
    buttons: tuple[tuple[Button, ...], ...] = ()
    if alert.status == AlertStatus.OPEN:
        buttons = (
            (
                Button(t(lang, "Acknowledge"), f"k:{alert.id}"),
                Button(t(lang, "Resolve…"), f"r:{alert.id}"),
            ),
        )
    elif alert.status == AlertStatus.ACKNOWLEDGED:
        buttons = ((Button(t(lang, "Resolve…"), f"r:{alert.id}"),),)
    return OutgoingMessage(text="\n".join(lines), buttons=buttons)


async def _card_parts(
    session: AsyncSession, ctx: ServiceContext, alert: Alert
) -> tuple[Protocol, Episode, Patient]:
    episode = await session.get(Episode, alert.episode_id)
    assert episode is not None
    patient = await session.get(Patient, episode.patient_id)
    assert patient is not None
    protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
    return protocol, episode, patient


async def deliver_pending(ctx: ServiceContext, *, limit: int = 50) -> int:
    """Post or edit staff cards that are due; returns how many were delivered.

    Each alert is claimed by moving ``next_delivery_at`` forward before the network call, so two
    processes never post the same card; on success the row records the message id.
    """
    if ctx.unit.staff_chat_id is None:
        return 0
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        ids = await claim_pending_deliveries(
            session, now=now, limit=limit, hold_until=now + CLAIM_FOR
        )
        jobs = []
        for alert in await alerts_by_ids(session, ids=ids):
            protocol, episode, patient = await _card_parts(session, ctx, alert)
            card = staff_card(protocol, alert, episode, patient, now=now)
            jobs.append((alert.id, alert.delivery, alert.staff_message_id, card))
    delivered = 0
    for alert_id, delivery, message_id, card in jobs:
        try:
            if delivery == AlertDelivery.SENT and message_id is not None:
                await ctx.messenger.edit(SentRef(ctx.unit.staff_chat_id, message_id), card)
                ref = None
            else:
                ref = await ctx.messenger.send(ctx.unit.staff_chat_id, card)
        except DeliveryError as exc:
            ALERT_DELIVERY_FAILURES.labels(reason=type(exc).__name__).inc()
            log.warning(
                "alert_delivery_failed",
                alert_id=alert_id,
                error=type(exc).__name__,
                retry_after=exc.retry_after,
            )
            await _schedule_retry(ctx, alert_id, exc, edit=delivery == AlertDelivery.SENT)
            continue
        delivered += 1
        async with ctx.sessions.begin() as session:
            delivered_alert = await session.get(Alert, alert_id)
            assert delivered_alert is not None
            alert = delivered_alert
            if ref is not None:
                alert.delivery = AlertDelivery.SENT
                alert.staff_chat_id = ref.chat_id
                alert.staff_message_id = ref.message_id
                audit.record(
                    session,
                    at=ctx.clock.now(),
                    actor="system",
                    action="alert_delivered",
                    episode_id=alert.episode_id,
                    alert_id=alert.id,
                    attempts=alert.delivery_attempts + 1,
                )
            alert.delivery_attempts += 1
            alert.next_delivery_at = None
        log.info("alert_delivered", alert_id=alert_id)
    return delivered


async def _schedule_retry(
    ctx: ServiceContext, alert_id: int, exc: DeliveryError, *, edit: bool
) -> None:
    async with ctx.sessions.begin() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        alert.delivery_attempts += 1
        delay = min(RETRY_CAP, RETRY_BASE * (2 ** min(alert.delivery_attempts - 1, 10)))
        if exc.retry_after is not None:
            delay = max(delay, timedelta(seconds=exc.retry_after))
        if isinstance(exc, ChatNotFound):
            delay = max(delay, timedelta(minutes=1))
        alert.next_delivery_at = ctx.clock.now() + delay
        if edit:
            alert.needs_edit = True
    ctx.on_schedule_changed()


async def acknowledge(
    ctx: ServiceContext, *, alert_id: int, staff_name: str, staff_id: int
) -> Alert | None:
    """Staff take an alert: re-escalation stops. Returns None when already handled."""
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        alert = await session.get(Alert, alert_id)
        if alert is None or alert.status != AlertStatus.OPEN:
            return None
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_by = staff_name
        alert.acknowledged_at = now
        alert.next_escalation_at = None
        alert.updated_at = now
        if alert.delivery == AlertDelivery.SENT:
            alert.needs_edit = True
            alert.next_delivery_at = now
        ALERT_ACK_SECONDS.observe((now - alert.created_at).total_seconds())
        audit.record(
            session,
            at=now,
            actor=f"staff:{staff_id}",
            action="alert_acknowledged",
            episode_id=alert.episode_id,
            alert_id=alert.id,
        )
        return alert


async def resolve(
    ctx: ServiceContext, *, alert_id: int, staff_name: str, staff_id: int, note: str | None = None
) -> Alert | None:
    """Close an alert (with an optional note); a later finding opens a new one."""
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        alert = await session.get(Alert, alert_id)
        if alert is None or alert.status == AlertStatus.RESOLVED:
            return None
        if alert.acknowledged_at is None:
            alert.acknowledged_by, alert.acknowledged_at = staff_name, now
            ALERT_ACK_SECONDS.observe((now - alert.created_at).total_seconds())
        alert.status = AlertStatus.RESOLVED
        alert.open_key = None
        alert.resolved_by = staff_name
        alert.resolved_at = now
        alert.resolution_note = note
        alert.next_escalation_at = None
        alert.updated_at = now
        if alert.delivery == AlertDelivery.SENT:
            alert.needs_edit = True
            alert.next_delivery_at = now
        audit.record(
            session,
            at=now,
            actor=f"staff:{staff_id}",
            action="alert_resolved",
            episode_id=alert.episode_id,
            alert_id=alert.id,
            with_note=note is not None,
        )
        return alert


async def card_for(ctx: ServiceContext, alert_id: int) -> OutgoingMessage | None:
    """The current staff card of an alert (to edit the message right after a button press)."""
    async with ctx.sessions() as session:
        alert = await session.get(Alert, alert_id)
        if alert is None:
            return None
        protocol, episode, patient = await _card_parts(session, ctx, alert)
        return staff_card(protocol, alert, episode, patient, now=ctx.clock.now())


def schedule_escalation(alert: Alert, *, now: datetime, after: timedelta) -> None:
    """Urgent and emergency alerts re-escalate to on-call when nobody acknowledges them."""
    if (
        alert.severity in (Severity.EMERGENCY.value, Severity.URGENT.value)
        and alert.next_escalation_at is None
    ):
        alert.next_escalation_at = now + after


async def reescalate_due(ctx: ServiceContext) -> int:
    """Send un-acknowledged urgent alerts to the on-call chat, again every delay."""
    target = ctx.unit.oncall_chat_id or ctx.unit.staff_chat_id
    if target is None:
        return 0
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        ids = await claim_due_reescalations(
            session, now=now, next_at=now + ctx.unit.reescalate_after
        )
        cards = []
        for alert in await alerts_by_ids(session, ids=ids):
            protocol, episode, patient = await _card_parts(session, ctx, alert)
            card = staff_card(protocol, alert, episode, patient, now=now, escalated=True)
            cards.append((alert.id, card))
            audit.record(
                session,
                at=now,
                actor="system",
                action="alert_reescalated",
                episode_id=alert.episode_id,
                alert_id=alert.id,
                count=alert.escalation_count,
            )
    sent = 0
    for alert_id, card in cards:
        try:
            await ctx.messenger.send(target, card)
            sent += 1
        except DeliveryError as exc:
            ALERT_DELIVERY_FAILURES.labels(reason=type(exc).__name__).inc()
            log.warning("reescalation_failed", alert_id=alert_id, error=type(exc).__name__)
            async with ctx.sessions.begin() as session:
                failed = await session.get(Alert, alert_id)
                if failed is not None and failed.status == AlertStatus.OPEN:
                    failed.next_escalation_at = ctx.clock.now() + RETRY_BASE * 6
    return sent
