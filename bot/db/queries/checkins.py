"""Check-in rows: the dispatcher's claims (send, remind, expire), its wake-up time, and the
rows staff changes touch (pause, resume, stop, move the procedure, check in now).

Every claim is one ``UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED]) RETURNING``:
the row changes state in the same statement that picks it, so two ticks or two processes never
take the same row, and on PostgreSQL a process skips the rows another one holds instead of
waiting for its commit.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Row, String, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Answer, CheckIn, Episode, Patient
from bot.db.queries._locking import claimable
from bot.domain.states import DUE_STATES, CheckInStatus


def _status_is(*states: CheckInStatus) -> ColumnElement[bool]:
    """``status = 'x'`` (or ``IN``) with the states written into the SQL, not bound: a partial
    index (migration 0005) serves a query only when its predicate is implied by constants, and
    a PostgreSQL generic plan knows no parameter's value."""
    values = [literal(state.value, String, literal_execute=True) for state in states]
    return CheckIn.status == values[0] if len(values) == 1 else CheckIn.status.in_(values)


def _held_claim() -> ColumnElement[bool]:
    """Rows a process claimed and has not confirmed: claimed, or opened with nothing sent yet.

    Written as the predicate of ``ix_checkins_held_claims``, so the query reads that index only.
    """
    return or_(
        _status_is(CheckInStatus.SENDING),
        _status_is(CheckInStatus.AWAITING)
        & CheckIn.sent_at.is_(None)
        & (CheckIn.question_index == literal(0, literal_execute=True))
        & (CheckIn.reask_count == literal(0, literal_execute=True)),
    )


async def claim_holders(session: AsyncSession) -> list[str]:
    """The processes holding unconfirmed claims: the caller checks which of them are dead."""
    holders = await session.scalars(
        select(CheckIn.claimed_by).where(_held_claim(), CheckIn.claimed_by.is_not(None)).distinct()
    )
    return [holder for holder in holders if holder is not None]


async def release_claims(
    session: AsyncSession, *, claimed_before: datetime, holders: Collection[str]
) -> int:
    """Give unconfirmed claims back to ``scheduled`` when older than ``claimed_before`` or held
    by ``holders`` (dead processes), so a crash delays check-ins but never loses them."""
    conditions = [CheckIn.claimed_at < claimed_before]
    if holders:
        conditions.append(CheckIn.claimed_by.in_(holders))
    result = await session.execute(
        update(CheckIn)
        .where(_held_claim(), or_(*conditions))
        .values(status=CheckInStatus.SCHEDULED, claimed_by=None, retry_at=None)
        .returning(CheckIn.id)
        .execution_options(synchronize_session=False)
    )
    return len(result.all())


async def claim_due_checkins(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    worker: str,
    claimed_at: datetime | None = None,
) -> list[int]:
    """Move up to ``limit`` due check-ins, oldest first, to ``sending`` for ``worker``: one
    atomic claim, with SKIP LOCKED so concurrent processes take disjoint batches.

    ``now`` decides what is due (service clock); ``claimed_at`` dates the claim (real time,
    see bot.services.claims; ``now`` when not given).
    """
    due = (
        select(CheckIn.id)
        .where(
            _status_is(CheckInStatus.SCHEDULED),  # ix_checkins_due
            CheckIn.due_at <= now,
            # Expired rows are claim_expired_checkins': the non-response rules apply to them.
            CheckIn.window_ends_at > now,
            or_(CheckIn.retry_at.is_(None), CheckIn.retry_at <= now),
        )
        .order_by(CheckIn.due_at)
        .limit(limit)
    )
    result = await session.execute(
        update(CheckIn)
        .where(CheckIn.id.in_(claimable(due, session, name="due")))
        .values(
            status=CheckInStatus.SENDING,
            claimed_at=now if claimed_at is None else claimed_at,
            claimed_by=worker,
            attempts=CheckIn.attempts + 1,
        )
        .returning(CheckIn.id)
        .execution_options(synchronize_session=False)
    )
    return [row[0] for row in result]


async def claimed_to_open(
    session: AsyncSession, *, ids: Collection[int]
) -> Sequence[Row[CheckIn, Episode, Patient]]:
    """The claimed rows among ``ids`` that are still ``sending``, latest due first (of two due
    together for one episode, the latest is the one sent), with their episode and patient."""
    result = await session.execute(
        select(CheckIn, Episode, Patient)
        .join(Episode, CheckIn.episode_id == Episode.id)
        .join(Patient, Episode.patient_id == Patient.id)
        .where(CheckIn.id.in_(ids), CheckIn.status == CheckInStatus.SENDING)
        .order_by(CheckIn.due_at.desc())
    )
    return result.all()


