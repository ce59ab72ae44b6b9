"""Several bot processes on one token: one polls, the others dispatch and stand by.

Telegram allows one getUpdates consumer per token: a second one gets 409 Conflict and ends the
first one's long poll, so two pollers take turns failing. Here the process holding the polling
lease (bot/db/lease.py, a PostgreSQL advisory lock) is the only one calling getUpdates; every
process runs the dispatcher (check-ins, owed messages, alerts: their rows are claimed with
``FOR UPDATE SKIP LOCKED``). A follower tries to take the lease every :data:`LEASE_RETRY`
seconds, so when the leader dies (SIGKILL, out of memory) one of them polls within a few
seconds, from the last offset the dead leader confirmed: nothing it had not finished is lost.
The leader checks its lease as often; if the lease's connection broke, another process may
poll already, and this one stops polling at once, without a last getUpdates.

Webhook mode needs none of this: Telegram posts each update once, to whichever process the
load balancer picks, and every process may answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from telegram.ext import Application

from bot.db.lease import PollingLease
from bot.services.inbox import Inbox
from bot.telegram.intake import UpdateIntake
from bot.telegram.polling import ConfirmingPoller

log = structlog.get_logger(__name__)

#: Seconds between a follower's attempts to take the lease (and the leader's checks of it).
LEASE_RETRY = 1.0


class PollingLeadership:
    """``await start()`` after ``application.start()``; ``await stop()`` before stopping it."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        intake: UpdateIntake,
        lease: PollingLease,
        *,
        inbox: Inbox | None = None,
        retry: float = LEASE_RETRY,
    ) -> None:
        self._application = application
        self._intake = intake
        self._lease = lease
        self._inbox = inbox
        self._retry = retry
        self._task: asyncio.Task[None] | None = None
        self._trouble: str | None = None
        #: The poller while this process holds the lease (None while it follows).
        self.poller: ConfirmingPoller | None = None

    @property
    def role(self) -> str:
        """``leader`` (polls) or ``follower`` (dispatches, waits for the lease)."""
        return "leader" if self.poller is not None else "follower"

    @property
    def running(self) -> bool:
        """True while this process either polls or keeps trying to take the lease."""
        if self.poller is not None:
            return self.poller.running
        return self._task is not None and not self._task.done()

    @property
    def problem(self) -> str | None:
        """Why updates do not come in, for ``/healthz``: a follower has none (the leader polls)."""
        if self.poller is not None:
            return self.poller.problem or (None if self.poller.running else "polling stopped")
        if self._trouble is not None:
            return self._trouble
        return None if self.running else "polling lease not watched"

    async def start(self) -> None:
        """Take the lease if it is free and poll; follow otherwise. A first poll that cannot
        start (Telegram refuses the token) raises, as a lone process always did."""
        if await self._lease.try_take():
            try:
                await self._lead()
            except BaseException:
                await self._lease.release()
                raise
        else:
            log.info("polling_lease_held_elsewhere")
        self._task = asyncio.create_task(self._watch(), name="polling-lease")

    async def stop(self) -> None:
        """Stop polling (confirming what is done), then give the lease up."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        poller, self.poller = self.poller, None
        if poller is not None:
            await poller.stop()
        await self._lease.release()

    async def _lead(self) -> None:
        poller = ConfirmingPoller(self._application, self._intake, self._inbox)
        await poller.start()
        self.poller = poller
        log.info("polling_lease_taken")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._retry)
            try:
                if self.poller is None:
                    if await self._lease.try_take():
                        await self._lead()
                elif not await self._lease.still_held():
                    log.error(
                        "polling_lease_lost", action="stopped polling; trying to take it again"
                    )
                    poller, self.poller = self.poller, None
                    await poller.stop(confirm=False)
                self._trouble = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._trouble is None:
                    log.warning("polling_lease_unavailable", error=type(exc).__name__)
                self._trouble = f"polling lease: {type(exc).__name__}"
                if self.poller is None and self._lease.held:
                    await self._lease.release()  # took the lease but could not start polling
