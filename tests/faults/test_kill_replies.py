"""SIGKILL of the bot process (``python -m bot run``) while it handles a burst of patients'
answers, then a restart: no answer lost, none saved twice.

Telegram forgets an update once a later getUpdates asks for a higher offset. PTB's own Updater
asks again as soon as it has queued a batch, before the handlers ran; with it, this test lost
29 of 30 answers. The bot polls with :class:`bot.telegram.polling.ConfirmingPoller`, which asks
for the next offset only when the batch was handled: everything the killed process had not
finished is delivered again, and the recorded ``update_id`` of what it had saved makes the
redelivery harmless (no duplicate answer, no second reply).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli.commands import offline_context
from bot.db.models import Answer, Episode, InboxUpdate, Patient
from bot.domain.protocol import Indication, KneeSide
from bot.sandbox.fake_api import FakeTelegramServer
from bot.services import enrolment
from tests import harness as h

pytestmark = [pytest.mark.fault, pytest.mark.slow]

TOKEN = "123456:" + "K" * 35
PATIENTS = 30


def _bot_process(
    database: h.TestDatabase, server: FakeTelegramServer, cwd: Path, *, webhook_port: int = 0
) -> subprocess.Popen[bytes]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "DATABASE_", "STAFF_", "WEBHOOK_", "METRICS_"))
    }
    env.update(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": server.api_base_url,
            "DATABASE_URL": database.url,
            "DATABASE_SCHEMA": database.schema or "",
            "STAFF_CHAT_ID": str(h.STAFF_CHAT),
            "STAFF_USER_IDS": str(h.NURSE),
            "ALLOW_UNAPPROVED_PROTOCOL": "true",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
            "MEDIA_DIR": str(cwd / "media"),
        }
    )
    if webhook_port:
        env.update(
            {
                "WEBHOOK_URL": f"http://127.0.0.1:{webhook_port}/hook",
                "WEBHOOK_SECRET": "kill-test-secret",
                "WEBHOOK_LISTEN": f"127.0.0.1:{webhook_port}",
            }
        )
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", *(["--webhook"] if webhook_port else [])],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _baselines(
    database: h.TestDatabase, server: FakeTelegramServer, tmp_path: Path
) -> dict[int, int]:
    settings = h.test_settings(database, server, tmp_path)
    async with offline_context(settings) as ctx, ctx.sessions() as session:
        rows = await session.execute(
            select(Patient.chat_id, func.count(Answer.id))
            .join(Episode, Episode.patient_id == Patient.id)
            .join(Answer, Answer.episode_id == Episode.id)
            .where(Answer.question_id == "baseline")
            .group_by(Patient.chat_id)
        )
        return {int(chat): int(count) for chat, count in rows}


async def _kept(database: h.TestDatabase, server: FakeTelegramServer, tmp_path: Path) -> set[int]:
    """The update ids in the polling inbox (fetched and confirmed, not yet handled)."""
    settings = h.test_settings(database, server, tmp_path)
    async with offline_context(settings) as ctx, ctx.sessions() as session:
        return set(await session.scalars(select(InboxUpdate.update_id)))


async def _enrol(
    database: h.TestDatabase, server: FakeTelegramServer, tmp_path: Path, *, prefix: str
) -> list[str]:
    """Enrol :data:`PATIENTS` patients (procedure tomorrow); their deep-link tokens."""
    settings = h.test_settings(database, server, tmp_path)
    tokens = []
    async with offline_context(settings) as ctx:
        protocol = ctx.protocols.registry.latest("knee-cryoneurolysis")
        for i in range(PATIENTS):
            invitation = await enrolment.enrol(
                ctx,
                label=f"{prefix}-{i:03d}",
                procedure_at=datetime.now(h.PARIS) + timedelta(days=1),
                side=KneeSide.LEFT,
                indication=Indication.OSTEOARTHRITIS,
                language="fr",
                protocol=protocol,
            )
            tokens.append(invitation.token)
    return tokens


async def test_sigkill_during_replies_loses_no_answer_and_duplicates_none(
    database: h.TestDatabase, tmp_path: Path
) -> None:
    server = FakeTelegramServer(bot_token=TOKEN)
    await server.start()
    server.add_group(h.STAFF_CHAT)
    users = [4000 + i for i in range(PATIENTS)]
    tokens = await _enrol(database, server, tmp_path, prefix="K")
    bot = _bot_process(database, server, tmp_path)
    try:
        for user, token in zip(users, tokens, strict=True):
            server.add_user(user)
            server.send_text(user, f"/start {token}")
        for user in users:
            consent = (await server.wait_for_count(1, chat_id=user, timeout=60))[0]
            server.press_button(user, consent.message_id, consent.button_data("J'accepte"))
        questions = {}
        for user in users:
            questions[user] = (await server.wait_for_count(2, chat_id=user, timeout=60))[1]

        # The burst: everyone answers at once; kill the bot while it is replying.
        taps = {
            user: server.press_button(user, questions[user].message_id, "b:5")["update_id"]
            for user in users
        }
        await server.wait_for(lambda m: "Votre suivi a commencé" in (m.text or ""), timeout=60)
        bot.send_signal(signal.SIGKILL)
        bot.wait(10)
        pending = {e.update_id for e in server._pending}  # not confirmed: will be redelivered
        fetched = {uid for uid in taps.values() if server._all_updates[uid].delivered}
        confirmed = {uid for uid in taps.values() if uid not in pending}
        # What the killed process confirmed is saved, or kept in the inbox for the next one.
        saved_at_kill = await _baselines(database, server, tmp_path)
        kept_at_kill = await _kept(database, server, tmp_path)
        in_flight = {
            uid
            for user, uid in taps.items()
            if uid in confirmed and user not in saved_at_kill and uid not in kept_at_kill
        }

        bot = _bot_process(database, server, tmp_path)
        redelivered = [u for u, uid in taps.items() if uid in pending]
        saved: dict[int, int] = {}
        for _ in range(600):  # the new process handles (or skips) everything redelivered
            saved = await _baselines(database, server, tmp_path)
            if len(saved) == PATIENTS and not server.stats()["pending_updates"]:
                break
            await asyncio.sleep(0.1)
        for _ in range(300):  # and sends what is still owed (paced: 29 messages a second)
            if all(any(STARTED in (m.text or "") for m in server.sent(u)) for u in users):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # anything else the new process would (wrongly) add
        saved = await _baselines(database, server, tmp_path)
    finally:
        bot.kill()
        bot.wait(10)
        await server.stop()

    assert all(count == 1 for count in saved.values()), saved  # no duplicate answer
    lost = [user for user in users if user not in saved]
    assert lost == []
    assert fetched, "the kill came before the bot fetched the burst: nothing was tested"
    assert in_flight == set()  # nothing was confirmed before it was handled or kept
    assert await _kept(database, server, tmp_path) == set()  # every kept update was forgotten
    started = {
        user: sum("Votre suivi a commencé" in (m.text or "") for m in server.sent(user))
        for user in users
    }
    # Every patient gets the message owed to them (it used to be lost for most of them). At
    # least once: a message Telegram took just before the kill, not yet marked sent, is sent
    # again by the new process; a redelivered, already saved answer is never answered anew.
    assert min(started.values()) == 1
    assert max(started.values()) <= 2
    print(  # the measured bound, for the closing note (pytest -s)
        f"\nSIGKILL: {len(taps)} answers, {len(fetched)} fetched by the killed process, "
        f"{len(confirmed)} confirmed by it ({len(kept_at_kill)} kept in its inbox), "
        f"{len(redelivered)} redelivered, {len(lost)} lost"
    )


ADVICE = "Cela doit être vérifié aujourd'hui"
STARTED = "Votre suivi a commencé"


async def _consented(
    database: h.TestDatabase, server: FakeTelegramServer, tmp_path: Path, users: list[int]
) -> subprocess.Popen[bytes]:
    """Enrol ``users``, start the bot, let each consent and give a baseline; the running bot."""
    tokens = await _enrol(database, server, tmp_path, prefix="F")
    bot = _bot_process(database, server, tmp_path)
    for user, token in zip(users, tokens, strict=True):
        server.add_user(user)
        server.send_text(user, f"/start {token}")
    for user in users:
        consent = (await server.wait_for_count(1, chat_id=user, timeout=60))[0]
        server.press_button(user, consent.message_id, consent.button_data("J'accepte"))
    for user in users:
        question = (await server.wait_for_count(2, chat_id=user, timeout=60))[1]
        server.press_button(user, question.message_id, "b:5")
    for user in users:
        await server.wait_for(
            lambda m, u=user: m.chat_id == u and STARTED in (m.text or ""), timeout=60
        )
    return bot


def _count(server: FakeTelegramServer, user: int, needle: str) -> int:
    return sum(needle in (m.text or "") for m in server.sent(user))


async def test_sigkill_while_patients_report_a_fever_leaves_nobody_without_the_advice(
    database: h.TestDatabase, tmp_path: Path
) -> None:
    """The advice used to be sent from memory after the commit: a kill between the two left 40
    of 60 feverish patients without it (and 14 with nothing at all)."""
    server = FakeTelegramServer(bot_token=TOKEN)
    await server.start()
    server.add_group(h.STAFF_CHAT)
    users = [5000 + i for i in range(PATIENTS)]
    bot = await _consented(database, server, tmp_path, users)
    try:
        for user in users:
            server.send_text(user, "j'ai 39 de fièvre depuis ce matin")
        await server.wait_for(lambda m: ADVICE in (m.text or ""), timeout=60)
        bot.send_signal(signal.SIGKILL)
        bot.wait(10)
        before = {user: _count(server, user, ADVICE) for user in users}
        bot = _bot_process(database, server, tmp_path)
        for _ in range(600):
            if all(_count(server, user, ADVICE) for user in users):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # anything the new process would (wrongly) add
        after = {user: _count(server, user, ADVICE) for user in users}
        cards = sum("URGENT" in (m.text or "") for m in server.sent(h.STAFF_CHAT) if not m.edits)
    finally:
        bot.kill()
        bot.wait(10)
        await server.stop()
    without = [user for user in users if not after[user]]
    assert without == []
    assert sum(before.values()) < len(users), "the kill came too late: nothing was tested"
    duplicates = sum(count - 1 for count in after.values())
    assert duplicates <= 2 * 64  # at most what the killed process had in flight, sent again
    assert cards >= 1
    print(
        f"\nSIGKILL during fevers: {len(users)} patients, {sum(1 for c in before.values() if c)} "
        f"advised before the kill, {len(without)} left without advice, {duplicates} duplicates"
    )


async def test_sigkill_in_webhook_mode_loses_no_update(
    database: h.TestDatabase, tmp_path: Path
) -> None:
    """PTB's webhook answered 200 before handling: 10 of 100 updates were lost for good after a
    kill. Ours answers 200 only once the update is committed."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = FakeTelegramServer(bot_token=TOKEN)
    await server.start()
    server.add_group(h.STAFF_CHAT)
    users = [6000 + i for i in range(PATIENTS)]
    tokens = await _enrol(database, server, tmp_path, prefix="W")
    bot = _bot_process(database, server, tmp_path, webhook_port=port)
    try:
        for user, token in zip(users, tokens, strict=True):
            server.add_user(user)
            server.send_text(user, f"/start {token}")
        await server.wait_for(lambda m: m.chat_id in users, timeout=60)
        half = PATIENTS // 2
        await server.wait_for(lambda _m: server.stats()["webhook_deliveries"] >= half, timeout=60)
        bot.send_signal(signal.SIGKILL)
        bot.wait(10)
        answered_before = server.stats()["webhook_deliveries"]
        bot = _bot_process(database, server, tmp_path, webhook_port=port)
        for user in users:  # every patient gets the consent question, once
            await server.wait_for_count(1, chat_id=user, timeout=90)
        await asyncio.sleep(1.0)
    finally:
        bot.kill()
        bot.wait(10)
        await server.stop()
    consents = {user: _count(server, user, "Acceptez-vous ce suivi") for user in users}
    assert min(consents.values()) == 1  # nobody lost
    assert answered_before < PATIENTS, "the kill came after everything: nothing was tested"
    print(
        f"\nSIGKILL in webhook mode: {PATIENTS} updates, {answered_before} answered 200 before "
        f"the kill, 0 lost, {sum(c - 1 for c in consents.values())} duplicates"
    )
