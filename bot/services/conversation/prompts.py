"""What the bot asks: the consent question, a clarification, the open check-in question.

:func:`resume` asks again whatever we wait for after an interruption, so the buttons are always
at hand."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Episode
from bot.domain.protocol import Indication, Protocol
from bot.domain.states import BASELINE, CONSENT, EpisodeStatus
from bot.i18n import t
from bot.services.context import ServiceContext
from bot.services.conversation.lookups import open_checkin
from bot.services.conversation.turn import Outbox
from bot.services.ports import Button, OutgoingMessage
from bot.services.questions import render_question, scale_rows


def current_protocol(ctx: ServiceContext, protocol: Protocol) -> Protocol:
    """The newest loaded version of an episode's protocol: its consent text is the one in force."""
    try:
        return ctx.protocols.registry.latest(protocol.id)
    except KeyError:
        return protocol


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


def consent_for(ctx: ServiceContext, protocol: Protocol, episode: Episode) -> OutgoingMessage:
    """The consent question for this patient: a renewal once the follow-up is running."""
    return consent_message(
        ctx,
        current_protocol(ctx, protocol),
        episode.language,
        renewal=episode.status in (EpisodeStatus.ACTIVE, EpisodeStatus.PAUSED),
    )


def refused_text(ctx: ServiceContext, language: str) -> str:
    return t(
        language,
        "You declined the follow-up, so I do not keep your messages. If you are worried, call the unit on {phone}. If you have changed your mind, ask the unit for a new link.",
        phone=ctx.unit.unit_phone,
    )


def clarify_question(
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
        outbox.messages.append(consent_for(ctx, protocol, episode))
        return
    if awaiting == BASELINE:
        outbox.say(protocol.baseline_question.get(lang), scale_rows("b:", 0, 10))
        return
    if awaiting is not None and awaiting.flag is not None:
        outbox.messages.append(clarify_question(protocol, awaiting.flag, lang))
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
