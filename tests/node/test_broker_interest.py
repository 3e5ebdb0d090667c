"""The node asks its broker for a channel exactly while a local client needs it.

`Node.hub_subscribe` and `Node.broker_release` skip the channel's lock when there is nothing
to do (already delivered here; others still subscribed). These tests hold the broker's
subscribe and unsubscribe open (they wait on events the test sets) so that subscribes and
releases interleave at every await, and check where each interleaving ends: the broker
delivers the channel if and only if a local client holds it, it was asked once, and no
per-channel lock is left behind.
"""

from __future__ import annotations

import asyncio

from rotary.engines.memory.broker import MemoryBroker
from rotary.node.node import Node
from tests.node.conftest import MakeHarness

CHANNEL = "news"


class _SlowBroker:
    """Wraps the node's memory broker: subscribe/unsubscribe wait for the test's go-ahead."""

    def __init__(self, inner: MemoryBroker) -> None:
        self.inner = inner
        # The memory broker's own methods, taken before the node's are replaced by these.
        self._subscribe, self._unsubscribe = inner.subscribe, inner.unsubscribe
        self.calls: list[str] = []
        self.release_subscribe = asyncio.Event()
        self.release_unsubscribe = asyncio.Event()

    async def subscribe(self, channel: str) -> None:
        self.calls.append(f"subscribe {channel}")
        await self.release_subscribe.wait()
        await self._subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.calls.append(f"unsubscribe {channel}")
        await self.release_unsubscribe.wait()
        await self._unsubscribe(channel)

    def delivers(self, channel: str) -> bool:
        return channel in self.inner._subscribed


async def _node(make_harness: MakeHarness) -> tuple[Node, _SlowBroker]:
    node = (await make_harness()).node
    slow = _SlowBroker(node.broker)  # type: ignore[arg-type]
    node.broker.subscribe = slow.subscribe  # type: ignore[method-assign]
    node.broker.unsubscribe = slow.unsubscribe  # type: ignore[method-assign]
    return node, slow


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def _leave(node: Node, client: str) -> None:
    node.hub.remove(CHANNEL, client)
    await node.broker_release(CHANNEL)


async def test_two_clients_subscribing_at_once_ask_the_broker_once(
    make_harness: MakeHarness,
) -> None:
    node, broker = await _node(make_harness)
    first = asyncio.create_task(node.hub_subscribe(CHANNEL, "a"))
    second = asyncio.create_task(node.hub_subscribe(CHANNEL, "b"))
    await _settle()
    assert not first.done() and not second.done()  # the second waits for the first's subscribe
    broker.release_subscribe.set()
    await asyncio.gather(first, second)
    assert broker.calls == [f"subscribe {CHANNEL}"]
    assert broker.delivers(CHANNEL)
    await node.hub_subscribe(CHANNEL, "c")  # already delivered: no broker call, no lock
    assert broker.calls == [f"subscribe {CHANNEL}"]
    assert node._gates == {}


async def test_a_client_leaving_while_another_holds_the_channel_keeps_it(
    make_harness: MakeHarness,
) -> None:
    node, broker = await _node(make_harness)
    broker.release_subscribe.set()
    await node.hub_subscribe(CHANNEL, "a")
    await node.hub_subscribe(CHANNEL, "b")  # delivered already: no broker call
    await _leave(node, "a")  # b still holds it: nothing to release
    assert broker.delivers(CHANNEL)
    assert broker.calls == [f"subscribe {CHANNEL}"]
    broker.release_unsubscribe.set()
    await _leave(node, "b")
    assert not broker.delivers(CHANNEL)
    assert broker.calls == [f"subscribe {CHANNEL}", f"unsubscribe {CHANNEL}"]
    assert node._gates == {}


async def test_a_subscribe_during_the_last_release_subscribes_again_after_it(
    make_harness: MakeHarness,
) -> None:
    node, broker = await _node(make_harness)
    broker.release_subscribe.set()
    await node.hub_subscribe(CHANNEL, "a")
    releasing = asyncio.create_task(_leave(node, "a"))
    await _settle()  # the release holds the lock, waiting for the broker's unsubscribe
    joining = asyncio.create_task(node.hub_subscribe(CHANNEL, "b"))
    await _settle()
    assert not joining.done()
    broker.release_unsubscribe.set()
    await asyncio.gather(releasing, joining)
    assert broker.delivers(CHANNEL)
    assert broker.calls == [
        f"subscribe {CHANNEL}",
        f"unsubscribe {CHANNEL}",
        f"subscribe {CHANNEL}",
    ]
    assert node._gates == {}


async def test_a_client_leaving_during_the_first_subscribe_does_not_undo_it(
    make_harness: MakeHarness,
) -> None:
    node, broker = await _node(make_harness)
    first = asyncio.create_task(node.hub_subscribe(CHANNEL, "a"))
    await _settle()  # a's broker subscribe is in flight, holding the lock
    node.hub.add_pending(CHANNEL, "b")
    await _leave(node, "b")  # a is pending: the release has nothing to do, and does not wait
    assert not first.done()
    broker.release_subscribe.set()
    await first
    assert broker.delivers(CHANNEL)
    assert broker.calls == [f"subscribe {CHANNEL}"]
    assert node._gates == {}


async def test_a_failed_subscribe_leaves_nothing_behind(make_harness: MakeHarness) -> None:
    node, broker = await _node(make_harness)

    async def failing(channel: str) -> None:
        broker.calls.append(f"subscribe {channel}")
        raise ConnectionError("broker down")

    node.broker.subscribe = failing  # type: ignore[method-assign]
    node.hub.add_pending(CHANNEL, "a")
    try:
        await node.hub_subscribe(CHANNEL, "a")
    except ConnectionError:
        pass
    else:
        raise AssertionError("the broker's error must reach the subscriber")
    await _leave(node, "a")
    assert not broker.delivers(CHANNEL)
    assert node._gates == {}
