"""What the bot asks: the consent question, a clarification, the open check-in question.

:func:`resume` asks again whatever we wait for after an interruption, so the buttons are always
at hand."""

from __future__ import annotations

from bot.db.queries import episodes
from bot.domain.protocol import Protocol
from bot.domain.states import BASELINE, CONSENT, RUNNING
from bot.i18n import t
from bot.services.context import ServiceContext
from bot.services.conversation.turn import Turn
from bot.services.ports import Button, OutgoingMessage
from bot.services.questions import render_question, scale_rows


def current_protocol(ctx: ServiceContext, protocol: Protocol) -> Protocol:
    """The newest loaded version of an episode's protocol: its consent text is the one in force."""
    try:
        return ctx.protocols.registry.latest(protocol.id)
    except KeyError:
        return protocol


def consent_message(
    ctx: ServiceContext, *, protocol: Protocol, language: str, renewal: bool = False
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
            unit=ctx.unit.unit_name_in(language),
            schedule=protocol.schedule_summary.get(language),
        )
    else:
        opening = t(
            language,
            "Hello, I am the follow-up assistant of the {unit} unit. After your knee cryoneurolysis I "
            "will ask you a few short questions (1 to 2 minutes): this evening, then on days 1, 2, 3, 7 "
            "and 14, then at 6 weeks, 3 and 6 months.",
            unit=ctx.unit.unit_name_in(language),
        )
    text = f"{opening}\n\n{protocol.consent.text.get(language)}"
    return OutgoingMessage(
        text=text,
        buttons=(
            (Button(t(language, "I agree"), "c:y"), Button(t(language, "I refuse"), "c:n")),
            (Button(t(language, "More information"), "c:i"),),
        ),
    )


def consent_for(turn: Turn) -> OutgoingMessage:
    """The consent question for this patient: a renewal once the follow-up is running."""
    return consent_message(
        turn.ctx,
        protocol=current_protocol(turn.ctx, turn.protocol),
        language=turn.language,
        renewal=turn.episode.status in RUNNING,
    )


def refused_text(ctx: ServiceContext, language: str) -> str:
    """What a patient who declined the follow-up is told, whatever they send."""
    return t(
        language,
        "You declined the follow-up, so I do not keep your messages. If you are worried, call the unit on {phone}. If you have changed your mind, ask the unit for a new link.",
        phone=ctx.unit.unit_phone,
    )


def clarify_question(turn: Turn, flag: str, *, prefix: str = "") -> OutgoingMessage:
    """The yes/no question that confirms or rules out ``flag``."""
    language = turn.language
    question = turn.protocol.red_flags[flag].question.get(language)
    return OutgoingMessage(
        text=f"{prefix}\n{question}" if prefix else question,
        buttons=(
            (
                Button(t(language, "Yes"), f"f:{flag}:y"),
                Button(t(language, "No"), f"f:{flag}:n"),
            ),
        ),
    )


async def resume(turn: Turn) -> None:
    """After an interruption (a note, a photo, a clarification, /language): ask again what we
    are waiting for, so the buttons are always at hand."""
    episode, protocol, outbox = turn.episode, turn.protocol, turn.outbox
    awaiting = episode.awaiting
    if awaiting == CONSENT:
        outbox.messages.append(consent_for(turn))
        return
    if awaiting == BASELINE:
        outbox.say(protocol.baseline_question.get(turn.language), scale_rows("b:", 0, 10))
        return
    if awaiting is not None and awaiting.flag is not None:
        outbox.messages.append(clarify_question(turn, awaiting.flag))
        return
    if episode.status not in RUNNING:
        return
    checkin = await episodes.open_checkin(turn.session, episode_id=episode.id)
    question = turn.current_question(checkin) if checkin is not None else None
    if checkin is not None and question is not None:
        outbox.messages.append(
            render_question(
                protocol,
                question,
                language=turn.language,
                checkin_id=checkin.id,
                index=checkin.question_index,
                selection=checkin.selection,
            )
        )
