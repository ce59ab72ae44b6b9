"""The team chats (staff group, on-call chat) as the bot can reach them: alerts go around a
chat the bot has lost, and people are told why.

A chat is *lost* when Telegram refuses the bot for good: it was removed from the group (403),
it may no longer send there, the group became a supergroup (a new id), or Telegram no longer
knows the chat. Retrying does not help until someone acts, so while it lasts:

* the other chat is told once, naming the setting, the chat id and the fix;
* staff cards (and notices, the digest) go to the on-call chat, re-escalations to the staff
  chat when on-call is lost: nothing waits in a chat nobody can read, nothing is lost;
* ``/healthz`` answers 503 naming it and ``cryo_staff_chat_reachable{chat=...}`` is 0; both
  chats lost is logged as an error (nobody can be told in Telegram);
* a patient is not told "the team has been alerted" when no chat can take the alert.

The state is a database row per chat (:class:`~bot.db.models.ChatHealth`), so every process
routes alike and one of them sends each notice. Each tick asks Telegram about the chats
(getChat and getChatMember: nothing is posted), a lost one every :data:`CHECK_LOST`, a working
one every :data:`CHECK_REACHABLE` so that a removal shows even when no alert is due; the check
that finds a lost chat working again clears it and tells the other chat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import ChatHealth
from bot.db.queries.chat_health import (
    chat_states,
    claim_announcement,
    claim_check,
    ensure_row,
    mark_lost,
    mark_reachable,
)
from bot.domain.wording import team_told
from bot.i18n import t
from bot.metrics import STAFF_CHAT_REACHABLE
from bot.services.context import ServiceContext
from bot.services.ports import ChatLost, ChatNotFound, DeliveryError, OutgoingMessage, SentRef

log = structlog.get_logger(__name__)

Role = Literal["staff", "oncall"]
ROLES: Final[tuple[Role, Role]] = ("staff", "oncall")
SETTING: Final[dict[Role, str]] = {"staff": "STAFF_CHAT_ID", "oncall": "ONCALL_CHAT_ID"}
#: How often a lost chat is asked about, to notice soon that someone fixed it.
CHECK_LOST = timedelta(minutes=1)
#: How often a working chat is asked about, to notice a removal before an alert needs it.
CHECK_REACHABLE = timedelta(minutes=5)


class NoTeamChat(DeliveryError):
    """Neither team chat can take the message now (lost, or not configured)."""


@dataclass(frozen=True)
class TeamChat:
    """A configured team chat and, when the bot cannot post there, why."""

    role: Role
    chat_id: int
    problem: str | None = None
    new_chat_id: int | None = None

    @property
    def reachable(self) -> bool:
        """True unless the bot is known to be refused there."""
        return self.problem is None


def _configured(ctx: ServiceContext) -> dict[Role, int]:
    chats = {"staff": ctx.unit.staff_chat_id, "oncall": ctx.unit.oncall_chat_id}
    return {role: chat_id for role, chat_id in chats.items() if chat_id is not None}  # type: ignore[misc]


def _role_of(ctx: ServiceContext, chat_id: int) -> Role | None:
    return next((r for r, c in _configured(ctx).items() if c == chat_id), None)


async def team_chats(session: AsyncSession, ctx: ServiceContext) -> dict[Role, TeamChat]:
    """The configured chats as last seen (a row about another chat id is out of date)."""
    rows = await chat_states(session)
    chats: dict[Role, TeamChat] = {}
    for role, chat_id in _configured(ctx).items():
        row = rows.get(role)
        if row is not None and row.chat_id == chat_id:
            chats[role] = TeamChat(role, chat_id, row.problem, row.new_chat_id)
        else:
            chats[role] = TeamChat(role, chat_id)
    return chats


async def _load(ctx: ServiceContext) -> dict[Role, TeamChat]:
    async with ctx.sessions() as session:
        return await team_chats(session, ctx)


def _route(chats: dict[Role, TeamChat], prefer: Role) -> list[TeamChat]:
    order: list[Role] = [prefer, *(role for role in ROLES if role != prefer)]
    return [chats[role] for role in order if role in chats and chats[role].reachable]


async def cards_chat(session: AsyncSession, ctx: ServiceContext) -> int | None:
    """Where staff cards go now: the staff chat, or on-call while the bot has lost it (None when
    neither can take them), in the caller's transaction."""
    route = _route(await team_chats(session, ctx), "staff")
    return route[0].chat_id if route else None


