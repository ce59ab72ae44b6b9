"""What a staff action answers, as a value: the Telegram adapter shows it, a test reads it.

A dialog step (a guided ``/enroll`` answer, a resolution note) or an alert button decides what
the staff member sees but does not send it. It returns a :class:`StaffReply`, which the adapter
shows in this order: the tapped button's notice, the edit, the new messages, then the reply's
follow-ups (:func:`bot.services.staff_answers.after_shown`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import t
from bot.services.ports import Button, OutgoingMessage, SentRef
from bot.services.staff_dialogs import Dialog


@dataclass(frozen=True)
class Edit:
    """Rewrite one of the bot's messages in the staff member's chat."""

    message_id: int
    message: OutgoingMessage


@dataclass(frozen=True)
class CardChange:
    """An alert whose card changed, to re-post once the staff member has their answer."""

    alert_id: int
    #: The card in the staff chat, updated by the alert delivery (which retries).
    staff_message_id: int | None
    #: The copy whose button was pressed (e.g. in the on-call chat), edited directly.
    pressed: SentRef | None


@dataclass(frozen=True)
class StaffReply:
    """What the staff member sees after an action, and what follows once it is shown."""

    #: The tapped button's short notice; None answers the tap without text.
    toast: str | None = None
    edit: Edit | None = None
    messages: tuple[OutgoingMessage, ...] = ()
    #: The dialog that keeps the first message's id as ``prompt`` once sent, so that its
    #: answer can edit that question in place.
    prompt_of: Dialog | None = None
    card: CardChange | None = None


def say(text: str, buttons: tuple[tuple[Button, ...], ...] = ()) -> StaffReply:
    """A reply of one text message."""
    return StaffReply(messages=(OutgoingMessage(text=text, buttons=buttons),))


def cancel_row(dialog_id: int, *, language: str) -> tuple[Button, ...]:
    """The row every dialog question ends with."""
    return (Button(t(language, "Cancel"), f"sx:{dialog_id}"),)


def group_hint(chat_id: int, *, language: str) -> str:
    """In a group the bot sees only replies to its own messages (privacy mode): say so."""
    if chat_id >= 0:
        return ""
    return "\n" + t(language, "(In the group: reply to this message.)")
