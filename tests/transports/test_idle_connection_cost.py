"""An idle connection costs a fixed number of tasks and objects, however many there are.

Should a connection leave anything behind per timer tick, per ping or per neighbour (a task
that never ends, a growing map), the cost per connection would grow with the number of
connections or with time; here it is measured from 10 to 20 and from 20 to 40 connections.
"""

from __future__ import annotations

import asyncio
import gc

from tests.transports.test_websocket_release import (
    _CONFIG,
    _connected_client,
    _serving,
    no_cycle_collector,  # noqa: F401 - fixture
)


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


def _counts() -> tuple[int, int]:
    return len(asyncio.all_tasks()), len(gc.get_objects())


async def test_tasks_and_objects_per_idle_connection_do_not_grow_with_their_number(
    no_cycle_collector: None,  # noqa: F811
) -> None:
    async with _serving(_CONFIG) as (node, port):
        # The first connections also fill caches made once: measure beyond them.
        clients = [await _connected_client(node, port) for _ in range(10)]
        await _settle()
        tasks_10, objects_10 = _counts()
        clients += [await _connected_client(node, port) for _ in range(10)]
        await _settle()
        tasks_20, objects_20 = _counts()
        clients += [await _connected_client(node, port) for _ in range(20)]
        await _settle()
        tasks_40, objects_40 = _counts()
        assert tasks_40 - tasks_20 == 2 * (tasks_20 - tasks_10)
        # Objects per connection: about 110 for connections 11–20, about 103 for 21–40 (the
        # test's own lists and some loop structures are amortised); they must not grow.
        per_connection = (objects_20 - objects_10) / 10
        assert (objects_40 - objects_20) / 20 <= per_connection
        # Idle for a moment: nothing accumulates per connection.
        await asyncio.sleep(0.3)
        tasks_later, objects_later = _counts()
        assert tasks_later == tasks_40
        assert abs(objects_later - objects_40) <= 40, objects_later - objects_40
        for writer, _ in clients:
            writer.close()
