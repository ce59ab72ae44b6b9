"""The patient conversation, with its position kept in the database (never in memory).

An incoming update is: find the patient by chat → skip it if its update id was already handled →
find what we are waiting for (consent, baseline, a clarification, the open check-in question) →
parse → save the answer with its raw text → evaluate the rules → reply. Replies and alerts are
sent after the transaction commits, so a crash never leaves an answer half-saved, and a failure
to send never loses an answer.

Every update gets an answer: a not-understood reply is asked again once with a hint and the
buttons, media the bot cannot read are saved and the patient is asked to tap or type, a message
from someone not enrolled is told how to enrol. An *edited* message is never ignored either: it
is saved as a correction (``kind="correction"``) of the answer it edited, read for red flags that
were not in the original, and evaluated like a new answer; the original row is kept, so the
record shows both what was first said and what was meant.

Episode statuses seen here: ``consent`` (linked, waiting for consent), ``active``, ``paused``,
``refused`` (nothing is stored for them), ``stopped`` (``/stop``) and ``completed``. A patient of a
stopped or completed follow-up who writes is still read: the message is saved as a note and a red
flag still alerts the staff, because a patient who writes wants to be read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    Alert,
    Answer,
    CheckIn,
    EnrolmentToken,
    Episode,
    Patient,
    ProcessedUpdate,
)
from bot.domain.parsing import (
    SKIP,
    Parsed,
    parse_question,
    parse_scale,
    parse_yes_no,
    scan_red_flags,
)
from bot.domain.protocol import Indication, Protocol, Question
from bot.domain.rules import (
    Finding,
    History,
    Observation,
    evaluate_answers,
    evaluate_blocked,
    evaluate_unheard_media,
    most_severe,
)
from bot.domain.schedule import day_number
from bot.domain.scores import KOOS_JR_ITEMS, koos_jr_interval
from bot.domain.states import (
    BASELINE,
    CONSENT,
    FOLLOW_UP_OVER,
    LIVE_STATUSES,
    Awaiting,
    AwaitingKind,
    CheckInStatus,
    EpisodeStatus,
)
from bot.errors import EnrolmentError
from bot.i18n import available_languages, format_local, normalise_language, t
from bot.metrics import ANSWERS_SAVED
from bot.protocols import DEFAULT_PROTOCOL_ID
from bot.services import alerts, audit
from bot.services.context import ServiceContext
from bot.services.enrolment import hash_token, link_chat, plan_episode
from bot.services.ports import (
    Button,
    DeliveryError,
    OutgoingMessage,
    RecipientBlocked,
    SentRef,
    TemporaryFailure,
)
from bot.services.questions import ButtonPress, answer_label, decode, render_question, scale_rows

log = structlog.get_logger(__name__)

#: Media nobody can parse: a human must listen (rule ``unheard_media``).
UNHEARD_KINDS = frozenset({"voice", "video", "video_note", "audio"})
#: The Answer row holding a check-in's KOOS JR interval score.
KOOS_SCORE_ID = "koos_jr_score"


@dataclass
class PhotoCopy:
    """A photo to download after the commit, into MEDIA_DIR (the answer row gets its path)."""

    answer: Answer
    file_id: str
    file_size: int | None


@dataclass
class Outbox:
    """What to send once the transaction has committed."""

    chat_id: int
    messages: list[OutgoingMessage] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    #: Messages to edit in place (checklist ticks), as (message id, new content).
    edits: list[tuple[int, OutgoingMessage]] = field(default_factory=list)
    forward_message_id: int | None = None
    photos: list[PhotoCopy] = field(default_factory=list)
    staff_notices: list[str] = field(default_factory=list)

    def say(self, text: str, buttons: tuple[tuple[Button, ...], ...] = ()) -> None:
        """Queue a message to the patient."""
        self.messages.append(OutgoingMessage(text=text, buttons=buttons))

    @property
    def silent(self) -> bool:
        """True when nothing would reach the patient (the caller must then say something)."""
        return not self.messages and not self.edits


@dataclass
class Reply:
    """What a handler tells the Telegram adapter: a short toast for a button press, if any."""

    toast: str | None = None


# ------------------------------------------------------------------------------ lookups


async def already_processed(session: AsyncSession, update_id: int | None, now: datetime) -> bool:
    """Record the update id; True when Telegram delivered it before (idempotency)."""
    if update_id is None:
        return False
    if await session.get(ProcessedUpdate, update_id) is not None:
        return True
    session.add(ProcessedUpdate(update_id=update_id, processed_at=now))
    await session.flush()
    return False


async def patient_episode(session: AsyncSession, chat_id: int) -> tuple[Patient, Episode] | None:
    """The chat's patient and their latest episode, whatever its status (None: unknown/erased)."""
    patient = await session.scalar(select(Patient).where(Patient.chat_id == chat_id))
    if patient is None or patient.erased_at is not None:
        return None
    episode = await session.scalar(
        select(Episode).where(Episode.patient_id == patient.id).order_by(Episode.id.desc())
    )
    if episode is None:
        return None
    return patient, episode


async def _live_episode(session: AsyncSession, chat_id: int) -> tuple[Patient, Episode] | None:
    found = await patient_episode(session, chat_id)
    if found is None or found[1].status not in LIVE_STATUSES:
        return None
    return found


async def open_checkin(session: AsyncSession, episode_id: int) -> CheckIn | None:
    """The check-in the patient is answering now, if any (at most one is open)."""
    return await session.scalar(
        select(CheckIn).where(
            CheckIn.episode_id == episode_id, CheckIn.status == CheckInStatus.AWAITING
        )
    )


def interface_languages(protocol: Protocol) -> list[str]:
    """Languages a patient may choose: a catalog exists AND the protocol has its wording.

    Nothing here lists languages: adding one is a catalog plus the protocol's entries.
    """
    catalogs = set(available_languages())
    return [language for language in protocol.languages if language in catalogs]