async def team_reachable(session: AsyncSession, ctx: ServiceContext) -> bool:
    """True when an alert raised now has a chat to go to (in the caller's transaction)."""
    return bool(_route(await team_chats(session, ctx), "staff"))


async def post(ctx: ServiceContext, message: OutgoingMessage, *, prefer: Role = "staff") -> SentRef:
    """Send to the ``prefer`` chat, or to the other one while it is lost (a refusal found now
    is recorded and the other chat tried at once). Raises :class:`NoTeamChat` when neither can
    take it, or the send's own :class:`DeliveryError` (a temporary failure: retry later)."""
    for chat in _route(await _load(ctx), prefer):
        try:
            return await ctx.messenger.send(chat.chat_id, message)
        except DeliveryError as exc:
            if not await note_failure(ctx, chat_id=chat.chat_id, error=exc):
                raise
    raise NoTeamChat("no_team_chat")


async def forward(ctx: ServiceContext, *, from_chat_id: int, message_id: int) -> None:
    """Forward a patient's message (a voice note) where the staff cards go now."""
    for chat in _route(await _load(ctx), "staff"):
        try:
            await ctx.messenger.forward(chat.chat_id, from_chat_id, message_id)
            return
        except DeliveryError as exc:
            if not await note_failure(ctx, chat_id=chat.chat_id, error=exc):
                raise
    raise NoTeamChat("no_team_chat")


async def edit(ctx: ServiceContext, ref: SentRef, message: OutgoingMessage) -> None:
    """Edit a card where it was posted; in a chat the bot has lost it stays as it is (the
    card went on where people can read it), so the edit is given up, not retried."""
    try:
        await ctx.messenger.edit(ref, message)
    except DeliveryError as exc:
        if not await note_failure(ctx, chat_id=ref.chat_id, error=exc):
            raise
        log.info("card_edit_given_up", reason=exc.reason)


def _problem(error: DeliveryError) -> str | None:
    if isinstance(error, ChatLost):
        return error.reason or "removed"
    if isinstance(error, ChatNotFound):
        return "not_found"
    return None


async def note_failure(ctx: ServiceContext, *, chat_id: int, error: DeliveryError) -> bool:
    """Record a refusal for good of a team chat; True when ``error`` was one (go around the
    chat), False for any other failure or chat (the caller retries as before)."""
    role, problem = _role_of(ctx, chat_id), _problem(error)
    if role is None or problem is None:
        return False
    new_chat_id = error.new_chat_id if isinstance(error, ChatLost) else None
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        await ensure_row(session, role=role, chat_id=chat_id, now=now)
        changed = await mark_lost(
            session, role=role, chat_id=chat_id, problem=problem, new_chat_id=new_chat_id, now=now
        )
        chats = await team_chats(session, ctx)
    STAFF_CHAT_REACHABLE.labels(chat=role).set(0)
    if changed:
        if _route(chats, "staff"):
            log.warning("team_chat_lost", setting=SETTING[role], chat_id=chat_id, problem=problem)
        else:
            log.error(
                "team_chats_all_lost",
                setting=SETTING[role],
                chat_id=chat_id,
                problem=problem,
                detail="no chat can take alerts: patients are told to call the unit",
            )
    await send_notices(ctx)
    return True


async def _note_reachable(ctx: ServiceContext, role: Role, chat_id: int) -> None:
    async with ctx.sessions.begin() as session:
        changed = await mark_reachable(session, role=role, chat_id=chat_id, now=ctx.clock.now())
    STAFF_CHAT_REACHABLE.labels(chat=role).set(1)
    if changed:
        log.info("team_chat_reachable_again", setting=SETTING[role], chat_id=chat_id)


