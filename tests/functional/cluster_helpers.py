"""Helpers of the multi-node tests (tests/functional/test_cluster_*.py).

- `RedisProcess`: a private ``redis-server`` on a free loopback port, without persistence,
  that a test may restart or whose PUB/SUB connections it may kill without disturbing the
  shared Redis on 6379;
- `cluster_config`: a v5 flat config for nodes sharing Redis under one prefix;
- `redis_cluster_of_three`: a private three-master Redis Cluster;
- `until`: poll a condition (tests never assert timings, they wait for outcomes);
- `skip_or_fail`: skip locally, fail under CI=true (a multi-node test must never be skipped
  in CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import redis

from tests.functional.conftest import API_KEY, SECRET, ServerHandle, free_port
from tests.sdk.harness import SdkDriver, TokenFactory, open_driver

__all__ = [
    "SHARED_REDIS",
    "TOKENS",
    "RedisProcess",
    "assert_each_got_everything_once_in_order",
    "closing_ws",
    "closing_ws_fixture",
    "cluster_config",
    "node_pair_fixture",
    "pair_config",
    "publish_series",
    "received",
    "redis_cluster_of_three",
    "resubscriptions",
    "sdk_subscribers",
    "shared_redis_or_skip",
    "skip_or_fail",
    "start_node",
    "until",
]

SHARED_REDIS = "127.0.0.1:6379"
#: Short announcements so that `info` reflects joins and deaths within a second or two.
NODE_INFO_INTERVAL = "300ms"


@contextlib.asynccontextmanager
async def closing_ws(ws_connect: Any) -> AsyncIterator[Any]:
    """conftest's `ws_connect`, closing every WebSocket it opened on exit (before the
    fixture closes its session): a WebSocket left open would warn when collected later,
    in whatever test runs then."""
    opened: list[Any] = []

    async def connect(server: Any, **kwargs: Any) -> Any:
        client = await ws_connect(server, **kwargs)
        opened.append(client)
        return client

    try:
        yield connect
    finally:
        for client in opened:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await client.ws.close()


def closing_ws_fixture() -> Any:
    """A function-scoped ``ws_connect`` fixture overriding conftest's with `closing_ws`.

    Assign it in a module (``ws_connect = closing_ws_fixture()``) whose tests leave clients
    open that must be closed before the next test starts.
    """

    @pytest.fixture(name="ws_connect")
    async def _ws_connect(ws_connect: Any) -> AsyncIterator[Any]:
        async with closing_ws(ws_connect) as connect:
            yield connect

    return _ws_connect


def pair_config(prefix: str, **extra: Any) -> dict[str, Any]:
    """A v5 flat config: Redis engine under `prefix`, metrics on, private channels by token."""
    return {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "engine": "redis",
        "redis_address": SHARED_REDIS,
        "redis_prefix": prefix,
        "allow_subscribe_for_client": True,
        "prometheus": True,
        **extra,
    }


def start_node(config: dict[str, Any], folder: Path, name: str) -> ServerHandle:
    """Start one `python -m rotary` with `config`; return once ``/health`` answers."""
    cfg_path = folder / f"{name}.json"
    cfg_path.write_text(json.dumps(config))
    port = free_port()
    cmd = [sys.executable, "-m", "rotary", "-c", str(cfg_path), "--port", str(port)]
    cmd += ["--address", "127.0.0.1"]
    log_path = folder / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    handle = ServerHandle(port=port, config=config, process=proc, log_path=log_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"rotary exited early:\n{handle.log()}")
        try:
            with urllib.request.urlopen(f"{handle.http_url}/health", timeout=1):
                return handle
        except OSError:
            time.sleep(0.05)
    handle.stop()
    raise AssertionError(f"rotary did not become healthy:\n{handle.log()}")


@contextlib.contextmanager
def started_pair(
    config: dict[str, Any], folder: Path
) -> Iterator[tuple[ServerHandle, ServerHandle]]:
    """Nodes A and B started from `config` in `folder`, both stopped on leaving."""
    a = start_node(config, folder, "a")
    try:
        b = start_node(config, folder, "b")
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def node_pair_fixture(label: str) -> Any:
    """A module-scoped ``nodes`` fixture: nodes A and B (`pair_config`) sharing Redis.

    The Redis prefix is ``rotary-<label>-<random>``, unique to the module run; assign it in
    a module as ``nodes = node_pair_fixture("…")``.
    """

    @pytest.fixture(name="nodes", scope="module")
    def _nodes(
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[tuple[ServerHandle, ServerHandle]]:
        folder = tmp_path_factory.mktemp(label)
        config = pair_config(f"rotary-{label}-{uuid.uuid4().hex[:10]}")
        with started_pair(config, folder) as pair:
            yield pair

    return _nodes


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test locally; fail it when CI is set, where nothing may be skipped."""
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def shared_redis_or_skip() -> None:
    """Skip (fail under CI) when the shared Redis on 6379 does not answer."""
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis at {SHARED_REDIS} is unreachable: {exc!r}")
    finally:
        client.close()


