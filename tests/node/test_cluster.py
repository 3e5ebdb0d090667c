"""The cluster view (rotary.node.cluster): announcements, expiry, goodbyes, on a manual clock."""

from __future__ import annotations

from typing import Any

import orjson

from rotary.node.cluster import Cluster, info_message, is_cluster_message, leave_message
from rotary.testing import ManualClock
from tests.node.fakes import Harness, ManualScheduler, settle

INTERVAL = 1.0


class Bus:
    """Control messages from any member reach every member, the sender included."""

    def __init__(self) -> None:
        self.members: list[Cluster] = []
        self.down = False
        #: uids of killed members: what they send reaches nobody, nothing reaches them.
        self.dead: set[str] = set()

    async def publish(self, data: bytes) -> None:
        if self.down:
            raise ConnectionError("redis is away")
        if orjson.loads(data)["uid"] in self.dead:
            return
        for member in self.members:
            if member.uid in self.dead:
                continue
            member.receive(data)


def make_member(bus: Bus, clock: ManualClock, scheduler: ManualScheduler, name: str) -> Cluster:
    counts: dict[str, Any] = {"num_clients": 0}

    def own() -> dict[str, object]:
        return {"uid": f"uid-{name}", "name": name, **counts}

    member = Cluster(
        uid=f"uid-{name}",
        own_info=own,
        publish=bus.publish,
        clock=clock,
        scheduler=scheduler,
        interval=INTERVAL,
    )
    bus.members.append(member)
    return member


def names(member: Cluster) -> list[str]:
    return [str(info["name"]) for info in member.nodes()]


async def two_members() -> tuple[Bus, ManualScheduler, Cluster, Cluster]:
    clock = ManualClock()
    scheduler = ManualScheduler(clock)
    bus = Bus()
    a, b = make_member(bus, clock, scheduler, "a"), make_member(bus, clock, scheduler, "b")
    a.start()
    b.start()
    await settle()
    return bus, scheduler, a, b


async def test_started_nodes_list_each_other_and_themselves() -> None:
    _, _, a, b = await two_members()
    assert names(a) == ["a", "b"]
    assert names(b) == ["a", "b"]


async def test_a_node_unheard_of_for_three_intervals_leaves_the_list() -> None:
    bus, scheduler, a, b = await two_members()
    bus.dead.add(b.uid)
    await scheduler.advance(2.5 * INTERVAL)
    assert names(a) == ["a", "b"]
    await scheduler.advance(1.0 * INTERVAL)
    assert names(a) == ["a"]


async def test_a_goodbye_removes_the_node_at_once() -> None:
    _, _, a, b = await two_members()
    await b.close()
    assert names(a) == ["a"]


async def test_a_node_that_comes_back_is_listed_again_and_hears_about_the_others() -> None:
    bus, scheduler, a, b = await two_members()
    bus.dead.add(b.uid)
    await scheduler.advance(4 * INTERVAL)
    assert names(a) == ["a"]
    clock = ManualClock()
    late = make_member(bus, clock, ManualScheduler(clock), "c")
    late.start()
    await settle()
    assert names(late) == ["a", "c"]  # a answered c's first announcement at once
    assert names(a) == ["a", "c"]


async def test_announcements_that_failed_are_retried_at_the_next_interval() -> None:
    bus, scheduler, a, _ = await two_members()
    bus.down = True
    await scheduler.advance(5 * INTERVAL)
    assert names(a) == ["a"]
    bus.down = False
    await scheduler.advance(INTERVAL)
    assert names(a) == ["a", "b"]


async def test_cluster_messages_are_recognised_and_bad_ones_ignored() -> None:
    _, _, a, _ = await two_members()
    assert is_cluster_message(info_message("x", {}))
    assert is_cluster_message(leave_message("x"))
    assert not is_cluster_message(b'{"op":"disconnect","user":"u"}')
    a.receive(b'{"op":"node_info"}')
    a.receive(b'{"op":"node_info","uid":"z","info":"not an object"}')
    a.receive(b"not json")
    assert names(a) == ["a", "b"]


async def test_node_info_api_lists_the_single_node_of_the_memory_engine() -> None:
    h = Harness()
    await h.node.start()
    try:
        await h.connect(user="u1")
        await h.scheduler.advance(3 * h.node.cluster.interval)
        nodes = await h.node.api_info()
        assert [n["uid"] for n in nodes] == [h.node.uid]
        assert nodes[0]["num_clients"] == 1
    finally:
        h.node.disconnect_all()
        await h.node.close()
