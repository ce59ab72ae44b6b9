"""Alerts: raise findings for staff, deliver them without ever dropping one, acknowledge, resolve,
re-escalate.

An alert row is written in the same transaction as the answer that caused it, with delivery
``pending``; delivery happens after the commit and is retried with backoff until the staff chat
accepts it, so a network failure, a 429 or a missing chat delays an alert but never loses it.
One open alert per episode and rule: a later finding for the same rule is appended to it and the
staff card is edited instead of posting a new one (no alert fatigue).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Alert, Episode, Patient
from bot.db.queries.alerts import (
    alerts_by_ids,
    claim_due_reescalations,
    claim_pending_deliveries,
    release_deliveries,
    unresolved_by_rule,
)
from bot.domain.protocol import LocalizedText, Protocol, Severity
from bot.domain.rules import Finding
from bot.domain.states import AlertDelivery, AlertStatus
from bot.metrics import ALERT_ACK_SECONDS, ALERT_DELIVERY_FAILURES, ALERTS_RAISED
from bot.services import audit, chat_health, claims
from bot.services.cards import rules_of, staff_card
from bot.services.context import ServiceContext
from bot.services.ports import (
    ChatNotFound,
    DeliveryError,
    OutgoingMessage,
    SentRef,
)

log = structlog.get_logger(__name__)

#: Backoff for staff-chat delivery retries: 5 s, 10 s, 20 s ... capped at 5 minutes.
RETRY_BASE = timedelta(seconds=5)
RETRY_CAP = timedelta(minutes=5)
#: How long a claimed delivery is reserved for the process that claimed it (real time).
CLAIM_FOR = timedelta(minutes=2)


async def raise_findings(
    session: AsyncSession,
    *,
    now: datetime,
    episode: Episode,
    findings: list[Finding],
    joining: Alert | None = None,
) -> list[Alert]:
    """Create or extend alerts for ``findings`` (to flush in the caller's transaction).

    A finding whose rule has an open alert extends it. The others open ONE alert together, or
    join ``joining`` (the alert this update opened already): one worrying message gives staff
    one card, however many rules it meets ("9 sur 10, c'est insupportable" is both pain >= 8
    and pain much worse). The card is headed by the most severe rule and lists the others;
    each evidence item names its rule (``rule_id``), and a later finding of a joined rule
    extends the same alert. Returns the alerts whose staff card must be posted or edited after
    the commit.
    """
    touched: list[Alert] = []
    open_alerts = _by_rule(await unresolved_by_rule(session, episode_id=episode.id))
    ordered = sorted(findings, key=lambda f: f.severity.rank)
    for finding in ordered:
        evidence = [{**asdict(item), "rule_id": finding.rule_id} for item in finding.evidence]
        alert = open_alerts.get(finding.rule_id)
        if alert is None and joining is not None:
            alert = joining
            if finding.severity.rank < Severity(alert.severity).rank:
                alert.rule_id = finding.rule_id
                alert.severity = finding.severity.value
            open_alerts[finding.rule_id] = alert
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
            open_alerts[finding.rule_id] = joining = alert
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
        if alert not in touched:
            touched.append(alert)
    return touched


def _by_rule(alerts: dict[str, Alert]) -> dict[str, Alert]:
    """Open alerts by rule, the rules joined into another rule's alert included."""
    by_rule = dict(alerts)
    for alert in alerts.values():
        for rule_id in rules_of(alert):
            by_rule.setdefault(rule_id, alert)
    return by_rule


def safety_advice(
    protocol: Protocol, severity: Severity, *, language: str, ctx: ServiceContext
) -> str:
    """The advice a patient gets at once: numbers to call, never waiting for staff."""
    advice: LocalizedText = getattr(protocol.safety_advice, severity.value)
    return advice.get(language).format(
        unit_phone=ctx.unit.unit_phone, oncall_phone=ctx.unit.oncall_phone
    )


async def _card_parts(
    session: AsyncSession, ctx: ServiceContext, alert: Alert
) -> tuple[Protocol, Episode, Patient]:
    episode = await session.get(Episode, alert.episode_id)
    assert episode is not None
    patient = await session.get(Patient, episode.patient_id)
    assert patient is not None
    protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
    return protocol, episode, patient


@dataclass(frozen=True)
class CardJob:
    """A staff card claimed for delivery: post it, or edit the one ``posted``."""

    alert_id: int
    delivery: str
    posted: SentRef | None
    card: OutgoingMessage


def _card_job(
    ctx: ServiceContext,
    alert: Alert,
    protocol: Protocol,
    episode: Episode,
    patient: Patient,
    *,
    now: datetime,
) -> CardJob:
    card = staff_card(protocol, alert, episode, patient, now=now, language=ctx.unit.staff_language)
    # Where the card was posted: the staff chat, or on-call while the bot had lost it.
    posted = None
    chat_id = alert.staff_chat_id or ctx.unit.staff_chat_id
    if alert.staff_message_id is not None and chat_id is not None:
        posted = SentRef(chat_id, alert.staff_message_id)
    return CardJob(alert.id, alert.delivery, posted, card)


async def claim_cards(
    session: AsyncSession,
    ctx: ServiceContext,
    alerts: list[Alert],
    *,
    protocol: Protocol,
    episode: Episode,
    patient: Patient,
    now: datetime,
) -> list[CardJob]:
    """Claim, in the transaction that raised or changed them, the cards of ``alerts`` that are
    due, and build them: sent right after the commit, with no claim of their own to write.

    On SQLite a claim written after the commit waited for the one write lock behind the
    ordinary replies of a burst (hundreds of milliseconds before the card went). The claim is
    the one :func:`deliver_pending` writes (the next delivery moved :data:`CLAIM_FOR` ahead),
    so a process that dies before posting leaves the card to the next tick after that."""
    due = [
        alert
        for alert in alerts
        if (alert.delivery == AlertDelivery.PENDING or alert.needs_edit)
        and (alert.next_delivery_at is None or alert.next_delivery_at <= now)
    ]
    if ctx.unit.staff_chat_id is None or not due:
        return []
    await session.flush()  # a new alert gets its id (the card's buttons carry it)
    held = claims.hold_until(ctx.clock, CLAIM_FOR)
    jobs = []
    for alert in due:
        alert.next_delivery_at = held
        alert.needs_edit = False
        jobs.append(_card_job(ctx, alert, protocol, episode, patient, now=now))
    return jobs


async def release_cards(ctx: ServiceContext, alert_ids: list[int]) -> None:
    """Give back the claims of cards that were not posted (the handling failed before): due
    now, so the next tick posts them. Best effort: the claim lapses after :data:`CLAIM_FOR`."""
    try:
        async with ctx.sessions.begin() as session:
            await release_deliveries(session, ids=alert_ids, now=ctx.clock.now())
    except Exception as exc:
        log.warning("alert_claim_not_released", error=type(exc).__name__, alerts=len(alert_ids))
    ctx.on_schedule_changed()


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
            session, now=now, limit=limit, hold_until=claims.hold_until(ctx.clock, CLAIM_FOR)
        )
        jobs = []
        for alert in await alerts_by_ids(session, ids=ids):
            protocol, episode, patient = await _card_parts(session, ctx, alert)
            jobs.append(_card_job(ctx, alert, protocol, episode, patient, now=now))
    return await deliver_cards(ctx, jobs)