def default_protocol(ctx: ServiceContext) -> Protocol:
    """The protocol used to talk to someone not enrolled yet (its languages, its wording)."""
    registry = ctx.protocols.registry
    try:
        return registry.latest(DEFAULT_PROTOCOL_ID)
    except KeyError:
        return registry.latest(registry.ids()[0])


def guess_language(ctx: ServiceContext, language_code: str | None) -> str:
    """Telegram's ``language_code`` mapped onto a language we can speak."""
    return normalise_language(language_code, interface_languages(default_protocol(ctx)))


def unknown_chat_text(ctx: ServiceContext, language_code: str | None) -> str:
    """What someone who is not enrolled is told, in their Telegram language."""
    return t(
        guess_language(ctx, language_code),
        "Hello! To start your follow-up, please open the link or scan the QR code the unit gave you.",
    )


def current_protocol(ctx: ServiceContext, protocol: Protocol) -> Protocol:
    """The newest loaded version of an episode's protocol: its consent text is the one in force."""
    try:
        return ctx.protocols.registry.latest(protocol.id)
    except KeyError:
        return protocol


def consent_outdated(ctx: ServiceContext, protocol: Protocol, episode: Episode) -> bool:
    """True when the consent in force is newer than the one the patient accepted."""
    required = current_protocol(ctx, protocol).consent.version
    return episode.consent_version is None or episode.consent_version < required


# ------------------------------------------------------------------------------ sending


async def notify_staff(ctx: ServiceContext, text: str) -> None:
    """A short notice in the staff chat (refusal, /stop, /delete): best effort, logged."""
    if ctx.unit.staff_chat_id is None:
        return
    try:
        await ctx.messenger.send(ctx.unit.staff_chat_id, OutgoingMessage(text=text))
    except DeliveryError as exc:
        log.warning("staff_notice_failed", error=type(exc).__name__)


async def apologise(ctx: ServiceContext, *, chat_id: int, language: str) -> None:
    """After an unexpected error: the patient is told, never left without an answer."""
    outbox = Outbox(chat_id)
    outbox.say(
        t(
            language,
            "Sorry, something went wrong on my side. Please try again in a moment. If you are worried, call the unit on {phone}.",
            phone=ctx.unit.unit_phone,
        )
    )
    await flush(ctx, outbox)


async def flush(ctx: ServiceContext, outbox: Outbox) -> None:
    """Send queued patient messages, then alerts and notices to staff (never the other way
    round: safety advice first)."""
    for message_id, message in outbox.edits:
        try:
            await ctx.messenger.edit(SentRef(outbox.chat_id, message_id), message)
        except DeliveryError as exc:
            log.warning("patient_edit_failed", error=type(exc).__name__)
    for message in outbox.messages:
        try:
            await _send_with_retries(ctx, outbox.chat_id, message)
        except RecipientBlocked:
            await mark_blocked(ctx, chat_id=outbox.chat_id)
            break
        except DeliveryError as exc:
            # Keep going: the next message may be the safety advice. Staff alerts are stored
            # and retried on their own, so a patient message lost here never hides a finding.
            log.warning("patient_message_failed", error=type(exc).__name__)
    if outbox.alerts:
        await alerts.deliver_pending(ctx)
    # The card first, then the voice note it asks staff to listen to.
    if outbox.forward_message_id is not None and ctx.unit.staff_chat_id is not None:
        try:
            await ctx.messenger.forward(
                ctx.unit.staff_chat_id, outbox.chat_id, outbox.forward_message_id
            )
        except DeliveryError as exc:
            log.warning("forward_failed", error=type(exc).__name__)
    for notice in outbox.staff_notices:
        await notify_staff(ctx, notice)


#: Waits before retrying a patient message that hit a temporary failure (429, 5xx, network).
PATIENT_RETRY_DELAYS = (1.0, 2.0, 5.0)
#: A 429 asking to wait longer than this is not waited for in the handler.
PATIENT_RETRY_MAX_WAIT = 30.0


async def _send_with_retries(ctx: ServiceContext, chat_id: int, message: OutgoingMessage) -> None:
    """Send a reply, retrying temporary failures a few times (honouring Telegram's retry_after)."""
    for delay in (*PATIENT_RETRY_DELAYS, None):
        try:
            await ctx.messenger.send(chat_id, message)
            return
        except TemporaryFailure as exc:
            wait = max(delay or 0.0, exc.retry_after or 0.0)
            if delay is None or wait > PATIENT_RETRY_MAX_WAIT:
                raise
            await asyncio.sleep(wait)


async def _store_photos(ctx: ServiceContext, outbox: Outbox) -> None:
    """Keep a local copy of each photo (within MEDIA_MAX_BYTES); the file id is always kept."""
    for item in outbox.photos:
        answer_id, episode_id = item.answer.id, item.answer.episode_id
        limit = ctx.unit.media_max_bytes
        if item.file_size is not None and item.file_size > limit:
            log.info("photo_not_copied", answer_id=answer_id, reason="too_big")
            continue
        try:
            data = await ctx.messenger.download(item.file_id)
        except DeliveryError as exc:
            log.warning("photo_download_failed", answer_id=answer_id, error=type(exc).__name__)
            continue
        if len(data) > limit:
            log.info("photo_not_copied", answer_id=answer_id, reason="too_big")
            continue
        path = (
            Path(ctx.unit.media_dir) / f"episode-{episode_id}" / f"answer-{answer_id}.{_ext(data)}"
        )
        await asyncio.to_thread(_write_file, path, data)
        async with ctx.sessions.begin() as session:
            row = await session.get(Answer, answer_id)
            if row is not None:
                row.file_path = str(path)


def _ext(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    return "jpg"


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".part")
    temporary.write_bytes(data)
    temporary.replace(path)