async def awaiting_by_episode(
    session: AsyncSession, *, episode_ids: Collection[int]
) -> dict[int, list[CheckIn]]:
    """The open (``awaiting``) check-ins of these episodes, in one query for a whole round:
    each is closed when the next check-in of its episode is sent."""
    found: dict[int, list[CheckIn]] = {}
    for checkin in await session.scalars(
        select(CheckIn).where(
            CheckIn.episode_id.in_(episode_ids), CheckIn.status == CheckInStatus.AWAITING
        )
    ):
        found.setdefault(checkin.episode_id, []).append(checkin)
    return found


async def checkins_by_id(session: AsyncSession, *, ids: Collection[int]) -> dict[int, CheckIn]:
    """Check-ins by id, in one query (recording a round's send results)."""
    return {
        checkin.id: checkin
        for checkin in await session.scalars(select(CheckIn).where(CheckIn.id.in_(ids)))
    }


async def episodes_by_id(session: AsyncSession, *, ids: Collection[int]) -> dict[int, Episode]:
    """Episodes by id, in one query (the reminder times of a round's check-ins need them)."""
    return {
        episode.id: episode
        for episode in await session.scalars(select(Episode).where(Episode.id.in_(ids)))
    }


async def has_answers(session: AsyncSession, *, checkin_id: int) -> bool:
    """Whether the patient answered anything usable: an unanswered check-in closes ``missed``
    (or ``cancelled``), one with answers ``partial``."""
    answered = await session.scalar(
        select(func.count(Answer.id)).where(
            Answer.checkin_id == checkin_id, Answer.status != "unclear"
        )
    )
    return bool(answered)


async def open_checkins(session: AsyncSession, *, episode_id: int) -> list[CheckIn]:
    """The episode's check-ins being sent or awaiting answers: at most one a patient can answer,
    which staff changes must close or respect."""
    return list(
        await session.scalars(
            select(CheckIn).where(
                CheckIn.episode_id == episode_id,
                CheckIn.status.in_((CheckInStatus.AWAITING, CheckInStatus.SENDING)),
            )
        )
    )


async def claim_due_reminders(session: AsyncSession, *, now: datetime, limit: int) -> list[int]:
    """Count a due reminder and clear its time in one conditional UPDATE, so two processes never
    send it twice (SKIP LOCKED on PostgreSQL); the caller sets the next reminder time."""
    due = (
        select(CheckIn.id)
        .where(CheckIn.status == CheckInStatus.AWAITING, CheckIn.next_reminder_at <= now)
        .limit(limit)
    )
    claimed = await session.execute(
        update(CheckIn)
        .where(
            CheckIn.id.in_(claimable(due, session, name="due")),
            CheckIn.status == CheckInStatus.AWAITING,
            CheckIn.next_reminder_at <= now,
        )
        .values(reminders_sent=CheckIn.reminders_sent + 1, next_reminder_at=None)
        .returning(CheckIn.id)
        .execution_options(synchronize_session=False)
    )
    return [row[0] for row in claimed]


async def with_episode_and_patient(
    session: AsyncSession, *, ids: Collection[int]
) -> Sequence[Row[CheckIn, Episode, Patient]]:
    """Check-ins with what a message about them needs: the episode (language, protocol) and the
    patient (chat)."""
    result = await session.execute(
        select(CheckIn, Episode, Patient)
        .join(Episode, CheckIn.episode_id == Episode.id)
        .join(Patient, Episode.patient_id == Patient.id)
        .where(CheckIn.id.in_(ids))
    )
    return result.all()


async def claim_expired_checkins(session: AsyncSession, *, now: datetime, limit: int) -> list[int]:
    """Move up to ``limit`` open or unsent check-ins whose window has passed to ``closing``.

    The conditional UPDATE claims them (another tick or process waits for the commit, then no
    longer matches them); the caller closes them in the same transaction, so the transient
    status never outlives it.
    """
    due = (
        select(CheckIn.id)
        .where(
            _status_is(CheckInStatus.AWAITING, CheckInStatus.SCHEDULED),  # ix_checkins_open_window
            CheckIn.window_ends_at <= now,
        )
        # In index order: without it PostgreSQL expects the LIMIT to fill early and scans the
        # table (bench, 1M rows), while only the expired rows need reading.
        .order_by(CheckIn.window_ends_at)
        .limit(limit)
    )
    claimed = await session.execute(
        update(CheckIn)
        .where(
            CheckIn.id.in_(claimable(due, session, name="due")),
            CheckIn.status.in_((CheckInStatus.AWAITING, CheckInStatus.SCHEDULED)),
        )
        .values(status=CheckInStatus.CLOSING)
        .returning(CheckIn.id)
        .execution_options(synchronize_session=False)
    )
    return [row[0] for row in claimed]