def cluster_config(addresses: list[str], prefix: str = "", **extra: Any) -> dict[str, Any]:
    """Nodes on the Redis engine: history, presence, join/leave and client API allowed."""
    return {
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "engine": "redis",
        "redis_address": addresses[0] if len(addresses) == 1 else addresses,
        "redis_prefix": prefix or f"rotary-cluster-{uuid.uuid4().hex[:8]}",
        "node_info_publish_interval": NODE_INFO_INTERVAL,
        "allow_subscribe_for_client": True,
        "allow_presence_for_client": True,
        "allow_history_for_client": True,
        "presence": True,
        "join_leave": True,
        "history_size": 500,
        "history_ttl": "300s",
        **extra,
    }


async def until(
    check: Callable[[], Any | Awaitable[Any]], *, within: float = 15.0, what: str = ""
) -> Any:
    """Call `check` until it returns something truthy; return that. AssertionError after
    `within` seconds, showing the last value (or exception)."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        try:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            last = value
        except Exception as exc:  # kept for the failure message; the condition may settle
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within}s: {what} (last: {last!r})")
        await asyncio.sleep(0.05)


def _port_pair() -> int:
    """A port P ≤ 55535 with P and P + 10000 both free on 127.0.0.1 right now."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class RedisProcess:
    """A ``redis-server`` child without persistence on 127.0.0.1:`port`."""

    def __init__(self, workdir: Path, *, password: str = "", extra: tuple[str, ...] = ()) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            skip_or_fail("redis-server is not installed")
        self._binary = binary
        self._workdir = workdir
        self.password = password
        #: More ``--option value`` arguments (cluster mode, ...).
        self.extra = extra
        # Cluster mode also listens on port + 10000 (its bus): both must be free.
        self.port = _port_pair() if "--cluster-enabled" in extra else free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        password = self.password or None
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, password=password)

    def start(self) -> RedisProcess:
        """Start (again, on the same port) and wait until it answers PING."""
        self.starts += 1
        argv = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self._workdir)]
        if self.password:
            argv += ["--requirepass", self.password]
        argv += list(self.extra)
        log = (self._workdir / f"redis-{self.port}-{self.starts}.log").open("wb")
        with log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        return self._wait_ping()

    def _wait_ping(self) -> RedisProcess:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with self.client() as c:
                    c.ping()
                return self
            except redis.RedisError:
                if self._proc is not None and self._proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server on {self.port} did not start (see its log)")

    def start_sentinel(self, master: RedisProcess, name: str) -> RedisProcess:
        """Start this process as a Sentinel watching `master` under `name`."""
        conf = self._workdir / f"sentinel-{self.port}.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self._workdir}\n"
            f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
        )
        log = (self._workdir / f"sentinel-{self.port}.log").open("wb")
        with log:
            argv = [self._binary, str(conf), "--sentinel"]
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        return self._wait_ping()

    def stop(self) -> None:
        """Kill the server at once (no save: it keeps nothing)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def restart(self) -> None:
        """Stop and start again: every key is gone, every connection is broken."""
        self.stop()
        self.start()

    def kill_pubsub(self) -> int:
        """``CLIENT KILL TYPE pubsub``: how many PUB/SUB connections were dropped."""
        with self.client() as c:
            return int(c.execute_command("CLIENT", "KILL", "TYPE", "pubsub"))

    def broker_listeners(self) -> list[str]:
        """Names of the brokers' PUB/SUB connections now open (``rotary-<node>-pubsub-<shard>``;
        other PUB/SUB users, such as the revocation store, are left out)."""
        with self.client() as c:
            clients = c.client_list(_type="pubsub")
        names = [str(entry.get("name", "")) for entry in clients]
        return [n for n in names if n.startswith("rotary-") and "-pubsub-" in n]

    def keys(self, pattern: str, *, db: int = 0) -> list[str]:
        """Key names matching `pattern` in database `db`."""
        with self.client() as c:
            c.select(db)
            return sorted(k.decode() for k in c.keys(pattern))


@contextlib.contextmanager
def redis_cluster_of_three(workdir: Path) -> Iterator[list[RedisProcess]]:
    """Three private cluster-mode masters sharing the 16384 slots (``CLUSTER ADDSLOTSRANGE`` +
    ``CLUSTER MEET``), ready (``cluster_state:ok``) when entered, killed on exit."""
    masters: list[RedisProcess] = []
    try:
        for n in range(3):
            extra = ("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{n}.conf")
            masters.append(RedisProcess(workdir, extra=extra).start())
        _form_cluster(masters)
        yield masters
    finally:
        for master in masters:
            master.stop()


_SLOTS = 16384


def _form_cluster(masters: list[RedisProcess]) -> None:
    """Split the slots evenly, introduce the masters, wait until every one reports ok."""
    step = _SLOTS // len(masters)
    for i, master in enumerate(masters):
        last = _SLOTS - 1 if i == len(masters) - 1 else (i + 1) * step - 1
        with master.client() as c:
            c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * step, last)
    with masters[0].client() as c:
        for other in masters[1:]:
            c.execute_command("CLUSTER", "MEET", "127.0.0.1", other.port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = []
        for master in masters:
            with master.client() as c:
                states.append(c.execute_command("CLUSTER", "INFO").decode())
        if all("cluster_state:ok" in s for s in states):
            return
        time.sleep(0.1)
    raise RuntimeError("the Redis Cluster did not become ready")


# ---------------------------------------------------------------- SDK subscribers and checks

TOKENS = TokenFactory(SECRET)


async def sdk_subscribers(
    stack: contextlib.AsyncExitStack, servers: list[Any], channels: list[str]
) -> list[SdkDriver]:
    """One centrifuge-python client per server, subscribed (recoverable) to every channel."""
    drivers: list[SdkDriver] = []
    for n, server in enumerate(servers):
        driver = await stack.enter_async_context(open_driver("python"))
        await driver.connect(server.ws_url, token=TOKENS.connection(f"user-{n}"))
        await driver.wait_for(lambda e: e["ev"] == "connected")
        for ch in channels:
            await driver.subscribe(ch, recoverable=True)
        for ch in channels:
            await driver.wait_for(
                lambda e, ch=ch: e["ev"] == "sub_subscribed" and e["channel"] == ch
            )
        drivers.append(driver)
    return drivers


async def publish_series(
    server: Any, channels: list[str], total: int, faults: dict[int, Callable[[], Any]]
) -> None:
    """Publish ``{"seq": 1..total}`` to every channel through `server`'s HTTP API, running
    ``faults[seq]`` (in a thread) right after publication `seq`."""
    for seq in range(1, total + 1):
        for ch in channels:
            params = {"channel": ch, "data": {"seq": seq}}
            reply = await asyncio.to_thread(server.api, "publish", params)
            assert "error" not in reply, reply
        if seq in faults:
            await asyncio.to_thread(faults[seq])
        await asyncio.sleep(0.01)


def received(driver: SdkDriver, channel: str) -> list[tuple[int, int]]:
    """(offset, seq) of every publication `driver` got on `channel`, in arrival order."""
    return [
        (int(e["offset"]), int(e["data"]["seq"]))
        for e in driver.events
        if e["ev"] == "publication" and e["channel"] == channel
    ]


async def assert_each_got_everything_once_in_order(
    drivers: list[SdkDriver], channels: list[str], total: int
) -> None:
    """Every driver holds publications 1..total of every channel: none missing, none twice."""
    expected = [(n, n) for n in range(1, total + 1)]
    for driver in drivers:
        for ch in channels:
            await until(
                lambda d=driver, c=ch: len(received(d, c)) >= total,
                within=30,
                what=f"{total} publications on {ch}",
            )
            assert received(driver, ch) == expected, driver.dump()[-4000:]


def resubscriptions(driver: SdkDriver, channel: str) -> list[dict[str, Any]]:
    """The `sub_subscribed` events of `channel` after the first one."""
    subscribed = [
        e for e in driver.events if e["ev"] == "sub_subscribed" and e["channel"] == channel
    ]
    return subscribed[1:]
