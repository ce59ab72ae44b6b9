"""Who holds a claim on a row (a check-in being sent, a message owed), and whether it is dead.

A claim is ``host:pid:start``. When its holder is a process of this host that is gone (or whose
pid now belongs to a younger process), its claims are taken over at once instead of waiting for
them to go stale: a restarted bot sends what its killed predecessor was sending.

Claims live in **real time**, whatever the service clock does (``CLOCK_SPEED``, see
:mod:`bot.clock`): they protect against a process that died or hangs, and a process dies in
real seconds. A claim is dated with :func:`claim_time` and is stale when older than
:func:`stale_before`; a claim stored as a service-clock instant (an alert's next delivery
moved forward) is held with :func:`hold_until`. On a rehearsal at 3,600 times real speed, a
30-second claim measured on the service clock would go stale after 8 ms and a live process's
messages would be taken over and sent twice.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

import psutil

from bot.clock import Clock


def claim_time(clock: Clock) -> datetime:
    """When a claim is made: real time (stored in ``claimed_at`` columns)."""
    return clock.wall_now()


def stale_before(clock: Clock, age: timedelta) -> datetime:
    """A claim dated before this (see :func:`claim_time`) is ``age`` old in real time."""
    return clock.wall_now() - age


def hold_until(clock: Clock, hold: timedelta) -> datetime:
    """The service-clock instant ``hold`` of real time from now, for a claim kept in a
    service-clock column (compared with ``clock.now()``)."""
    return clock.after_real(hold)


def process_identity() -> str:
    """``host:pid:start`` of this process, the ``claimed_by`` of its claims.

    The start time tells a dead holder from a live process that got the same pid later (pid 1
    in a restarted container), so a restarted bot releases its predecessor's claims at once.
    """
    me = psutil.Process()
    return f"{socket.gethostname()}:{me.pid}:{int(me.create_time())}"


def holder_is_dead(holder: str) -> bool:
    """True when ``holder`` (a :func:`process_identity`) was a process of this host that is gone.

    Holders on other hosts cannot be checked: their claims wait for :data:`STALE_CLAIM`.
    """
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname():
        return False
    try:
        pid, started = int(parts[1]), int(parts[2])
    except ValueError:
        return False
    try:
        process = psutil.Process(pid)
        return process.status() == psutil.STATUS_ZOMBIE or int(process.create_time()) != started
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # not ours to inspect: let STALE_CLAIM decide
        return False
