"""A patient's photo reaches staff: re-sent to the staff chat by its Telegram file id, with the
patient's label and the day since the procedure as caption.

A photo kept in the database and the media folder but never shown was a photo nobody looked
at. The staff copy is an owed message (:mod:`bot.services.owed`) written in the update's own
transaction: a failing or lost staff chat delays it, never loses it. When the photo comes with
a worrying answer (an alert raised or extended by the same update, or earlier in the same
check-in), it is sent as a reply to that alert's card, right after the card.
"""

from __future__ import annotations

from bot.db.models import Alert, CheckIn
from bot.db.queries.alerts import unresolved_by_rule
from bot.db.queries.owed import insert_owed
from bot.domain.protocol import Severity
from bot.i18n import t
from bot.services import chat_health, claims, owed
from bot.services.cards import day_label, quoted
from bot.services.conversation.turn import Turn
from bot.services.ports import OutgoingMessage

#: Telegram's caption limit is 1024 characters; the patient's words are cut well before.
CAPTION_QUOTE_CHARS = 300


async def share_photo(
    turn: Turn, *, file_id: str, caption: str | None, checkin: CheckIn | None
) -> None:
    """Owe the staff a copy of this photo (after the card it illustrates, if any), where the
    cards go now: the staff chat, or on-call while the bot has lost the staff chat (with no
    team chat at all, the staff chat's row waits for it to come back)."""
    ctx = turn.ctx
    if ctx.unit.staff_chat_id is None and ctx.unit.oncall_chat_id is None:
        return
    staff_chat = await chat_health.cards_chat(turn.session, ctx) or ctx.unit.staff_chat_id
    if staff_chat is None:
        return
    lang = ctx.unit.staff_language
    text = t(
        lang,
        "📷 {label} · {day} — photo sent by the patient",
        label=turn.patient.label,
        day=day_label(lang, turn.day),
    )
    if caption and caption.strip():
        words = " ".join(caption.split())
        if len(words) > CAPTION_QUOTE_CHARS:
            words = words[: CAPTION_QUOTE_CHARS - 1] + "…"
        text += "\n" + quoted(lang, words)
    alert = await _worrying_alert(turn, checkin)
    row = owed.owed_row(
        chat_id=staff_chat,
        message=OutgoingMessage(text=text, photo_id=file_id),
        episode_id=turn.episode.id,
        now=turn.now,
        claimed_by=ctx.process_id,
        claimed_at=claims.claim_time(ctx.clock),
        urgent=alert is not None and alert.severity != Severity.REVIEW.value,
        to_staff=True,
        reply_to_alert=alert.id if alert is not None else None,
    )
    await insert_owed(turn.session, [row])
    turn.outbox.staff_owed_ids.append(row.id)


async def _worrying_alert(turn: Turn, checkin: CheckIn | None) -> Alert | None:
    """The most severe alert this photo illustrates: raised or extended by this update, else
    by an answer of the same check-in and still unresolved; None when nothing worries."""
    candidates = list(turn.outbox.alerts)
    if not candidates and checkin is not None and checkin.sent_at is not None:
        since = checkin.sent_at
        open_alerts = await unresolved_by_rule(turn.session, episode_id=turn.episode.id)
        candidates = [alert for alert in open_alerts.values() if alert.updated_at >= since]
    if not candidates:
        return None
    await turn.session.flush()  # a new alert gets its id
    return min(candidates, key=lambda alert: (Severity(alert.severity).rank, -alert.id))
