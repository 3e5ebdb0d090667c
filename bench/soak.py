"""`soak`: many connections churning for a while; does anything leak?

One Rotary server (memory engine, presence on). N clients connect and subscribe to one of
50 channels: `bench fanout`'s picows clients (`bench.clients`), spread over the load worker
processes (`bench.worker`), each answering the server's pings. Then for the run's length,
every second, each worker makes about 10 % a minute of its clients disconnect and come back
and as many move to another channel (unsubscribe, subscribe), while the parent process sends
20 publications through the HTTP API and samples the server's RSS every 5 s.

Figures: RSS drift after warm-up (the last sample against the first one after 20 % of the
run: ≤ 5 % is the target), and, once every client has left: open descriptors and the
node's clients, users, channels and subscriptions against their values before any client
came (all must return).

Sizes: quick 300 clients for 20 s; full BENCH_SOAK_CLIENTS (2,000) for BENCH_SOAK_SECONDS
(600). The documented run uses as many clients as the open-file limit allows (about
15,000 here): set BENCH_SOAK_CLIENTS.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from typing import Any

import aiohttp
import orjson

from bench import progress
from bench.clients import OpenSpec, RotaryClient, Tally, open_clients
from bench.common import API_KEY, SECRET, ServerProcess, rss_kb
from bench.servers import ROTARY_STANDARD, start_rotary_with, ws_path
from bench.worker import shared_pool

__all__ = ["run", "soak", "soak_churn", "soak_open"]

_CHANNELS = 50
_SAMPLE_S = 5.0
_PUBLISH_PER_S = 20
#: Connections a worker opens at once (the server's listen backlog is 128).
_IN_FLIGHT = 100
#: Seconds the workers may take to open every client (and to close them at the end).
_OPEN_TIMEOUT = 300.0


def run(*, quick: bool) -> dict[str, Any]:
    """Run the soak; see the module docstring."""
    clients = 300 if quick else int(os.environ.get("BENCH_SOAK_CLIENTS", "2000"))
    seconds = 20.0 if quick else float(os.environ.get("BENCH_SOAK_SECONDS", "600"))
    progress.expect(1)
    progress.note(f"soak: {clients} clients for {seconds:.0f} s")
    result = soak(clients, seconds)
    progress.step()
    return result


def soak(clients: int, seconds: float) -> dict[str, Any]:
    """One soak of `clients` for `seconds` against a fresh server; the scenario's result."""
    server = start_rotary_with({**ROTARY_STANDARD, "presence": True})
    try:
        before = _state(server)
        dropped: Counter[str] = Counter()
        samples = asyncio.run(_soak(server, clients, seconds, dropped))
        after = _settled_state(server, before)
    finally:
        server.stop()
    return _result(clients, seconds, samples, before, after, dropped)


def _state(server: ServerProcess) -> dict[str, int]:
    """Open descriptors and the node's counts, now."""
    info = _api(server, "info")["result"]["nodes"][0]
    counts = {k: int(info[k]) for k in ("num_clients", "num_users", "num_channels", "num_subs")}
    return {"fds": len(os.listdir(f"/proc/{server.pid}/fd")), **counts}


def _settled_state(server: ServerProcess, before: dict[str, int]) -> dict[str, int]:
    """The state once it returned to `before`, or as it is after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        now = _state(server)
        if now == before or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def _api(server: ServerProcess, method: str, params: dict[str, Any] | None = None) -> Any:
    import urllib.request

    request = urllib.request.Request(
        server.url(f"/api/{method}", scheme="http"),
        data=orjson.dumps(params or {}),
        headers={"X-API-Key": API_KEY},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return orjson.loads(response.read())


async def _soak(
    server: ServerProcess, count: int, seconds: float, dropped: Counter[str]
) -> list[tuple[float, int]]:
    """Open `count` clients on the load workers, churn them for `seconds` while this process
    publishes and samples the server's RSS; add what the workers saw cut to `dropped`."""
    pool = shared_pool()
    exp = int(time.time()) + 7200
    pool.spread(f"{__name__}:soak_open", count, url=server.url(ws_path("rotary")), exp=exp)
    await asyncio.to_thread(pool.collect, _OPEN_TIMEOUT)
    pool.spread(f"{__name__}:soak_churn", count, seconds=seconds)
    samples = await _publish_and_sample(server, seconds)
    for reply in await asyncio.to_thread(pool.collect, seconds + _OPEN_TIMEOUT):
        dropped.update(reply["dropped"])
    return samples


async def _publish_and_sample(server: ServerProcess, seconds: float) -> list[tuple[float, int]]:
    """Every second for `seconds`: `_PUBLISH_PER_S` publications through the HTTP API; the
    server's RSS every `_SAMPLE_S`, and once more at the end."""
    publish = server.url("/api/publish", scheme="http")
    samples: list[tuple[float, int]] = []
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        next_sample = started
        while (elapsed := time.monotonic() - started) < seconds:
            tick = asyncio.create_task(asyncio.sleep(1.0))
            if time.monotonic() >= next_sample:
                samples.append((round(elapsed, 1), rss_kb(server.pid)))
                next_sample += _SAMPLE_S
            for n in range(_PUBLISH_PER_S):
                body = orjson.dumps({"channel": f"soak{n % _CHANNELS}", "data": {"n": n}})
                async with session.post(publish, data=body, headers={"X-API-Key": API_KEY}) as r:
                    await r.read()
            await tick
        samples.append((round(time.monotonic() - started, 1), rss_kb(server.pid)))
    return samples


