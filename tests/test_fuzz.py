"""Bad input: hypothesis throws random updates at every handler through the real stack (fake
server → PTB polling → handlers → database): odd unicode, huge texts, optional fields missing,
unknown or forged button data (another patient's check-in, another patient's alert), media,
edits, commands, strangers and non-staff members of the staff chat.

After every example: no handler raised, the other patient's data and chat are untouched, and
every saved answer belongs to the patient who sent it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.db.models import Alert, Answer, CheckIn, Episode, Patient
from tests.faults.support import ErrorRecorder, describe
from tests.harness import PARIS, STAFF_CHAT, BotHarness

VICTIM, FUZZER, STRANGER, INTRUDER = 1001, 1002, 3003, 6006

pytestmark = pytest.mark.slow

# Telegram never sends lone surrogates (they cannot be encoded in JSON as UTF-8).
unicode_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=0, max_size=40)
huge_text = st.builds(
    lambda s, k: (s * k)[:12_000], st.text(min_size=1, max_size=8), st.integers(500, 3000)
)
commands = st.sampled_from(
    [
        "/start",
        "/start bogus-token",
        "/help",
        "/next",
        "/language",
        "/stop",
        "/mydata",
        "/delete",
        "/enroll P-9 2026-12-01",
        "/patient P-VICTIM",
        "/nonsense",
    ]
)
texts = st.one_of(unicode_text, huge_text, commands, st.sampled_from(["9", "oui", "10/10", "-1"]))
numbers = st.sampled_from([0, 1, -1, 7, 2**31, 2**63, 10**30])


@st.composite
def button_data(draw: st.DrawFn, ids: dict[str, int]) -> str:
    """Unknown, malformed and forged callback data (other patient's check-in and alert)."""
    checkin = draw(st.sampled_from([ids["victim_checkin"], ids["fuzzer_checkin"]]) | numbers)
    question = draw(st.integers(-1, 12) | numbers)
    value = draw(st.sampled_from(["0", "4", "9", "10", "11", "s", "-1", "x", ""]))
    forged = draw(
        st.sampled_from(
            [
                f"a:{checkin}:{question}:{value}",
                f"t:{checkin}:{question}:{value}",
                f"d:{checkin}:{question}",
                f"n:{checkin}:{question}",
                f"k:{ids['victim_alert']}",
                f"r:{ids['victim_alert']}",
                f"k:{draw(numbers)}",
                "c:y",
                "c:n",
                f"b:{value}",
                "f:fever:y",
                "f::y",
                "x:y",
                "e:y",
                "l:en",
                "l:zz",
                f"se:{draw(numbers)}",
            ]
        )
    )
    raw = draw(st.text(max_size=64).filter(lambda s: 0 < len(s.encode()) <= 64))
    return draw(st.sampled_from([forged, raw]))


def action(ids: dict[str, int]) -> st.SearchStrategy[tuple[Any, ...]]:
    """One thing a user does."""
    who = st.sampled_from([FUZZER, FUZZER, STRANGER])
    return st.one_of(
        st.tuples(st.just("text"), who, texts),
        st.tuples(st.just("press"), st.just(FUZZER), button_data(ids)),
        st.tuples(st.just("staff_press"), st.just(INTRUDER), button_data(ids)),
        st.tuples(st.just("staff_text"), st.just(INTRUDER), texts),
        st.tuples(st.just("edit"), st.just(FUZZER), texts),
        st.tuples(
            st.just("media"),
            who,
            st.sampled_from(["photo", "voice", "video", "sticker", "document", "location"]),
            st.none() | unicode_text,
        ),
        st.tuples(
            st.just("raw"),
            st.just(FUZZER),
            st.sampled_from(["no_from", "no_content", "callback_no_message", "callback_no_data"]),
            unicode_text,
        ),
    )


class Fuzzer:
    """Applies actions through the fake server and checks the invariants after each example."""

    def __init__(self, harness: BotHarness, ids: dict[str, int], errors: ErrorRecorder) -> None:
        self.harness = harness
        self.ids = ids
        self.errors = errors
        self.last_text: int | None = None
        self.fuzzer_question: int = ids["fuzzer_message"]
        self.card: int = ids["card_message"]

    def _apply(self, step: tuple[Any, ...]) -> None:
        server = self.harness.server
        kind, user = step[0], step[1]
        if kind == "text":
            update = server.send_text(user, step[2] or ".")
            if user == FUZZER:
                self.last_text = update["message"]["message_id"]
        elif kind == "press":
            server.press_button(user, self.fuzzer_question, step[2])
        elif kind == "staff_press":
            server.press_button(user, self.card, step[2], chat_id=STAFF_CHAT)
        elif kind == "staff_text":
            server.send_text(user, step[2] or ".", chat_id=STAFF_CHAT)
        elif kind == "edit":
            if self.last_text is not None:
                server.edit_text(user, self.last_text, step[2] or ".")
        elif kind == "media":
            media, caption = step[2], step[3]
            if media == "photo":
                server.send_photo(user, caption=caption)
            elif media == "document":
                server.send_document(user, file_name=(caption or "x") + ".bin", caption=caption)
            elif media == "location":
                server.send_location(user)
            else:
                getattr(server, f"send_{media}")(user)
        else:
            self._raw(step[2], step[3])

    def _raw(self, shape: str, text: str) -> None:
        """Updates with optional fields left out (the fake server's own queue, as Telegram's)."""
        server = self.harness.server
        user = {"id": FUZZER, "is_bot": False, "first_name": "F"}
        chat = {"id": FUZZER, "type": "private"}
        if shape in ("no_from", "no_content"):
            message: dict[str, Any] = {
                "message_id": server._alloc_message_id(FUZZER),
                "date": int(time.time()),
                "chat": chat,
            }
            if shape == "no_from":
                message["text"] = text or "?"
            else:
                message["from"] = user
            server._queue_update("message", message)
            return
        query_id = str(next(server._callback_counter))
        server._open_callbacks.add(query_id)
        query: dict[str, Any] = {"id": query_id, "from": user, "chat_instance": "42"}
        if shape == "callback_no_message":
            query["inline_message_id"] = "AAA"
            query["data"] = text or "a:1:0:4"
        else:
            query["message"] = dict(server._messages[(FUZZER, self.fuzzer_question)].data)
            query["game_short_name"] = "game"
        server._queue_update("callback_query", query)

    async def snapshot(self) -> tuple[Any, ...]:
        """Everything of the victim that a stranger's update must never change."""
        async with self.harness.ctx.sessions() as session:
            episode = self.ids["victim_episode"]
            answers = describe(
                await session.execute(
                    select(Answer.id, Answer.question_id, Answer.value, Answer.status)
                    .where(Answer.episode_id == episode)
                    .order_by(Answer.id)
                )
            )
            checkins = describe(
                await session.execute(
                    select(CheckIn.id, CheckIn.status, CheckIn.question_index, CheckIn.selection)
                    .where(CheckIn.episode_id == episode)
                    .order_by(CheckIn.id)
                )
            )
            state = describe(
                await session.execute(
                    select(Episode.status, Episode.awaiting, Patient.chat_id, Patient.erased_at)
                    .join(Patient, Episode.patient_id == Patient.id)
                    .where(Episode.id == episode)
                )
            )
            alerts = describe(
                await session.execute(
                    select(Alert.id, Alert.status, Alert.acknowledged_by).where(
                        Alert.episode_id == episode
                    )
                )
            )
        victim_messages = [
            (m.message_id, m.text, m.edits) for m in self.harness.server.sent(VICTIM)
        ]
        return answers, checkins, state, alerts, victim_messages

    async def run(self, steps: list[tuple[Any, ...]], before: tuple[Any, ...]) -> None:
        """Apply one example and check every invariant."""
        for step in steps:
            self._apply(step)
        await self.harness.settle()
        assert self.errors.errors == [], steps
        assert await self.snapshot() == before, steps
        async with self.harness.ctx.sessions() as session:
            owners = set(await session.scalars(select(Answer.episode_id).distinct()))
        assert owners <= {self.ids["victim_episode"], self.ids["fuzzer_episode"]}, steps


async def _prepare(harness: BotHarness) -> dict[str, int]:
    victim = await harness.consented_patient(VICTIM, language="fr", label="P-VICTIM")
    fuzzer = await harness.consented_patient(FUZZER, language="en", label="P-FUZZ")
    harness.server.add_user(STRANGER, first_name="Stranger", language_code=None)
    harness.server.add_user(INTRUDER, first_name="Visitor", language_code="fr")
    await harness.advance_to(datetime(2026, 12, 1, 18, 0, tzinfo=PARIS))
    victim.tap(await victim.until("douleur"), "9")
    await victim.until("Du sang traverse-t-il encore le pansement")
    card = await harness.staff_message("P-VICTIM")
    question = await fuzzer.until("right now")
    await harness.settle()
    async with harness.ctx.sessions() as session:
        rows = {
            label: (episode_id, checkin_id)
            for label, episode_id, checkin_id in await session.execute(
                select(Patient.label, Episode.id, CheckIn.id)
                .join(Episode, Episode.patient_id == Patient.id)
                .join(CheckIn, CheckIn.episode_id == Episode.id)
                .where(CheckIn.status == "awaiting")
            )
        }
        alert = await session.scalar(select(Alert.id))
    assert alert is not None
    return {
        "victim_episode": rows["P-VICTIM"][0],
        "victim_checkin": rows["P-VICTIM"][1],
        "fuzzer_episode": rows["P-FUZZ"][0],
        "fuzzer_checkin": rows["P-FUZZ"][1],
        "victim_alert": alert,
        "fuzzer_message": question.message_id,
        "card_message": card.message_id,
    }


async def test_random_updates_never_crash_nor_touch_another_patient(harness: BotHarness) -> None:
    ids = await _prepare(harness)
    errors = ErrorRecorder().attach(harness)
    fuzzer = Fuzzer(harness, ids, errors)
    before = await fuzzer.snapshot()
    loop = asyncio.get_running_loop()

    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(action(ids), min_size=1, max_size=4))
    def example(steps: list[tuple[Any, ...]]) -> None:
        asyncio.run_coroutine_threadsafe(fuzzer.run(steps, before), loop).result(timeout=120)

    await asyncio.to_thread(example)
    assert harness.server.stats()["status_codes"].get("500", 0) == 0
