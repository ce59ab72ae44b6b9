"""What one update's handling queues for after the commit: messages, alerts, edits, photos."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.db.models import Alert, Answer
from bot.services.ports import Button, OutgoingMessage


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