class _Slot:
    """One soak client of a worker: its index (user u<index>), channel and connection."""

    def __init__(self, index: int, channel: str) -> None:
        self.index, self.channel = index, channel
        self.client: RotaryClient | None = None


class _Churner:
    """A worker's share of the soak clients, churned once a second.

    A connection the server closes on its own (not this churn) is counted in `dropped` by
    its close code and opened again when the churn next picks its slot, so one dropped
    client never ends the soak; the figures say how many there were and why.
    """

    def __init__(self, url: str, exp: int, slots: list[_Slot]) -> None:
        self.url, self.exp, self.slots = url, exp, slots
        self.tally = Tally()
        self.dropped: Counter[str] = Counter()

    async def open(self, slots: list[_Slot]) -> None:
        """Connect and subscribe every slot of `slots`, `_IN_FLIGHT` at a time; a failure
        is counted and leaves the slot empty."""
        gate = asyncio.Semaphore(_IN_FLIGHT)

        async def one(slot: _Slot) -> None:
            spec = OpenSpec("rotary", self.url, slot.index, 1, (slot.channel,), SECRET, self.exp)
            opened: list[Any] = []
            async with gate:
                result = await open_clients(spec, self.tally, opened)
            if result.failures:
                self.dropped[f"open failed: {result.failures[0][:60]}"] += 1
            slot.client = opened[0] if opened and not result.failures else None

        await asyncio.gather(*(one(slot) for slot in slots))

    def sweep(self) -> None:
        """Count the clients the server closed since the last sweep; empty their slots."""
        for slot in self.slots:
            if slot.client is not None and slot.client.closed:
                self.dropped[f"closed by the server: {slot.client.close_code}"] += 1
                slot.client = None

    async def one_second(self) -> None:
        """About 10 % of the clients a minute leave and come back; as many move channel."""
        tick = asyncio.create_task(asyncio.sleep(1.0))
        self.sweep()
        churn = max(1, round(len(self.slots) * 0.10 / 60))
        leaving = random.sample(self.slots, churn)
        for slot in leaving:
            self.leave(slot)
        await self.open(leaving)
        for slot in random.sample(self.slots, churn):
            await self.move(slot)
        await tick

    async def move(self, slot: _Slot) -> None:
        """Unsubscribe and subscribe to another channel (connecting first if dropped)."""
        if slot.client is None:
            await self.open([slot])
            if slot.client is None:
                return
        old, slot.channel = slot.channel, f"soak{random.randrange(_CHANNELS)}"
        slot.client.send_commands(
            {"unsubscribe": {"channel": old}}, {"subscribe": {"channel": slot.channel}}
        )

    def leave(self, slot: _Slot) -> None:
        """The slot's client leaves; one the server already closed is counted as dropped
        (the churn may pick it before a sweep has seen it)."""
        client, slot.client = slot.client, None
        if client is None:
            return
        if client.closed:
            self.dropped[f"closed by the server: {client.close_code}"] += 1
        elif client.transport is not None:
            client.transport.disconnect()

    async def leave_all(self) -> None:
        self.sweep()
        clients = [s.client for s in self.slots if s.client is not None]
        for slot in self.slots:
            self.leave(slot)
        waits = [c.transport.wait_disconnected() for c in clients if c.transport is not None]
        if waits:
            await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=20)


#: A worker's churner from `soak_open` to the end of `soak_churn` (one soak at a time).
_churner: _Churner | None = None


async def soak_open(*, url: str, exp: int, start: int, count: int) -> dict[str, Any]:
    """In a load worker: connect clients `start`…, each subscribed to one of the channels."""
    global _churner
    slots = [_Slot(i, f"soak{i % _CHANNELS}") for i in range(start, start + count)]
    _churner = _Churner(url, exp, slots)
    await _churner.open(slots)
    return {"opened": sum(1 for s in slots if s.client is not None)}


async def soak_churn(*, seconds: float, start: int, count: int) -> dict[str, Any]:
    """In a load worker: churn the clients `soak_open` opened for `seconds`, then close
    them all; what the server cut (and what failed to open), by reason."""
    global _churner
    churner, _churner = _churner, None
    if churner is None:
        raise RuntimeError("soak_churn without soak_open")
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        await churner.one_second()
    await churner.leave_all()
    return {"dropped": dict(churner.dropped)}


def _result(
    clients: int,
    seconds: float,
    samples: list[tuple[float, int]],
    before: dict[str, int],
    after: dict[str, int],
    dropped: Counter[str],
) -> dict[str, Any]:
    warm = next((kb for t, kb in samples if t >= seconds * 0.2), samples[0][1])
    drift = round((samples[-1][1] - warm) / warm * 100, 2) if warm else None
    figures: dict[str, Any] = {
        "soak_clients": clients,
        "soak_seconds": seconds,
        "soak_rss_after_warmup_kb": warm,
        "soak_rss_last_kb": samples[-1][1],
        "soak_rss_drift_pct": drift,
        "soak_dropped_by_server": sum(dropped.values()),
    }
    for key in before:
        figures[f"soak_{key}_before"] = before[key]
        figures[f"soak_{key}_after"] = after[key]
    curve = {
        "x": [t for t, _ in samples],
        "y": [kb / 1024 for _, kb in samples],
        "xlabel": "seconds",
        "ylabel": "server RSS (MB)",
    }
    raw = {"samples": samples, "dropped": dict(dropped)}
    return {"figures": figures, "curves": {"soak_rss": curve}, "json": raw}