async def _finish(ctx: ServiceContext, outbox: Outbox, language: str) -> None:
    """Commit is done: copy photos, make sure the patient hears back, send everything."""
    await _store_photos(ctx, outbox)
    if outbox.silent:
        outbox.say(t(language, "Thank you, noted."))
    await flush(ctx, outbox)


# ------------------------------------------------------------------------------ /start


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
    language = guess_language(ctx, language_code)
    link = False
    async with ctx.sessions.begin() as session:
        if await already_processed(session, update_id, now):
            return
        found = await patient_episode(session, chat_id)
        if found is not None:
            language = found[1].language
        if token and found is not None and found[1].status in LIVE_STATUSES:
            own = await session.scalar(
                select(EnrolmentToken.id).where(
                    EnrolmentToken.token_hash == hash_token(token),
                    EnrolmentToken.episode_id == found[1].id,
                )
            )
            if own is not None and found[1].status != EpisodeStatus.INVITED:
                token = None  # the patient opened their own link again
        if token:
            link = True
        elif found is None or found[1].status == EpisodeStatus.INVITED:
            outbox.say(unknown_chat_text(ctx, language_code))
        else:
            await _greet_known(session, ctx, outbox, found[1])
    if link:
        assert token is not None
        await _link(ctx, outbox, token=token, chat_id=chat_id, language=language)
    await flush(ctx, outbox)


async def _greet_known(
    session: AsyncSession, ctx: ServiceContext, outbox: Outbox, episode: Episode
) -> None:
    """``/start`` from an enrolled patient: say where they are, ask what we wait for."""
    lang = episode.language
    protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
    if episode.status == EpisodeStatus.REFUSED:
        outbox.say(_refused_text(ctx, lang))
    elif episode.status == EpisodeStatus.STOPPED:
        outbox.say(
            t(
                lang,
                "Your follow-up is stopped. If you want to start it again, please ask the unit for a new link.",
            )
        )
    elif episode.status == EpisodeStatus.COMPLETED:
        outbox.say(
            t(
                lang,
                "Your follow-up is complete. Thank you! If you are worried, call the unit on {phone}.",
                phone=ctx.unit.unit_phone,
            )
        )
    elif episode.awaiting == CONSENT:
        outbox.messages.append(_consent_for(ctx, protocol, episode))
    else:
        outbox.say(t(lang, "You are already enrolled. Type /help to see what I can do."))
        await resume(session, ctx, outbox, protocol, episode)


async def _link(
    ctx: ServiceContext, outbox: Outbox, *, token: str, chat_id: int, language: str
) -> None:
    try:
        episode = await link_chat(ctx, token=token, chat_id=chat_id)
    except EnrolmentError as exc:
        messages = {
            "unknown": t(
                language, "This link is not valid. Please check it, or ask the unit for a new one."
            ),
            "used": t(
                language,
                "This link has already been used. If you did not use it, please call the unit.",
            ),
            "expired": t(language, "This link has expired. Please ask the unit for a new one."),
            "linked": t(
                language,
                "This Telegram account is already linked to a follow-up. Please call the unit if this is not right.",
            ),
        }
        outbox.say(messages.get(exc.reason, messages["unknown"]))
        return
    async with ctx.sessions() as session:
        protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
    outbox.messages.append(consent_message(ctx, current_protocol(ctx, protocol), episode.language))


def consent_message(
    ctx: ServiceContext, protocol: Protocol, language: str, *, renewal: bool = False
) -> OutgoingMessage:
    """Welcome naming the unit, what will be asked and when, and the consent buttons.

    ``protocol`` is the newest version: its consent text (and version) is the one in force.
    """
    if renewal:
        opening = t(
            language,
            "The information about your follow-up has changed. Please read it and tell me if you agree, so that we can go on.",
        )
    elif protocol.schedule_summary is not None:
        opening = t(
            language,
            "Hello, I am the follow-up assistant of the {unit} unit. After your knee cryoneurolysis I will ask you a few short questions (1 to 2 minutes): {schedule}.",
            unit=ctx.unit.unit_name,
            schedule=protocol.schedule_summary.get(language),
        )
    else:
        opening = t(
            language,
            "Hello, I am the follow-up assistant of the {unit} unit. After your knee cryoneurolysis I "
            "will ask you a few short questions (1 to 2 minutes): this evening, then on days 1, 2, 3, 7 "
            "and 14, then at 6 weeks, 3 and 6 months.",
            unit=ctx.unit.unit_name,
        )
    text = f"{opening}\n\n{protocol.consent.text.get(language)}"
    return OutgoingMessage(
        text=text,
        buttons=(
            (Button(t(language, "I agree"), "c:y"), Button(t(language, "I refuse"), "c:n")),
            (Button(t(language, "More information"), "c:i"),),
        ),
    )


def _consent_for(ctx: ServiceContext, protocol: Protocol, episode: Episode) -> OutgoingMessage:
    """The consent question for this patient: a renewal once the follow-up is running."""
    return consent_message(
        ctx,
        current_protocol(ctx, protocol),
        episode.language,
        renewal=episode.status in (EpisodeStatus.ACTIVE, EpisodeStatus.PAUSED),
    )


def _refused_text(ctx: ServiceContext, language: str) -> str:
    return t(
        language,
        "You declined the follow-up, so I do not keep your messages. If you are worried, call the unit on {phone}. If you have changed your mind, ask the unit for a new link.",
        phone=ctx.unit.unit_phone,
    )


# ------------------------------------------------------------------------------ typed text


Route = Callable[[AsyncSession, Outbox, Protocol, Episode, datetime], Awaitable[None]]


