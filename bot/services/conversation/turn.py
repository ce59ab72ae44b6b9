"""One patient update being handled (the :class:`Turn`), and what it queues for after the commit.

A turn is the update's transaction (``session``), the service context, the patient's protocol
and episode, the time it is handled, and the :class:`Outbox` of what to send once the
transaction has committed. Use cases take a turn plus keyword-only arguments.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Alert, CheckIn, Episode, OwedMessage, Patient
from bot.domain.protocol import Indication, Protocol, Question, Severity
from bot.domain.schedule import day_number
from bot.services import audit
from bot.services.alerts import CardJob
from bot.services.context import ServiceContext
from bot.services.ports import Button, OutgoingMessage


@dataclass
class Outbox:
    """What to send once the transaction has committed."""

    chat_id: int
    messages: list[OutgoingMessage] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    #: Messages to edit in place (checklist ticks), as (message id, new content).
    edits: list[tuple[int, OutgoingMessage]] = field(default_factory=list)
    forward_message_id: int | None = None
    staff_notices: list[str] = field(default_factory=list)
    #: Work that needs the committed rows or a transaction of its own (copy a photo, link a
    #: chat), run in order once the update's transaction has committed, before sending.
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: The short answer to a button press, shown by the adapter (None: no toast).
    toast: str | None = None
    #: The ``owed_messages`` rows this update wrote (sent after the commit, in order).
    owed_ids: list[int] = field(default_factory=list)
    #: The rows it owes the staff chat (a photo), sent once the alert cards are posted.
    staff_owed_ids: list[int] = field(default_factory=list)
    #: The safety advice this update gives, as (index in ``messages``, severity): one worrying
    #: message gets one piece of advice, made more pressing in place if a later finding of
    #: the same update is (see :func:`~.evaluation.escalate`).
    advice: tuple[int, Severity] | None = None
    #: The alert this update opened: later findings of the same update join it (one card).
    opened_alert: Alert | None = None
    #: The staff cards of ``alerts``, claimed in the update's transaction and posted right
    #: after the patient's messages (:func:`~bot.services.alerts.claim_cards`).
    cards: list[CardJob] = field(default_factory=list)
    #: Those rows themselves (what the fast path sends without reading them again).
    owed_rows: list[OwedMessage] = field(default_factory=list)
    #: Messages owed to the chat and unsent when the update began (None: not read): when all
    #: of them are already sent by this process, this update's rows go without a query.
    unsent_before: int | None = None

    def say(self, text: str, buttons: tuple[tuple[Button, ...], ...] = ()) -> None:
        """Queue a message to the patient."""
        self.messages.append(OutgoingMessage(text=text, buttons=buttons))

    @property
    def silent(self) -> bool:
        """True when nothing would reach the patient (the caller must then say something)."""
        return not self.messages and not self.edits and not self.owed_ids


@dataclass
class Reply:
    """What a handler tells the Telegram adapter: a short toast for a button press, if any."""

    toast: str | None = None


@dataclass(frozen=True, kw_only=True)
class Turn:
    """One update from an enrolled patient, handled in one transaction."""

    session: AsyncSession
    ctx: ServiceContext
    outbox: Outbox
    protocol: Protocol
    patient: Patient
    episode: Episode
    now: datetime

    @property
    def language(self) -> str:
        """The patient's language (read each time: ``/language`` changes it mid-turn)."""
        return self.episode.language

    @property
    def day(self) -> int:
        """The follow-up day of this turn, in the patient's time zone."""
        return day_number(self.episode.procedure_at, self.now, self.episode.time_zone)

    def current_question(self, checkin: CheckIn) -> Question | None:
        """The question ``checkin`` is at (None once all of them are answered)."""
        questions = self.protocol.questions_for(checkin.def_id, Indication(self.episode.indication))
        if checkin.question_index < len(questions):
            return questions[checkin.question_index]
        return None

    def audit(self, action: str, *, actor: str = "system", **details: Any) -> None:
        """Record ``action`` on this episode, in this turn's transaction."""
        audit.record(
            self.session,
            at=self.now,
            actor=actor,
            action=action,
            episode_id=self.episode.id,
            **details,
        )
