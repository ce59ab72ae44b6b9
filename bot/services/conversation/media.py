"""Photos, voice notes, videos, stickers, documents, locations, contacts, polls...

Never silently ignored: only the kind and Telegram's file id are kept (never a location's
coordinates or a shared contact's phone number); photos also get a local copy and are shown to
staff (:mod:`.staff_photos`); media nobody can read (voice, video) are forwarded to staff, who
must listen."""

from __future__ import annotations

from functools import partial

from bot.db.models import Answer
from bot.db.queries import episodes
from bot.domain.parsing import Parsed
from bot.domain.rules import evaluate_unheard_media
from bot.domain.states import CONSENT, EpisodeStatus
from bot.i18n import t
from bot.services.conversation.answers import answer_question
from bot.services.conversation.consent import gate
from bot.services.conversation.delivery import keep_photo
from bot.services.conversation.evaluation import load_history, raise_alerts, save_answer
from bot.services.conversation.notes import scan_free_text
from bot.services.conversation.prompts import consent_for, resume
from bot.services.conversation.staff_photos import share_photo
from bot.services.conversation.turn import Turn
from bot.services.ports import OutgoingMessage

#: Media nobody can parse: a human must listen (rule ``unheard_media``).
UNHEARD_KINDS = frozenset({"voice", "video", "video_note", "audio"})


async def route_media(
    turn: Turn,
    *,
    kind: str,
    message_id: int | None,
    file_id: str | None,
    file_size: int | None,
    caption: str | None,
) -> None:
    """A message that is not text: the photo a question asks for, or saved and acknowledged."""
    episode, outbox, lang = turn.episode, turn.outbox, turn.language
    if await gate(turn):
        return
    if episode.awaiting == CONSENT:
        outbox.say(t(lang, "Please answer the consent question first."))
        outbox.messages.append(consent_for(turn))
        return
    checkin = (
        await episodes.open_checkin(turn.session, episode_id=episode.id)
        if episode.status == EpisodeStatus.ACTIVE
        else None
    )
    question = None
    if checkin is not None and episode.awaiting is None:
        question = turn.current_question(checkin)
    if kind == "photo" and question is not None and question.type == "photo":
        assert checkin is not None
        answer = await answer_question(
            turn,
            checkin=checkin,
            question=question,
            parsed=Parsed(status="ok"),
            kind="photo",
            text=caption,
            message_id=message_id,
            file_id=file_id,
        )
        outbox.messages.insert(
            0, OutgoingMessage(text=t(lang, "Thank you, the photo has been saved for the team."))
        )
        if file_id is not None:
            _keep_photo(turn, answer=answer, file_id=file_id, file_size=file_size)
        if caption:
            await scan_free_text(turn, text=caption)
        if file_id is not None:
            await share_photo(turn, file_id=file_id, caption=caption, checkin=checkin)
        return
    saved = save_answer(
        turn,
        kind=kind,
        text=caption,
        parsed=Parsed(status="ok"),
        message_id=message_id,
        file_id=file_id,
    )
    if kind in UNHEARD_KINDS:
        history = await load_history(turn.session, episode)
        findings = evaluate_unheard_media(turn.protocol, history, day=turn.day)
        await raise_alerts(turn, findings)
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
            _keep_photo(turn, answer=saved, file_id=file_id, file_size=file_size)
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
                phone=turn.ctx.unit.unit_phone,
            )
        )
    if caption:
        await scan_free_text(turn, text=caption)
    if kind == "photo" and file_id is not None:
        await share_photo(turn, file_id=file_id, caption=caption, checkin=checkin)
    await resume(turn)


def _keep_photo(turn: Turn, *, answer: Answer, file_id: str, file_size: int | None) -> None:
    """Copy the photo into MEDIA_DIR once the answer row is committed (it gets the path)."""
    turn.outbox.after_commit.append(
        partial(keep_photo, turn.ctx, answer=answer, file_id=file_id, file_size=file_size)
    )