async def _handle_update(
    ctx: ServiceContext,
    *,
    chat_id: int,
    update_id: int | None,
    language_code: str | None,
    route: Route,
) -> None:
    """The envelope of every patient message: skip a redelivered update, find the patient,
    route in one transaction, then send what was queued (after the commit)."""
    outbox = Outbox(chat_id)
    now = ctx.clock.now()
    language = guess_language(ctx, language_code)
    async with ctx.sessions.begin() as session:
        if await already_processed(session, update_id, now):
            return
        found = await patient_episode(session, chat_id)
        if found is None:
            outbox.say(unknown_chat_text(ctx, language_code))
        else:
            episode = found[1]
            language = episode.language
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            await route(session, outbox, protocol, episode, now)
    await _finish(ctx, outbox, language)


async def handle_text(
    ctx: ServiceContext,
    *,
    chat_id: int,
    text: str,
    update_id: int | None,
    message_id: int | None,
    language_code: str | None = None,
) -> None:
    """A typed message: an answer to what we wait for, or a note read for red flags."""

    async def route(
        session: AsyncSession, outbox: Outbox, protocol: Protocol, episode: Episode, now: datetime
    ) -> None:
        await _route_text(session, ctx, outbox, protocol, episode, text, message_id, now)

    await _handle_update(
        ctx, chat_id=chat_id, update_id=update_id, language_code=language_code, route=route
    )


async def _gate(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    now: datetime,
) -> bool:
    """What every incoming message passes first; True when it was fully handled here.

    A refused follow-up stores nothing; a blocked bot that hears from the patient is unblocked;
    a consent text newer than the one accepted is asked again before anything else.
    """
    if episode.status == EpisodeStatus.REFUSED:
        outbox.say(_refused_text(ctx, episode.language))
        return True
    unblock(session, episode, now)
    if (
        episode.status in (EpisodeStatus.ACTIVE, EpisodeStatus.PAUSED)
        and episode.awaiting != CONSENT
        and consent_outdated(ctx, protocol, episode)
    ):
        episode.awaiting = CONSENT
        audit.record(
            session,
            at=now,
            actor="system",
            action="consent_renewal_asked",
            episode_id=episode.id,
            consent_version=current_protocol(ctx, protocol).consent.version,
        )
        outbox.messages.append(_consent_for(ctx, protocol, episode))
        return True
    return False


def _clarifying(episode: Episode) -> bool:
    """True while the patient is asked to confirm or rule out one red flag."""
    return episode.awaiting is not None and episode.awaiting.kind is AwaitingKind.CLARIFY


def unblock(session: AsyncSession, episode: Episode, now: datetime) -> None:
    """A patient who writes has unblocked the bot: sending may resume (audited)."""
    if episode.blocked_at is not None:
        episode.blocked_at = None
        audit.record(
            session, at=now, actor="patient", action="bot_unblocked", episode_id=episode.id
        )


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
    if await _gate(session, ctx, outbox, protocol, episode, now):
        return
    if episode.status in FOLLOW_UP_OVER:
        await _note(session, ctx, outbox, protocol, episode, text, message_id, now)
        return
    awaiting = episode.awaiting
    if awaiting == CONSENT:
        parsed = parse_yes_no(text)
        if parsed.status == "ok":
            await _consent(session, ctx, outbox, protocol, episode, parsed.value == 1, now)
        else:
            outbox.messages.append(_consent_for(ctx, protocol, episode))
        return
    if awaiting == BASELINE:
        parsed = parse_scale(text, minimum=0, maximum=10)
        _save(session, episode, None, "baseline", "text", text, parsed, now, message_id)
        if parsed.status == "ok" and parsed.value is not None:
            await _set_baseline(session, ctx, outbox, episode, parsed.value, now)
        else:
            outbox.say(
                t(lang, "Sorry, I did not understand. Could you choose a number from 0 to 10?"),
                scale_rows("b:", 0, 10),
            )
        await _scan_free_text(session, ctx, outbox, protocol, episode, text, now)
        return
    if awaiting is not None and awaiting.flag is not None:
        flag = awaiting.flag
        parsed = parse_yes_no(text)
        if parsed.value == 1:
            parsed = Parsed("ok", value=1, option_id="yes", flags=frozenset({flag}))
        _save(session, episode, None, f"clarify_{flag}", "text", text, parsed, now, message_id)
        await _clarified(session, ctx, outbox, protocol, episode, flag, parsed, now)
        return
    checkin = await open_checkin(session, episode.id)
    if checkin is not None:
        questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
        if checkin.question_index < len(questions):
            question = questions[checkin.question_index]
            parsed = _parse_typed(protocol, question, text, lang)
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
    await _note(session, ctx, outbox, protocol, episode, text, message_id, now)


def _parse_typed(protocol: Protocol, question: Question, text: str, language: str) -> Parsed:
    """A typed answer to ``question`` (a checklist reads the protocol's red-flag phrases)."""
    return parse_question(
        question,
        text,
        language=language,
        red_flags=protocol.red_flags,
        fever_threshold=protocol.fever_threshold_celsius,
    )


async def _note(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    text: str,
    message_id: int | None,
    now: datetime,
    *,
    kind: str = "note",
    skip_flags: frozenset[str] = frozenset(),
) -> None:
    """A message outside any question: saved for staff, read for red flags, acknowledged."""
    lang = episode.language
    _save(session, episode, None, None, kind, text, Parsed(status="ok"), now, message_id)
    found_flags = await _scan_free_text(
        session, ctx, outbox, protocol, episode, text, now, skip_flags=skip_flags
    )
    if found_flags:
        return
    if episode.status in FOLLOW_UP_OVER:
        outbox.say(
            t(
                lang,
                "Your follow-up has ended, but your message has been saved and the team will read it. If you are worried, call the unit on {phone}.",
                phone=ctx.unit.unit_phone,
            )
        )
        return
    outbox.say(
        t(
            lang,
            "Thank you, your message has been saved and the team will read it. If you are worried, call the unit on {phone}.",
            phone=ctx.unit.unit_phone,
        )
    )
    await resume(session, ctx, outbox, protocol, episode)


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