async def check(ctx: ServiceContext) -> None:
    """The periodic check (each tick): ask Telegram about each chat that is due, then send the
    notices still owed. A temporary failure of the check changes nothing."""
    configured = _configured(ctx)
    if not configured:
        return
    now = ctx.clock.now()
    async with ctx.sessions() as session:
        seen = await chat_states(session)
    if not any(
        _needs_work(seen.get(role), chat_id, ctx.clock) for role, chat_id in configured.items()
    ):
        return  # the usual tick: one read, no write
    due: list[tuple[Role, int]] = []
    async with ctx.sessions.begin() as session:
        for role, chat_id in configured.items():
            await ensure_row(session, role=role, chat_id=chat_id, now=now)
        rows = await chat_states(session)
        for role, chat_id in configured.items():
            row = rows[role]
            every = CHECK_LOST if row.problem else CHECK_REACHABLE
            if row.checked_at is not None and not _checked_long_ago(
                row.checked_at, every, ctx.clock
            ):
                continue
            if await claim_check(
                session, role=role, chat_id=chat_id, last_checked=row.checked_at, now=now
            ):
                due.append((role, chat_id))
    for role, chat_id in due:
        try:
            await ctx.messenger.check_chat(chat_id)
        except DeliveryError as exc:
            if not await note_failure(ctx, chat_id=chat_id, error=exc):
                log.info("team_chat_check_failed", setting=SETTING[role], error=type(exc).__name__)
            continue
        await _note_reachable(ctx, role, chat_id)
    await send_notices(ctx)


def _checked_long_ago(checked_at: datetime, every: timedelta, clock: Clock) -> bool:
    """``every`` of real time has passed since ``checked_at`` (a service-clock time): Telegram
    is asked at its own pace, also on a rehearsal clock (CLOCK_SPEED)."""
    return checked_at <= clock.after_real(-every)


def _needs_work(row: ChatHealth | None, chat_id: int, clock: Clock) -> bool:
    """A row to create or reset, a check due, or a notice owed."""
    if row is None or row.chat_id != chat_id or row.checked_at is None:
        return True
    every = CHECK_LOST if row.problem else CHECK_REACHABLE
    return _checked_long_ago(row.checked_at, every, clock) or row.announced != row.problem


async def send_notices(ctx: ServiceContext) -> None:
    """Tell the other chat about each change not told yet (lost, or working again): one
    process sends each notice; a failed send gives it back for the next tick."""
    now = ctx.clock.now()
    async with ctx.sessions() as session:
        rows = await chat_states(session)
        chats = await team_chats(session, ctx)
    for role, chat in chats.items():
        row = rows.get(role)
        if row is None or row.chat_id != chat.chat_id or row.announced == row.problem:
            continue
        others = [other for other in _route(chats, "staff") if other.role != role]
        if not others:
            continue  # nobody to tell: logged as an error, and /healthz says it
        target = others[0]
        async with ctx.sessions.begin() as session:
            claimed = await claim_announcement(
                session, role=role, chat_id=chat.chat_id, was=row.announced, now_told=row.problem
            )
        if not claimed:
            continue
        try:
            await ctx.messenger.send(
                target.chat_id, OutgoingMessage(text=notice(row, language=ctx.unit.staff_language))
            )
        except DeliveryError as exc:
            log.warning("team_chat_notice_failed", error=type(exc).__name__)
            async with ctx.sessions.begin() as session:
                await claim_announcement(
                    session,
                    role=role,
                    chat_id=chat.chat_id,
                    was=row.problem,
                    now_told=row.announced,
                )
            continue
        log.info("team_chat_notice_sent", setting=SETTING[role], at=now.isoformat())


def _chat_name(role: str, language: str) -> str:
    if role == "staff":
        return t(language, "the staff group")
    return t(language, "the on-call chat")


