"""The morning digest for staff: review alerts still open, urgent ones nobody took yet,
yesterday's response rate — posted once per working day at DIGEST_TIME (unit time zone), unless there is nothing at
all to report (no open alert, no check-in due the day before): an empty digest is noise.

Review findings wait for the next working day by design (docs/clinical.md), so the digest is where a
nurse starts her day. Inserting the day's ``digests`` row claims it: with several processes, one
posts. Working days are Monday to Friday; public holidays are not known to the bot.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.exc import IntegrityError

from bot.db.models import Digest
from bot.db.queries.views import checkin_counts_by_status, dead_letter_count, unresolved_alerts
from bot.domain.protocol import Severity
from bot.domain.schedule import day_number
from bot.domain.states import AlertStatus, CheckInStatus
from bot.i18n import format_local, t
from bot.services import chat_health, claims
from bot.services.cards import alert_explanation, day_label
from bot.services.context import ServiceContext
from bot.services.ports import DeliveryError, OutgoingMessage

log = structlog.get_logger(__name__)

#: A process that claimed today's digest has this long (real time) to post it before another
#: process may.
CLAIM_FOR = timedelta(minutes=5)


def _digest_time(ctx: ServiceContext) -> time:
    hours, minutes = ctx.unit.digest_time.split(":")
    return time(int(hours), int(minutes))


def next_digest_at(ctx: ServiceContext, after: datetime) -> datetime:
    """The next working-day digest moment strictly after ``after`` (UTC)."""
    zone = ZoneInfo(ctx.unit.time_zone)
    local = after.astimezone(zone)
    day = local.date()
    for _ in range(8):
        moment = datetime.combine(day, _digest_time(ctx), tzinfo=zone)
        if day.weekday() < 5 and moment > local:
            return moment.astimezone(ZoneInfo("UTC"))
        day += timedelta(days=1)
    raise AssertionError("a working day exists within a week")


def _due_today(ctx: ServiceContext, now: datetime) -> date | None:
    zone = ZoneInfo(ctx.unit.time_zone)
    local = now.astimezone(zone)
    if local.weekday() >= 5 or local.time() < _digest_time(ctx):
        return None
    return local.date()


async def compose(ctx: ServiceContext, now: datetime) -> OutgoingMessage | None:
    """The digest text in the staff language; None when there is nothing to say.

    It counts the alerts still waiting for someone (open: neither acknowledged nor resolved);
    an acknowledged alert has a nurse on it and is followed from its card and ``/alerts``.
    """
    lang = ctx.unit.staff_language
    zone = ZoneInfo(ctx.unit.time_zone)
    async with ctx.sessions() as session:
        rows = await unresolved_alerts(session)
        today = now.astimezone(zone).date()
        start = datetime.combine(today - timedelta(days=1), time(0), tzinfo=zone)
        end = datetime.combine(today, time(0), tzinfo=zone)
        counts = await checkin_counts_by_status(session, due_from=start, due_before=end)
        set_aside = await dead_letter_count(session)
        reviews: list[str] = []
        urgent = 0
        for alert, episode, patient in rows:
            if alert.status != AlertStatus.OPEN:
                continue  # acknowledged: someone has it in hand, it is not waiting any more
            if alert.severity == Severity.REVIEW.value:
                protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
                why = alert_explanation(protocol, alert, lang)
                day = day_number(episode.procedure_at, now, episode.time_zone)
                reviews.append(f"{patient.label} {day_label(lang, day)} {why}")
            else:
                urgent += 1
    due = sum(counts.values())
    if not reviews and not urgent and not due and not set_aside:
        return None
    answered = counts.get(CheckInStatus.ANSWERED, 0) + counts.get(CheckInStatus.PARTIAL, 0)
    title = t(
        lang,
        "Cryoneurolysis follow-up — {date}",
        date=format_local(now, lang, ctx.unit.time_zone, "day"),
    )
    lines = [title]
    if reviews:
        lines.append(
            t(lang, "To review ({count}):", count=len(reviews)) + " " + " · ".join(reviews)
        )
    else:
        lines.append(t(lang, "To review: none"))
    urgent_text = str(urgent) if urgent else t(lang, "none")
    lines.append(
        t(lang, "Open urgent alerts: {urgent}", urgent=urgent_text)
        + " · "
        + t(lang, "Response rate yesterday: {answered}/{due}", answered=answered, due=due)
    )
    if set_aside:
        lines.append(
            t(
                lang,
                "Messages set aside (unreadable, kept in the database): {count}",
                count=set_aside,
            )
        )
    return OutgoingMessage(text="\n".join(lines))


async def send_if_due(ctx: ServiceContext) -> bool:
    """Post today's digest if it is time and no process has claimed it yet."""
    now = ctx.clock.now()
    today = _due_today(ctx, now)
    if today is None or ctx.unit.staff_chat_id is None:
        return False
    async with ctx.sessions() as session:
        existing = await session.get(Digest, today)
        if existing is not None and (
            existing.sent_at is not None
            or existing.claimed_at > claims.stale_before(ctx.clock, CLAIM_FOR)
        ):
            return False
    claimed_at = claims.claim_time(ctx.clock)
    try:
        async with ctx.sessions.begin() as session:
            if existing is None:
                session.add(Digest(day=today, claimed_at=claimed_at, claimed_by=ctx.process_id))
            else:
                row = await session.get(Digest, today, with_for_update=True)
                if row is None or row.sent_at is not None:
                    return False
                row.claimed_at, row.claimed_by = claimed_at, ctx.process_id
    except IntegrityError:
        return False
    message = await compose(ctx, now)
    message_id: int | None = None
    if message is not None:
        try:
            message_id = (await chat_health.post(ctx, message)).message_id
        except DeliveryError as exc:
            log.warning("digest_failed", error=type(exc).__name__)
            return False
    async with ctx.sessions.begin() as session:
        row = await session.get(Digest, today)
        assert row is not None
        row.sent_at, row.message_id = ctx.clock.now(), message_id
    log.info("digest_done", day=today.isoformat(), posted=message is not None)
    return message is not None


async def next_due(ctx: ServiceContext) -> datetime:
    """When the dispatcher should wake for the digest."""
    now = ctx.clock.now()
    today = _due_today(ctx, now)
    if today is not None:
        async with ctx.sessions() as session:
            row = await session.get(Digest, today)
        if row is None or row.sent_at is None:
            if row is None:
                return now
            # The claim's end is real time: when it is, on the service clock.
            return ctx.clock.after_real(row.claimed_at + CLAIM_FOR - ctx.clock.wall_now())
    return next_digest_at(ctx, now)