def _observation_question(answer: Answer) -> str | None:
    """The question id as the rules know it (a clarification is its red flag's yes/no question)."""
    if answer.kind == "note" or answer.question_id is None:
        return None
    if answer.question_id.startswith("clarify_"):
        return answer.question_id.removeprefix("clarify_")
    return answer.question_id


async def _history(session: AsyncSession, episode: Episode) -> History:
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
                question_id=_observation_question(answer),
                day=answer.day,
                value=answer.value,
                flags=frozenset(answer.flags or ()),
                unclear=answer.status == "unclear",
            )
        )
    return History(
        indication=Indication(episode.indication),
        baseline=episode.baseline_pain,
        observations=tuple(observations),
    )


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
    history = await _history(session, episode)
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
    said = False
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
        findings = await _evaluate(
            session,
            ctx,
            outbox,
            protocol,
            episode,
            [Observation(checkin_id=None, question_id=None, day=day, value=None, flags=certain)],
            now,
        )
        said = bool(findings)
    if doubtful and not _clarifying(episode):
        flag = doubtful[0]
        episode.awaiting = Awaiting.clarify(flag)
        episode.reask_count = 0
        outbox.messages.append(_clarify_question(protocol, flag, episode.language))
        said = True
    return said


def _clarify_question(
    protocol: Protocol, flag: str, language: str, prefix: str = ""
) -> OutgoingMessage:
    question = protocol.red_flags[flag].question.get(language)
    return OutgoingMessage(
        text=f"{prefix}\n{question}" if prefix else question,
        buttons=(
            (
                Button(t(language, "Yes"), f"f:{flag}:y"),
                Button(t(language, "No"), f"f:{flag}:n"),
            ),
        ),
    )


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
    """The answer to the yes/no question asked after a doubtful mention of a red flag."""
    lang = episode.language
    day = day_number(episode.procedure_at, now, episode.time_zone)
    if parsed.status != "ok" and episode.reask_count == 0:
        episode.reask_count = 1
        outbox.messages.append(
            _clarify_question(protocol, flag, lang, t(lang, "Please answer yes or no:"))
        )
        return
    episode.awaiting = None
    episode.reask_count = 0
    if parsed.status != "ok":
        observation = Observation(
            checkin_id=None, question_id=flag, day=day, value=None, unclear=True
        )
    else:
        flags = frozenset({flag}) if parsed.value == 1 else frozenset()
        observation = Observation(
            checkin_id=None, question_id=flag, day=day, value=parsed.value, flags=flags
        )
    findings = await _evaluate(session, ctx, outbox, protocol, episode, [observation], now)
    if not findings:
        outbox.say(t(lang, "Thank you, noted."))
    await resume(session, ctx, outbox, protocol, episode)


async def resume(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
) -> None:
    """After an interruption (a note, a photo, a clarification, /language): ask again what we
    are waiting for, so the buttons are always at hand."""
    lang = episode.language
    awaiting = episode.awaiting
    if awaiting == CONSENT:
        outbox.messages.append(_consent_for(ctx, protocol, episode))
        return
    if awaiting == BASELINE:
        outbox.say(protocol.baseline_question.get(lang), scale_rows("b:", 0, 10))
        return
    if awaiting is not None and awaiting.flag is not None:
        outbox.messages.append(_clarify_question(protocol, awaiting.flag, lang))
        return
    if episode.status not in (EpisodeStatus.ACTIVE, EpisodeStatus.PAUSED):
        return
    checkin = await open_checkin(session, episode.id)
    if checkin is None:
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
                selection=checkin.selection,
            )
        )


# ------------------------------------------------------------------------------ consent, baseline