async def deliver_cards(ctx: ServiceContext, jobs: list[CardJob]) -> int:
    """Post or edit the claimed cards; a failure schedules the card's retry. Returns how many
    were delivered."""
    delivered = 0
    for job in jobs:
        try:
            if job.delivery == AlertDelivery.SENT and job.posted is not None:
                await chat_health.edit(ctx, job.posted, job.card)
                ref = None
            else:
                ref = await chat_health.post(ctx, job.card)
        except DeliveryError as exc:
            ALERT_DELIVERY_FAILURES.labels(reason=type(exc).__name__).inc()
            log.warning(
                "alert_delivery_failed",
                alert_id=job.alert_id,
                error=type(exc).__name__,
                retry_after=exc.retry_after,
            )
            await _schedule_retry(ctx, job.alert_id, exc, edit=job.delivery == AlertDelivery.SENT)
            continue
        delivered += 1
        async with ctx.sessions.begin() as session:
            alert = await session.get(Alert, job.alert_id)
            if alert is None:  # erased meanwhile (the patient's data deleted)
                continue
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
        log.info("alert_delivered", alert_id=job.alert_id)
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
        if isinstance(exc, ChatNotFound | chat_health.NoTeamChat):
            delay = max(delay, timedelta(minutes=1))
        alert.next_delivery_at = ctx.clock.after_real(delay)  # a server's pace: real time
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
        return staff_card(
            protocol,
            alert,
            episode,
            patient,
            now=ctx.clock.now(),
            language=ctx.unit.staff_language,
        )


def schedule_escalation(alert: Alert, *, now: datetime, after: timedelta) -> None:
    """Urgent and emergency alerts re-escalate to on-call when nobody acknowledges them."""
    if (
        alert.severity in (Severity.EMERGENCY.value, Severity.URGENT.value)
        and alert.next_escalation_at is None
    ):
        alert.next_escalation_at = now + after


async def reescalate_due(ctx: ServiceContext) -> int:
    """Send un-acknowledged urgent alerts to the on-call chat (the staff chat while the bot
    has lost it), again every delay."""
    if ctx.unit.oncall_chat_id is None and ctx.unit.staff_chat_id is None:
        return 0
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        ids = await claim_due_reescalations(
            session, now=now, next_at=now + ctx.unit.reescalate_after
        )
        cards = []
        for alert in await alerts_by_ids(session, ids=ids):
            protocol, episode, patient = await _card_parts(session, ctx, alert)
            card = staff_card(
                protocol,
                alert,
                episode,
                patient,
                now=now,
                language=ctx.unit.staff_language,
                escalated=True,
            )
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
            await chat_health.post(ctx, card, prefer="oncall")
            sent += 1
        except DeliveryError as exc:
            ALERT_DELIVERY_FAILURES.labels(reason=type(exc).__name__).inc()
            log.warning("reescalation_failed", alert_id=alert_id, error=type(exc).__name__)
            async with ctx.sessions.begin() as session:
                failed = await session.get(Alert, alert_id)
                if failed is not None and failed.status == AlertStatus.OPEN:
                    failed.next_escalation_at = ctx.clock.after_real(RETRY_BASE * 6)
    return sent