def notice(row: ChatHealth, *, language: str) -> str:
    """What the other chat is told: the chat lost, why and the fix, or that it works again."""
    lang = language
    values = {
        "chat": _chat_name(row.role, lang),
        "setting": SETTING["staff" if row.role == "staff" else "oncall"],
        "chat_id": row.chat_id,
        "new_chat_id": row.new_chat_id,
    }
    if row.problem is None:
        return t(
            lang,
            "✅ The bot can post in {chat} ({setting}={chat_id}) again: alerts go there again.",
            **values,
        )
    if row.problem == "migrated":
        why = t(
            lang,
            "⚠️ The bot can no longer post in {chat} ({setting}={chat_id}): the group became a supergroup with id {new_chat_id}. Set {setting}={new_chat_id} and restart the bot.",
            **values,
        )
    elif row.problem == "restricted":
        why = t(
            lang,
            "⚠️ The bot can no longer post in {chat} ({setting}={chat_id}): it is no longer allowed to send messages there. Lift its restriction in the group's settings, or make it an administrator.",
            **values,
        )
    elif row.problem == "not_found":
        why = t(
            lang,
            "⚠️ The bot can no longer post in {chat} ({setting}={chat_id}): Telegram no longer knows this chat for the bot. Add the bot to the group, then set {setting} to the group's id.",
            **values,
        )
    else:
        why = t(
            lang,
            "⚠️ The bot can no longer post in {chat} ({setting}={chat_id}): it was removed from the group. Add the bot back to the group, or set {setting} to the group it is in.",
            **values,
        )
    if row.role == "staff":
        return why + "\n" + t(lang, "Until then, the staff's alerts come here.")
    return why + "\n" + t(lang, "Until then, unacknowledged alerts are re-escalated here.")


_HEALTH: Final[dict[str, str]] = {
    "removed": "the bot was removed from the group {setting}={chat_id}: add it back, or set "
    "{setting} to the group it is in",
    "restricted": "the bot may no longer send in {setting}={chat_id}: lift its restriction",
    "migrated": "the group {setting}={chat_id} became a supergroup with id {new_chat_id}: set "
    "{setting}={new_chat_id} and restart",
    "not_found": "Telegram does not know {setting}={chat_id} for the bot: add the bot to the "
    "group and set {setting} to its id",
}


async def health(ctx: ServiceContext) -> dict[str, str]:
    """For ``/healthz``: ``staff_chat`` / ``oncall_chat`` → "ok" or what is wrong and the fix
    (also sets the reachability gauge, so a scrape shows what every process recorded)."""
    async with ctx.sessions() as session:
        chats = await team_chats(session, ctx)
    checks: dict[str, str] = {}
    for role, chat in chats.items():
        STAFF_CHAT_REACHABLE.labels(chat=role).set(1 if chat.reachable else 0)
        if chat.problem is None:
            checks[f"{role}_chat"] = "ok"
            continue
        template = _HEALTH.get(chat.problem, _HEALTH["removed"])
        checks[f"{role}_chat"] = "lost: " + template.format(
            setting=SETTING[role], chat_id=chat.chat_id, new_chat_id=chat.new_chat_id
        )
    if chats and not _route(chats, "staff"):
        checks["alerts"] = "no team chat can take alerts"
    return checks


def honest_advice(advice: str, *, language: str, team_reachable: bool, unit_phone: str) -> str:
    """The safety advice as sent: unchanged when the alert reaches a team chat; otherwise
    without the sentence saying the team was alerted (:data:`~bot.domain.wording.TEAM_TOLD`, which
    every advice keeps: checked at load), and asking the patient to call."""
    if team_reachable:
        return advice
    text = advice
    for sentence in team_told(language):
        text = text.replace(sentence, "")
    text = re.sub(r"\s{2,}", " ", text).strip()
    return (
        text
        + " "
        + t(
            language,
            "We could not alert the care team automatically: please call the unit yourself on {unit_phone}.",
            unit_phone=unit_phone,
        )
    )