async def _consent(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    accepted: bool,
    now: datetime,
) -> None:
    """Consent given or refused; a renewal (newer consent text) keeps the follow-up's place."""
    lang = episode.language
    version = current_protocol(ctx, protocol).consent.version
    renewal = episode.status in (EpisodeStatus.ACTIVE, EpisodeStatus.PAUSED)
    patient = await session.get(Patient, episode.patient_id)
    label = patient.label if patient is not None else "?"
    if not accepted:
        audit.record(
            session,
            at=now,
            actor="patient",
            action="consent_refused",
            episode_id=episode.id,
            consent_version=version,
        )
        if renewal:
            await stop_episode(session, episode, now, reason="consent_refused")
        else:
            episode.status = EpisodeStatus.REFUSED
        episode.awaiting = None
        outbox.say(
            t(
                lang,
                "Understood: you will not receive any follow-up messages. If you change your mind, ask the unit for a new link. Take care!",
            )
        )
        outbox.staff_notices.append(t("fr", "ℹ️ {label} refused the follow-up.", label=label))
        return
    episode.consent_version = version
    if episode.consented_at is None:
        episode.consented_at = now
    audit.record(
        session,
        at=now,
        actor="patient",
        action="consent_given",
        episode_id=episode.id,
        consent_version=version,
    )
    if renewal:
        episode.awaiting = None
        outbox.say(t(lang, "Thank you, your follow-up goes on."))
        await resume(session, ctx, outbox, protocol, episode)
        return
    if episode.baseline_pain is None:
        episode.awaiting = BASELINE
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
    episode.status = EpisodeStatus.ACTIVE
    episode.awaiting = None
    await plan_episode(session, ctx, episode)
    await session.flush()
    next_due = await session.scalar(
        select(CheckIn.due_at)
        .where(CheckIn.episode_id == episode.id, CheckIn.status == CheckInStatus.SCHEDULED)
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
    else:
        outbox.say(t(lang, "Your follow-up has started."))
    ctx.on_schedule_changed()


async def stop_episode(
    session: AsyncSession, episode: Episode, now: datetime, *, reason: str
) -> None:
    """The patient ends the follow-up (``/stop``, or a newer consent refused): every remaining
    check-in is cancelled, answers are kept, unused links expire (as a staff stop does)."""
    episode.status = EpisodeStatus.STOPPED
    episode.stopped_at = now
    episode.paused_at = None
    episode.awaiting = None
    tokens = await session.scalars(
        select(EnrolmentToken).where(
            EnrolmentToken.episode_id == episode.id, EnrolmentToken.used_at.is_(None)
        )
    )
    for token in tokens:
        token.expires_at = min(token.expires_at, now)
    checkins = await session.scalars(
        select(CheckIn).where(
            CheckIn.episode_id == episode.id,
            CheckIn.status.in_(
                (CheckInStatus.SCHEDULED, CheckInStatus.SENDING, CheckInStatus.AWAITING)
            ),
        )
    )
    for checkin in checkins:
        if checkin.status == CheckInStatus.AWAITING:
            answered = await session.scalar(
                select(Answer.id).where(Answer.checkin_id == checkin.id, Answer.status != "unclear")
            )
            checkin.status = (
                CheckInStatus.PARTIAL if answered is not None else CheckInStatus.CANCELLED
            )
        else:
            checkin.status = CheckInStatus.CANCELLED
        checkin.status_reason = reason
        checkin.closed_at = now
        checkin.next_reminder_at = None
    audit.record(
        session,
        at=now,
        actor="patient",
        action="follow_up_stopped",
        episode_id=episode.id,
        reason=reason,
    )


# ------------------------------------------------------------------------------ check-in answers


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
    *,
    file_id: str | None = None,
) -> Answer:
    """Save an answer to the open question, evaluate the rules, ask the next question.

    Not understood: asked again once, with the question's hint and its buttons; a second unclear
    answer is saved as unclear (a red-flag question then alerts for review) and we move on.
    """
    lang = episode.language
    if parsed.status == "unclear" and checkin.reask_count == 0:
        checkin.reask_count = 1
        saved = _save(
            session,
            episode,
            checkin,
            question.id,
            kind,
            raw,
            parsed,
            now,
            message_id,
            file_id=file_id,
        )
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
        if raw and kind == "text":
            await _scan_free_text(session, ctx, outbox, protocol, episode, raw, now)
        return saved
    saved = _save(
        session, episode, checkin, question.id, kind, raw, parsed, now, message_id, file_id=file_id
    )
    day = day_number(episode.procedure_at, now, episode.time_zone)
    observation = Observation(
        checkin_id=checkin.def_id,
        question_id=question.id,
        day=day,
        value=parsed.value,
        flags=parsed.flags,
        unclear=parsed.status == "unclear",
    )
    said = answer_label(question, language=lang, value=parsed.value, option_id=parsed.option_id)
    if said and parsed.status == "ok":
        outbox.say(t(lang, "Noted: {answer}.", answer=said))
    await _evaluate(session, ctx, outbox, protocol, episode, [observation], now)
    if question.score == "koos_jr":
        await _update_koos_score(session, protocol, episode, checkin, now)
    if raw and kind == "text":
        await _scan_free_text(
            session, ctx, outbox, protocol, episode, raw, now, skip_flags=parsed.flags
        )
    checkin.question_index += 1
    checkin.reask_count = 0
    checkin.selection = []
    checkin.next_reminder_at = None
    if _clarifying(episode):
        return saved
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
        return saved
    checkin.status = CheckInStatus.ANSWERED
    checkin.closed_at = now
    next_due = await session.scalar(
        select(CheckIn.due_at)
        .where(
            CheckIn.episode_id == episode.id,
            CheckIn.status == CheckInStatus.SCHEDULED,
            CheckIn.due_at > now,
        )
        .order_by(CheckIn.due_at)
    )
    if next_due is None:
        outbox.say(t(lang, "Thank you, that is all. This was the last check-in of your follow-up."))
        episode.status = EpisodeStatus.COMPLETED
    else:
        outbox.say(
            t(
                lang,
                "Thank you, that is all for today. Next check-in: {when}.",
                when=format_local(next_due, lang, episode.time_zone),
            )
        )
    return saved


async def _update_koos_score(
    session: AsyncSession, protocol: Protocol, episode: Episode, checkin: CheckIn, now: datetime
) -> None:
    """When the 7 KOOS JR items of a check-in are answered, store the interval score.

    One ``koos_jr_score`` row per check-in: ``value`` is the score rounded half up to an integer
    (what tables and alert cards show), ``score`` the exact interval score from the conversion
    table. The last understood answer of each item counts (a correction replaces the value);
    an item skipped or never understood gives no score (KOOS JR does not impute).
    """
    items = [
        q.id
        for q in protocol.questions_for(checkin.def_id, Indication(episode.indication))
        if q.score == "koos_jr"
    ]
    if len(items) != KOOS_JR_ITEMS:
        return
    await session.flush()
    rows = await session.scalars(
        select(Answer)
        .where(
            Answer.checkin_id == checkin.id,
            Answer.question_id.in_(items),
            Answer.status == "ok",
        )
        .order_by(Answer.created_at, Answer.id)
    )
    latest = {row.question_id: row.value for row in rows}
    try:
        score = koos_jr_interval([latest.get(item) for item in items])
    except ValueError:
        log.warning("koos_jr_values_out_of_range", checkin_id=checkin.id)
        return
    if score is None:
        return
    rounded = int(score + 0.5)
    row = await session.scalar(
        select(Answer).where(Answer.checkin_id == checkin.id, Answer.question_id == KOOS_SCORE_ID)
    )
    if row is None:
        row = _save(
            session,
            episode,
            checkin,
            KOOS_SCORE_ID,
            "score",
            None,
            Parsed(status="ok", value=rounded),
            now,
            None,
        )
    row.value = rounded
    row.score = score


# ------------------------------------------------------------------------------ edited messages