async def with_episode(
    session: AsyncSession, *, ids: Collection[int]
) -> Sequence[Row[CheckIn, Episode]]:
    """Check-ins with their episode, oldest due first (closing them decides by the episode's
    state, and the non-response rules count them in order)."""
    result = await session.execute(
        select(CheckIn, Episode)
        .join(Episode, CheckIn.episode_id == Episode.id)
        .where(CheckIn.id.in_(ids))
        .order_by(CheckIn.due_at)
    )
    return result.all()


async def missed_in_row(session: AsyncSession, *, episode_id: int) -> int:
    """How many of the episode's latest closed check-ins were missed in a row (the input of
    the non-response rule)."""
    statuses = await session.scalars(
        select(CheckIn.status)
        .where(CheckIn.episode_id == episode_id, CheckIn.status.in_(DUE_STATES))
        .order_by(CheckIn.due_at.desc())
    )
    count = 0
    for status in statuses:
        if status != CheckInStatus.MISSED:
            break
        count += 1
    return count


async def next_checkin_event(session: AsyncSession) -> datetime | None:
    """The earliest send, reminder or window end, for the dispatcher's wake-up.

    A row waiting for a retry counts at its ``retry_at``, not its past ``due_at``: otherwise
    the waker would spin until the retry time.
    """
    candidates = [
        await session.scalar(
            select(func.min(func.coalesce(CheckIn.retry_at, CheckIn.due_at))).where(
                CheckIn.status == CheckInStatus.SCHEDULED
            )
        ),
        await session.scalar(
            select(func.min(CheckIn.next_reminder_at)).where(
                CheckIn.status == CheckInStatus.AWAITING
            )
        ),
        await session.scalar(
            select(func.min(CheckIn.window_ends_at)).where(CheckIn.status == CheckInStatus.AWAITING)
        ),
    ]
    present = [moment for moment in candidates if moment is not None]
    return min(present) if present else None


async def oldest_unsent_due(session: AsyncSession, *, now: datetime) -> datetime | None:
    """The due time of the oldest check-in due by ``now`` and not yet sent: the dispatcher's lag.

    A row held for the patient's quiet hours (a later ``retry_at`` and no attempt counted, see
    ``dispatch._open_claimed``) is not lag: it may not be sent yet, and counting it would page
    at night after every downtime. A row waiting to retry a failed send still counts: that is
    the lag a Telegram outage must show. One MIN per status: over an IN list PostgreSQL scans
    the whole table (bench, 1M rows).
    """
    found = [
        await session.scalar(
            select(func.min(CheckIn.due_at)).where(
                CheckIn.status == status,
                CheckIn.due_at <= now,
                or_(CheckIn.retry_at.is_(None), CheckIn.retry_at <= now, CheckIn.attempts > 0),
            )
        )
        for status in (CheckInStatus.SCHEDULED, CheckInStatus.SENDING)
    ]
    return min((moment for moment in found if moment is not None), default=None)


async def scheduled_checkins(
    session: AsyncSession, *, episode_id: int, due_by: datetime | None = None
) -> list[CheckIn]:
    """The episode's check-ins still to send (only those due by ``due_by`` when given): what a
    stop cancels, and what a resume skips because their time passed during the pause."""
    query = select(CheckIn).where(
        CheckIn.episode_id == episode_id, CheckIn.status == CheckInStatus.SCHEDULED
    )
    if due_by is not None:
        query = query.where(CheckIn.due_at <= due_by)
    return list(await session.scalars(query))


async def replannable_checkins(
    session: AsyncSession, *, episode_id: int, after: datetime
) -> list[CheckIn]:
    """The episode's check-ins a new procedure date plans again: still scheduled after
    ``after``, or cancelled only because they fell into quiet hours (they may no longer)."""
    return list(
        await session.scalars(
            select(CheckIn).where(
                CheckIn.episode_id == episode_id,
                CheckIn.due_at > after,
                (CheckIn.status == CheckInStatus.SCHEDULED)
                | (
                    (CheckIn.status == CheckInStatus.CANCELLED)
                    & (CheckIn.status_reason == "quiet_hours")
                ),
            )
        )
    )


async def next_scheduled(session: AsyncSession, *, episode_id: int, limit: int) -> list[CheckIn]:
    """The episode's next ``limit`` scheduled check-ins, soonest first: "check in now" moves the
    first and must not open it past the second."""
    return list(
        await session.scalars(
            select(CheckIn)
            .where(CheckIn.episode_id == episode_id, CheckIn.status == CheckInStatus.SCHEDULED)
            .order_by(CheckIn.due_at)
            .limit(limit)
        )
    )
