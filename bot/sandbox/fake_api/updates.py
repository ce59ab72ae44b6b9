"""The queue of updates waiting for the bot, with Telegram's delivery rules: an update stays
until the client confirms it (a later offset, or the webhook's 2xx), a redelivered update
keeps its update_id, and types outside ``allowed_updates`` are never delivered."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from bot.sandbox.fake_api.wire import JSONDict, Params, as_json


@dataclass
class Pending:
    update_id: int
    update: JSONDict
    kind: str
    redelivery: bool = False
    delivered: bool = False


class UpdateQueue:
    """Updates for the bot, shared by long polling and webhook delivery.

    ``signal`` is replaced by a fresh event on every change: a waiter takes the current one,
    checks the queue, then waits on it, so no change between check and wait is missed.
    """

    def __init__(self) -> None:
        self.all: dict[int, Pending] = {}
        self.pending: deque[Pending] = deque()
        self.signal = asyncio.Event()
        self.allowed: frozenset[str] | None = None
        self.poll_generation = 0
        self._next_update_id = 1

    def reset_signal(self) -> None:
        """A fresh event, bound to the loop the server (re)starts in."""
        self.signal = asyncio.Event()

    def notify(self) -> None:
        signal_, self.signal = self.signal, asyncio.Event()
        signal_.set()

    def queue(self, kind: str, payload: JSONDict) -> JSONDict:
        """Queue a new update carrying ``payload`` under ``kind``; return the Update object."""
        update_id = self._next_update_id
        self._next_update_id += 1
        update: JSONDict = {"update_id": update_id, kind: payload}
        pending = Pending(update_id, update, kind)
        self.all[update_id] = pending
        self.pending.append(pending)
        self.notify()
        return update

    def redeliver(self, update_id: int) -> JSONDict:
        """Queue an update again with the same update_id, as Telegram does after a lost answer."""
        original = self.all.get(update_id)
        if original is None:
            raise ValueError(f"unknown update_id {update_id}")
        self.pending.append(Pending(update_id, original.update, original.kind, redelivery=True))
        self.notify()
        return original.update

    def set_allowed(self, params: Params) -> None:
        """Apply the ``allowed_updates`` of getUpdates or setWebhook, if the call gives one."""
        if params.get("allowed_updates") not in (None, ""):
            allowed = as_json(params["allowed_updates"], "allowed updates")
            if isinstance(allowed, list):
                self.allowed = frozenset(str(a) for a in allowed) or None

    @staticmethod
    def _deliverable(entry: Pending, offset: int) -> bool:
        return entry.update_id >= offset or (entry.redelivery and not entry.delivered)

    @staticmethod
    def _confirmed(entry: Pending, offset: int) -> bool:
        return entry.update_id < offset and (entry.delivered or not entry.redelivery)

    def confirm(self, offset: int) -> None:
        """Drop updates below ``offset``: the client has them (Telegram's confirmation rule)."""
        if offset > 0:
            while self.pending and self._confirmed(self.pending[0], offset):
                self.pending.popleft()
        elif offset < 0:
            keep = -offset
            while len(self.pending) > keep:
                self.pending.popleft()

    def collect(self, offset: int, limit: int) -> list[Pending]:
        """The next batch for getUpdates, without removing it (only a later offset does)."""
        batch: list[Pending] = []
        rejected = False
        allowed = self.allowed
        for entry in self.pending:
            if len(batch) >= limit:
                break
            if offset > 0 and not self._deliverable(entry, offset):
                continue
            if allowed is not None and entry.kind not in allowed:
                rejected = True
                continue
            batch.append(entry)
        if rejected and allowed is not None:
            # Telegram never delivers updates of types the bot did not ask for.
            self.pending = deque(e for e in self.pending if e.kind in allowed)
        return batch

    def next_for_webhook(self) -> Pending | None:
        """The head of the queue (webhooks deliver in order), skipping types not allowed."""
        allowed = self.allowed
        while self.pending:
            entry = self.pending[0]
            if allowed is None or entry.kind in allowed:
                return entry
            self.pending.popleft()
        return None

    def accepted(self, entry: Pending) -> None:
        """The webhook answered 2xx: the update is confirmed."""
        entry.delivered = True
        if self.pending and self.pending[0] is entry:
            self.pending.popleft()