async def handle_edit(
    ctx: ServiceContext,
    *,
    chat_id: int,
    text: str,
    update_id: int | None,
    message_id: int | None,
    language_code: str | None = None,
) -> None:
    """An edited message: saved as a correction of what it edited, re-read for red flags."""

    async def route(
        session: AsyncSession, outbox: Outbox, protocol: Protocol, episode: Episode, now: datetime
    ) -> None:
        await _route_edit(session, ctx, outbox, protocol, episode, text, message_id, now)

    await _handle_update(
        ctx, chat_id=chat_id, update_id=update_id, language_code=language_code, route=route
    )


async def _route_edit(
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
    original = None
    if message_id is not None:
        original = await session.scalar(
            select(Answer)
            .where(Answer.episode_id == episode.id, Answer.telegram_message_id == message_id)
            .order_by(Answer.id.desc())
        )
    if original is None:
        # Nothing of ours came from that message (sent before enrolment, or a command):
        # read it as a new message.
        await _route_text(session, ctx, outbox, protocol, episode, text, message_id, now)
        return
    if await _gate(session, ctx, outbox, protocol, episode, now):
        return
    before = _flags_in(protocol, original.raw_text)
    checkin = await session.get(CheckIn, original.checkin_id) if original.checkin_id else None
    question = _question_of(protocol, original.question_id)
    if (
        checkin is not None
        and question is not None
        and checkin.status == CheckInStatus.AWAITING
        and original.status == "unclear"
        and _current_question_id(protocol, episode, checkin) == question.id
    ):
        # The edited message was a not-understood attempt at the question still open.
        await _route_text(session, ctx, outbox, protocol, episode, text, message_id, now)
        return
    if question is None or checkin is None or question.type == "photo":
        # Not an answer to a protocol question (or a photo's caption): a corrected note.
        if original.question_id == "baseline" and episode.baseline_source == "patient":
            parsed = parse_scale(text, minimum=0, maximum=10)
            _save(session, episode, None, "baseline", "correction", text, parsed, now, message_id)
            if parsed.status == "ok" and parsed.value is not None:
                episode.baseline_pain = parsed.value
                outbox.say(
                    t(
                        lang,
                        "Thank you, I have corrected your answer: {answer}.",
                        answer=f"{parsed.value}/10",
                    )
                )
            await _scan_free_text(
                session, ctx, outbox, protocol, episode, text, now, skip_flags=before
            )
            return
        await _note(
            session,
            ctx,
            outbox,
            protocol,
            episode,
            text,
            message_id,
            now,
            kind="correction",
            skip_flags=before,
        )
        return
    parsed = _parse_typed(protocol, question, text, lang)
    _save(session, episode, checkin, question.id, "correction", text, parsed, now, message_id)
    said = answer_label(question, language=lang, value=parsed.value, option_id=parsed.option_id)
    if parsed.status == "ok":
        day = day_number(episode.procedure_at, now, episode.time_zone)
        observation = Observation(
            checkin_id=checkin.def_id,
            question_id=question.id,
            day=day,
            value=parsed.value,
            flags=parsed.flags,
        )
        if said:
            outbox.say(t(lang, "Thank you, I have corrected your answer: {answer}.", answer=said))
        else:
            outbox.say(t(lang, "Thank you, I have saved your correction for the team."))
        await _evaluate(session, ctx, outbox, protocol, episode, [observation], now)
        if question.score == "koos_jr":
            await _update_koos_score(session, protocol, episode, checkin, now)
    else:
        outbox.say(t(lang, "Thank you, I have saved your correction for the team."))
    asked = await _scan_free_text(
        session, ctx, outbox, protocol, episode, text, now, skip_flags=before | parsed.flags
    )
    if not (asked and _clarifying(episode)):
        # The open question again, below the acknowledgement (and any safety advice).
        await resume(session, ctx, outbox, protocol, episode)


def _flags_in(protocol: Protocol, text: str | None) -> frozenset[str]:
    """Red flags read for certain in a text (those of an edited message's first version)."""
    if not text:
        return frozenset()
    mentions = scan_red_flags(
        text, protocol.red_flags, fever_threshold=protocol.fever_threshold_celsius
    )
    return frozenset(m.flag for m in mentions if m.certainty == "certain")


def _question_of(protocol: Protocol, question_id: str | None) -> Question | None:
    if question_id is None:
        return None
    try:
        return protocol.question(question_id)
    except KeyError:
        return None


def _current_question_id(protocol: Protocol, episode: Episode, checkin: CheckIn) -> str | None:
    questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
    if checkin.question_index < len(questions):
        return questions[checkin.question_index].id
    return None


# ------------------------------------------------------------------------------ buttons


async def handle_button(
    ctx: ServiceContext,
    *,
    chat_id: int,
    data: str,
    update_id: int | None,
    message_id: int | None,
    language_code: str | None = None,
) -> Reply:
    """A button press from a patient; stale and forged presses are refused politely."""
    outbox = Outbox(chat_id)
    now = ctx.clock.now()
    press = decode(data)
    toast: str | None = None
    async with ctx.sessions.begin() as session:
        if await already_processed(session, update_id, now):
            return Reply()
        found = await patient_episode(session, chat_id)
        if found is None:
            return Reply(
                toast=t(guess_language(ctx, language_code), "This button is no longer active.")
            )
        episode = found[1]
        if press is None or episode.status in (EpisodeStatus.REFUSED, *FOLLOW_UP_OVER):
            return Reply(toast=t(episode.language, "This question is closed. Thank you!"))
        protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
        toast = await _route_button(session, ctx, outbox, protocol, episode, press, message_id, now)
    await _store_photos(ctx, outbox)
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
        if episode.awaiting != CONSENT:
            return stale
        if press.value == "i":
            outbox.say(
                current_protocol(ctx, protocol).consent.details.get(lang),
                ((Button(t(lang, "I agree"), "c:y"), Button(t(lang, "I refuse"), "c:n")),),
            )
            return None
        await _consent(session, ctx, outbox, protocol, episode, press.value == "y", now)
        return None
    if await _gate(session, ctx, outbox, protocol, episode, now):
        return None
    if episode.awaiting == CONSENT:
        outbox.messages.append(_consent_for(ctx, protocol, episode))
        return t(lang, "Please answer the consent question first.")
    if press.kind == "b":
        if episode.awaiting != BASELINE or press.value is None or not press.value.isdigit():
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
        await _set_baseline(session, ctx, outbox, episode, value, now)
        return None
    if press.kind == "f":
        assert press.value is not None
        flag, answer = press.value.split(":")
        if episode.awaiting != Awaiting.clarify(flag):
            return stale
        parsed = Parsed(
            status="ok",
            value=1 if answer == "y" else 0,
            option_id="yes" if answer == "y" else "no",
            flags=frozenset({flag}) if answer == "y" else frozenset(),
        )
        _save(session, episode, None, f"clarify_{flag}", "button", None, parsed, now, message_id)
        await _clarified(session, ctx, outbox, protocol, episode, flag, parsed, now)
        return None
    if press.kind in ("a", "t", "d", "n"):
        checkin = await session.get(CheckIn, press.checkin_id)
        if (
            checkin is None
            or checkin.episode_id != episode.id
            or checkin.status != CheckInStatus.AWAITING
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
        if press.kind not in ("d", "n"):
            return stale
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
    parsed_button = _button_value(question, press.value)
    if parsed_button is None:
        return stale
    await _answer(
        session,
        ctx,
        outbox,
        protocol,
        episode,
        checkin,
        question,
        parsed_button,
        "button",
        None,
        message_id,
        now,
    )
    return None


def _button_value(question: Question, value: str) -> Parsed | None:
    """Turn button data into a parsed answer (None when it does not fit the question)."""
    if value == "s":
        return SKIP if question.optional else None
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


# ------------------------------------------------------------------------------ media


async def handle_media(
    ctx: ServiceContext,
    *,
    chat_id: int,
    kind: str,
    update_id: int | None,
    message_id: int | None,
    file_id: str | None = None,
    file_size: int | None = None,
    caption: str | None = None,
    language_code: str | None = None,
) -> None:
    """Photos, voice notes, videos, stickers, documents, locations, contacts, polls...: never
    silently ignored. Only the kind and Telegram's file id are kept (never a location's
    coordinates or a shared contact's phone number); photos also get a local copy."""

    async def route(
        session: AsyncSession, outbox: Outbox, protocol: Protocol, episode: Episode, now: datetime
    ) -> None:
        await _route_media(
            session,
            ctx,
            outbox,
            protocol,
            episode,
            kind=kind,
            message_id=message_id,
            file_id=file_id,
            file_size=file_size,
            caption=caption,
            now=now,
        )

    await _handle_update(
        ctx, chat_id=chat_id, update_id=update_id, language_code=language_code, route=route
    )


async def _route_media(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    *,
    kind: str,
    message_id: int | None,
    file_id: str | None,
    file_size: int | None,
    caption: str | None,
    now: datetime,
) -> None:
    lang = episode.language
    if await _gate(session, ctx, outbox, protocol, episode, now):
        return
    if episode.awaiting == CONSENT:
        outbox.say(t(lang, "Please answer the consent question first."))
        outbox.messages.append(_consent_for(ctx, protocol, episode))
        return
    checkin = (
        await open_checkin(session, episode.id) if episode.status == EpisodeStatus.ACTIVE else None
    )
    question = None
    if checkin is not None and episode.awaiting is None:
        questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
        if checkin.question_index < len(questions):
            question = questions[checkin.question_index]
    if kind == "photo" and question is not None and question.type == "photo":
        assert checkin is not None
        answer = await _answer(
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
            file_id=file_id,
        )
        outbox.messages.insert(
            0, OutgoingMessage(text=t(lang, "Thank you, the photo has been saved for the team."))
        )
        if file_id is not None:
            outbox.photos.append(PhotoCopy(answer, file_id, file_size))
        if caption:
            await _scan_free_text(session, ctx, outbox, protocol, episode, caption, now)
        return
    saved = _save(
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
    if kind in UNHEARD_KINDS:
        day = day_number(episode.procedure_at, now, episode.time_zone)
        findings = evaluate_unheard_media(protocol, await _history(session, episode), day=day)
        outbox.alerts.extend(
            await alerts.raise_findings(session, now=now, episode=episode, findings=findings)
        )
        outbox.forward_message_id = message_id
        outbox.say(
            t(
                lang,
                "I cannot listen to voice or video messages. I have passed it to the team. To be sure nothing is missed, please tap the buttons or type your answer.",
            )
        )
    elif kind == "photo":
        outbox.say(t(lang, "Thank you, the photo has been saved for the team."))
        if file_id is not None:
            outbox.photos.append(PhotoCopy(saved, file_id, file_size))
    elif question is not None or episode.awaiting is not None:
        outbox.say(
            t(
                lang,
                "Thank you. I can only read text and buttons: please type your answer or tap a button.",
            )
        )
    else:
        outbox.say(
            t(
                lang,
                "Thank you. I can only read text: if you want to tell the team something, please type it. If you are worried, call the unit on {phone}.",
                phone=ctx.unit.unit_phone,
            )
        )
    if caption:
        await _scan_free_text(session, ctx, outbox, protocol, episode, caption, now)
    await resume(session, ctx, outbox, protocol, episode)


# ------------------------------------------------------------------------------ blocked bot


async def mark_blocked(ctx: ServiceContext, *, chat_id: int) -> None:
    """The patient blocked the bot: stop sending and tell staff (silence is clinical data)."""
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
        history = await _history(session, episode)
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
