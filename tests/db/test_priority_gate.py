"""The priority gate the conversation's transactions pass (bot/db/priority.py): urgent work
first, and no ordinary turn let in while an urgent one is inside. Orders, never durations."""

from __future__ import annotations

import asyncio

from bot.db.priority import PriorityGate, urgent_work


async def test_an_urgent_waiter_is_let_in_before_the_ordinary_ones_queued_before_it() -> None:
    gate = PriorityGate(1)
    order: list[str] = []
    await gate.acquire()  # an ordinary holder

    async def enter(name: str, *, urgent: bool) -> None:
        with urgent_work(urgent):
            async with gate.slot():
                order.append(name)

    tasks = [asyncio.create_task(enter(f"ordinary-{i}", urgent=False)) for i in range(3)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(enter("urgent", urgent=True)))
    while gate.waiting < 4:  # noqa: ASYNC110 - no event for it
        await asyncio.sleep(0.001)
    gate.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["urgent", "ordinary-0", "ordinary-1", "ordinary-2"]


async def test_no_ordinary_holder_is_let_in_while_an_urgent_one_is_inside() -> None:
    gate = PriorityGate(2)
    order: list[str] = []
    with urgent_work():
        await gate.acquire()  # an urgent holder; one place is still free

    async def ordinary(name: str) -> None:
        async with gate.slot():
            order.append(name)

    waiting = asyncio.create_task(ordinary("ordinary"))
    while gate.waiting < 1:  # noqa: ASYNC110 - no event for it
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.05)
    assert order == []  # the free place is kept while urgent work runs
    gate.release(urgent=True)
    await asyncio.wait_for(waiting, 5)
    assert order == ["ordinary"]
