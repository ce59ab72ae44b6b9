"""The narrow interface services use to talk to patients and staff.

Services never import telegram: the Telegram adapter implements :class:`Messenger`, and maps the
Bot API's failures onto the exceptions below, which is all services need to decide what to do.

    DeliveryError
    ├── RecipientBlocked    the patient blocked the bot (403): stop the episode's sending
    ├── ChatNotFound        the chat id is wrong or the bot left the group (400)
    ├── ChatLost            the bot may no longer post in a group: removed (403), its right to
    │                       send taken away, or the group became a supergroup (new id given)
    └── TemporaryFailure    network error, 5xx, 429 (retry_after set): retry later
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Button:
    """An inline button: what the patient sees and the compact data sent back when tapped."""

    label: str
    data: str


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to send: text and optional rows of inline buttons.

    ``photo_id`` re-sends a photo Telegram already has (a patient's, by its file id: the bot
    may send it to any chat), with ``text`` as its caption; ``reply_to`` makes the message a
    reply to that message of the same chat (sent anyway when it is gone).
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    photo: bytes | None = None
    document: bytes | None = None
    file_name: str | None = None
    photo_id: str | None = None
    reply_to: int | None = None
    #: The protocol question this message asks (None for any other message): the Telegram
    #: adapter remembers the chat's open question, to read an urgent reply as it arrives.
    question_id: str | None = None


@dataclass(frozen=True)
class SentRef:
    """Where a message landed, so it can be edited later."""

    chat_id: int
    message_id: int


@dataclass
class DeliveryError(Exception):
    """A message could not be delivered."""

    reason: str = ""
    retry_after: float | None = field(default=None)

    def __str__(self) -> str:
        return self.reason


class RecipientBlocked(DeliveryError):
    """The patient blocked the bot."""


class ChatNotFound(DeliveryError):
    """The chat does not exist for this bot."""


@dataclass
class ChatLost(DeliveryError):
    """The bot can no longer post in a group, for good until someone acts.

    ``reason`` is ``removed``, ``restricted`` or ``migrated``; ``new_chat_id`` is the
    supergroup's id when a group was upgraded (Telegram's ``migrate_to_chat_id``).
    """

    new_chat_id: int | None = field(default=None)


class TemporaryFailure(DeliveryError):
    """Worth retrying later (network, 5xx, 429)."""


class Messenger(Protocol):
    """Send and edit messages; raises :class:`DeliveryError` subclasses on failure."""

    async def send(self, chat_id: int, message: OutgoingMessage) -> SentRef:
        """Send a message (text, photo or document) with optional buttons."""
        ...

    async def edit(self, ref: SentRef, message: OutgoingMessage) -> None:
        """Replace a sent message's text and buttons."""
        ...

    async def forward(self, chat_id: int, from_chat_id: int, message_id: int) -> SentRef:
        """Forward a patient's message (e.g. a voice note) to staff."""
        ...

    async def download(self, file_id: str) -> bytes:
        """The bytes of a file a patient sent (e.g. a photo of the knee), by its file id."""
        ...

    async def check_chat(self, chat_id: int) -> None:
        """Ask Telegram whether the bot may post in a group (sends nothing): returns when it
        may, raises :class:`ChatLost` or :class:`ChatNotFound` when it may not, another
        :class:`DeliveryError` when Telegram could not tell."""
        ...
