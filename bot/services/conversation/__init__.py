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

The package, one job a module: :mod:`.envelope` (the one envelope of every update, and the
entry points), :mod:`.turn` (the Turn a use case takes, and its outbox), :mod:`.routing` (what
a text, an edit or a button is an answer to), :mod:`.consent` (start, link, consent,
baseline), :mod:`.answers` (a check-in question answered), :mod:`.evaluation` (save, evaluate
the rules, escalate), :mod:`.clarify`, :mod:`.notes` (free text and its red flags), :mod:`.education` (questions
about the expected course, answered from the protocol),
:mod:`.corrections` (edited messages), :mod:`.media`, :mod:`.prompts` (what we ask, and asking
it again), :mod:`.stop`, :mod:`.blocking`, :mod:`.languages` and :mod:`.delivery` (what was
queued, after the commit). Their SQL is in :mod:`bot.db.queries` (episodes, updates, answers).
"""

from bot.services.conversation.blocking import mark_blocked, unblock
from bot.services.conversation.delivery import apologise, flush, send_still_owed
from bot.services.conversation.envelope import (
    already_processed,
    handle_button,
    handle_edit,
    handle_media,
    handle_start,
    handle_text,
)
from bot.services.conversation.languages import (
    default_protocol,
    guess_language,
    interface_languages,
    unknown_chat_text,
)
from bot.services.conversation.prompts import resume
from bot.services.conversation.stop import stop_episode
from bot.services.conversation.turn import Outbox, Reply, Turn

__all__ = [
    "Outbox",
    "Reply",
    "Turn",
    "already_processed",
    "apologise",
    "default_protocol",
    "flush",
    "guess_language",
    "handle_button",
    "handle_edit",
    "handle_media",
    "handle_start",
    "handle_text",
    "interface_languages",
    "mark_blocked",
    "resume",
    "send_still_owed",
    "stop_episode",
    "unblock",
    "unknown_chat_text",
]
