"""Shared poll channels on a node: who tracks which key, the polling of the backend, fan-out.

docs/shared-poll.md. Clients track keys of a shared poll channel; the node polls the backend
for every key some client here tracks, once per refresh interval and channel whatever the
number of clients, and pushes each new version of an item to the clients tracking its key.
A key tracked for the first time is polled at once. Each node polls for its own clients, as
Centrifugo's nodes do; the engine only carries server-API publications (`published`), each
on a broker channel of its key that only the nodes tracking the key listen to (`KeyRoutes`).

Everything runs on the event loop and the methods that change state never await, so no
lock is needed: a track is registered, answered and joined in one step.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from weakref import WeakKeyDictionary

import orjson

from rotary.channels.shared_poll import PollSettings
from rotary.protocol import fossil
from rotary.protocol.base import Codec, NotEncodable

if TYPE_CHECKING:
    from rotary.metrics import Metrics

__all__ = [
    "TRACKERS",
    "ItemPush",
    "KeyRoutes",
    "KeyState",
    "PollAnswer",
    "PollBackend",
    "PollFailure",
    "PolledItem",
    "SharedPollManager",
    "Tracker",
    "new_epoch",
    "release",
]

_log = logging.getLogger("rotary.shared_poll")

_EPOCH_LETTERS = string.ascii_letters


def new_epoch() -> str:
    """Eight random letters, the form of Centrifugo's epochs."""
    return "".join(secrets.choice(_EPOCH_LETTERS) for _ in range(8))


class PollFailure(Exception):
    """The backend could not be asked or answered nonsense; `args[0]` is loggable."""


@dataclass(frozen=True, slots=True)
class PolledItem:
    """One item of a backend answer: its data (JSON bytes), version, or its removal."""

    key: str
    data: bytes = b""
    version: int = 0
    removed: bool = False
    #: The backend's ``prev_data``: the data of the version before, a delta base (or None).
    prev_data: bytes | None = None


@dataclass(frozen=True, slots=True)
class PollAnswer:
    items: Sequence[PolledItem] = ()
    #: The publisher's epoch (versioned channels): a change resets every subscriber.
    epoch: str = ""


class PollBackend(Protocol):
    """Asks the backend named `proxy_name` for the current state of `items` of `channel`.

    `items` are (key, version the node holds, 0 for none); the answer lists the items that
    exist, changed or not. Raises `PollFailure`; the next cycle asks again.
    """

    async def refresh(
        self, proxy_name: str, channel: str, items: Sequence[tuple[str, int]]
    ) -> PollAnswer: ...

    async def close(self) -> None: ...


class KeyRoutes(Protocol):
    """The broker channels of the keys of channels that take server-API publications.

    `reserve` makes this node listen to `keys` of `channel` before they are tracked (a
    reservation each, held until `settle`); `settle` is called with keys whose reservation
    ended or that the node no longer tracks, and stops listening to those nobody tracks and
    nobody reserved.
    """

    async def reserve(self, channel: str, keys: Sequence[str]) -> None: ...

    def settle(self, channel: str, keys: Sequence[str], *, reserved: bool = False) -> None: ...


@dataclass(slots=True)
class KeyState:
    """A key as one connection tracks it: the version it has, when its signature expires."""

    version: int = 0
    expire_at: int = 0
    #: A delta subscriber got this key whole since it tracked it: deltas may follow.
    delta_ready: bool = False


@dataclass(slots=True, eq=False)
class Tracker:
    """One connection's subscription to a shared poll channel and the keys it tracks.

    `push` queues encoded bytes for the client; `unencodable` ends a client whose format
    cannot carry an item; `reset` ends the subscription (epoch change). `delta`: the client
    negotiated fossil deltas (over JSON its items' data then go as JSON strings).
    """

    channel: str
    codec: Codec
    push: Callable[[bytes], None]
    unencodable: Callable[[], None]
    reset: Callable[[], None]
    settings: PollSettings
    delta: bool = False
    keys: dict[str, KeyState] = field(default_factory=dict)

    def deliver(self, item: ItemPush) -> None:
        """Push `item` unless this connection already has its version: as a delta when the
        client has the delta's base version (and got the key whole before), else whole."""
        state = self.keys.get(item.key)
        if state is None or item.version <= state.version:
            return
        try:
            encoded = None
            if self.delta and state.delta_ready:
                encoded = item.delta(self.codec, self.channel, state.version)
            if encoded is None:
                encoded = item.whole(self.codec, self.channel, as_text=self.delta)
        except NotEncodable:
            self.unencodable()
            return
        state.version = item.version
        state.delta_ready = self.delta
        self.push(encoded)

    def remove(self, key: str) -> None:
        """Forget `key` and tell the client it was removed."""
        if self.keys.pop(key, None) is not None:
            body = {"key": key, "removed": True}
            self.push(self.codec.encode_push("pub", body, self.channel))


class ItemPush:
    """The pushes of one new version of an item, each encoded at most once per wire format
    and form, whatever the number of clients.

    `base` is (version, data) of the version before, when the backend gave it (``prev_data``):
    a client holding exactly that version may get a fossil delta instead of the data.
    """

    __slots__ = ("_base", "_made", "_patch", "data", "key", "version")

    def __init__(self, key: str, version: int, data: bytes, base: tuple[int, bytes] | None) -> None:
        self.key, self.version, self.data, self._base = key, version, data, base
        self._patch: bytes | None = None
        self._made: dict[tuple[str, str], bytes] = {}

    def whole(self, codec: Codec, channel: str, *, as_text: bool) -> bytes:
        """The push with the data; `as_text`: over JSON as a JSON string (delta clients)."""
        form = "text" if as_text else "raw"
        made = self._made.get((codec.name, form))
        if made is None:
            body: dict[str, object] = {"key": self.key, "version": self.version}
            if self.data:  # a publication may come without data
                body["data"] = _as_text(self.data, codec) if as_text else self.data
            made = self._made[(codec.name, form)] = codec.encode_push("pub", body, channel)
        return made

    def delta(self, codec: Codec, channel: str, held: int) -> bytes | None:
        """The push as a delta for a client holding version `held`; None when there is no
        base for it or the delta is not shorter than the data."""
        if self._base is None or self._base[0] != held or not self._shorter_patch():
            return None
        made = self._made.get((codec.name, "delta"))
        if made is None:
            assert self._patch is not None
            body = {"data": _as_text(self._patch, codec), "delta": True, "key": self.key}
            body["version"] = self.version
            made = self._made[(codec.name, "delta")] = codec.encode_push("pub", body, channel)
        return made

    def _shorter_patch(self) -> bool:
        if self._patch is None and self._base is not None:
            self._patch = fossil.create(self._base[1], self.data)
        return self._patch is not None and len(self._patch) < len(self.data)


def _as_text(data: bytes, codec: Codec) -> bytes:
    """`data` as a delta subscriber's codec carries it: over JSON a JSON string of the text
    (the SDK applies deltas to the bytes it stored), over Protobuf the bytes themselves."""
    if codec.binary:
        return data
    try:
        return orjson.dumps(data.decode())
    except UnicodeDecodeError:
        raise NotEncodable("payload is not text") from None


#: Each session's trackers by channel (a session has few: made on its first shared poll
#: subscription, dropped with the session).
TRACKERS: WeakKeyDictionary[object, dict[str, Tracker]] = WeakKeyDictionary()


def release(manager: SharedPollManager | None, session: object, channel: str) -> None:
    """Stop the tracking of `session` in `channel` (its unsubscribe or its end)."""
    trackers = TRACKERS.get(session)
    tracker = trackers.pop(channel, None) if trackers else None
    if tracker is None or manager is None:
        return
    manager.remove(tracker, list(tracker.keys))
    tracker.keys.clear()


def _worker_done(task: asyncio.Task[None]) -> None:
    """A worker ends only when cancelled; anything else is a bug, logged (the next track
    starts a new one)."""
    if not task.cancelled() and task.exception() is not None:
        _log.error("shared poll worker failed", exc_info=task.exception())


@dataclass(slots=True)
class _Entry:
    """A key the node polls: the last version seen (0: none yet) and what decides changes."""

    version: int = 0
    data_hash: int = 0
    #: A client joined that needs the data even if it did not change.
    needs_broadcast: bool = False


@dataclass(slots=True, eq=False)
class _Channel:
    settings: PollSettings
    epoch: str
    entries: dict[str, _Entry] = field(default_factory=dict)
    subscribers: dict[str, set[Tracker]] = field(default_factory=dict)
    counter: int = 0
    notified: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None
    shutdown: asyncio.TimerHandle | None = None
    closed: bool = False


class SharedPollManager:
    """Every shared poll channel of one node. `concurrency` bounds backend calls at once;
    `metrics`, when given, counts backend calls, answered items and publications."""

    def __init__(
        self,
        backend: PollBackend,
        *,
        concurrency: int = 64,
        make_epoch: Callable[[], str] = new_epoch,
        metrics: Metrics | None = None,
    ) -> None:
        self._backend = backend
        self._metrics = metrics
        self._limit = asyncio.Semaphore(concurrency if concurrency > 0 else 64)
        self._make_epoch = make_epoch
        #: Epoch of versionless channels with no state yet (new at each start).
        self._epoch = make_epoch()
        self._channels: dict[str, _Channel] = {}
        #: Where publishable channels' keys are listened to (set by the node); None: nowhere.
        self.routes: KeyRoutes | None = None

    # ------------------------------------------------------------------ clients

    def tracks(self, channel: str, key: str) -> bool:
        """Whether this node polls `key` of `channel` (some client here tracks it)."""
        ch = self._channels.get(channel)
        return ch is not None and key in ch.entries

    def epoch(self, channel: str, settings: PollSettings) -> str:
        """The epoch a subscribe reply carries: the channel's, or the node's when it has none."""
        ch = self._channels.get(channel)
        if ch is not None:
            return ch.epoch
        return "" if settings.versioned else self._epoch

    def track(self, channel: str, settings: PollSettings, keys: Sequence[str]) -> list[int | None]:
        """Register `keys` for polling; for each, None when new here, else the version held.

        Starts the channel's worker when needed. The caller joins with `add` before it awaits.
        """
        ch = self._channels.get(channel)
        if ch is None:
            ch = _Channel(settings, "" if settings.versioned else self._make_epoch())
            self._channels[channel] = ch
        if ch.shutdown is not None:
            ch.shutdown.cancel()
            ch.shutdown = None
        held: list[int | None] = []
        for key in keys:
            entry = ch.entries.get(key)
            held.append(None if entry is None else entry.version)
            if entry is None:
                ch.entries[key] = _Entry()
        if ch.worker is None or ch.worker.done():
            ch.worker = asyncio.get_running_loop().create_task(self._run(channel, ch))
            ch.worker.add_done_callback(_worker_done)
        return held

    def add(self, tracker: Tracker, keys: Sequence[str]) -> None:
        """Deliver the changes of `keys` to `tracker` from now on."""
        ch = self._channels[tracker.channel]
        for key in keys:
            ch.subscribers.setdefault(key, set()).add(tracker)

    def remove(self, tracker: Tracker, keys: Sequence[str]) -> None:
        """Stop delivering `keys` to `tracker`; keys nobody tracks any more are not polled."""
        ch = self._channels.get(tracker.channel)
        if ch is None:
            return
        gone = []
        for key in keys:
            subs = ch.subscribers.get(key)
            if subs is None:
                continue
            subs.discard(tracker)
            if not subs:
                del ch.subscribers[key]
                ch.entries.pop(key, None)
                gone.append(key)
        self._untracked(tracker.channel, ch, gone)
        if not ch.entries:
            self._schedule_shutdown(tracker.channel, ch)

    def poll_soon(self, channel: str, keys: Sequence[str]) -> None:
        """Poll `keys` now rather than at the next cycle (keys tracked for the first time)."""
        ch = self._channels.get(channel)
        if ch is not None and keys:
            ch.notified.update(keys)
            ch.wake.set()

    def rebroadcast(self, channel: str, keys: Sequence[str]) -> None:
        """Deliver `keys` at the next answer even if unchanged (a client joined without data).

        Keys that have data are polled at once; those still waiting for their first answer
        get it with that answer.
        """
        ch = self._channels.get(channel)
        if ch is None:
            return
        soon = []
        for key in keys:
            entry = ch.entries.get(key)
            if entry is not None and not entry.needs_broadcast:
                entry.needs_broadcast = True
                if entry.version > 0:
                    soon.append(key)
        self.poll_soon(channel, soon)

    def published(self, channel: str, key: str, version: int, epoch: str, data: bytes) -> None:
        """Apply a server-API publication of `key` (the nodes listening to `key` get it).

        Versioned channels only. As in Centrifugo, the epoch is compared before anything
        else, so a publisher's new epoch resets every subscriber of the channel on this node;
        then the item goes out when the node tracks `key` and `version` is above the one it
        holds (an older or equal version is dropped).
        """
        ch = self._channels.get(channel)
        if ch is None or not ch.settings.versioned:
            return
        if epoch != ch.epoch:
            self._flip_epoch(ch, epoch)
        entry = ch.entries.get(key)
        if entry is None:
            return
        if self._metrics is not None:
            self._metrics.shared_poll_publication(applied=version > entry.version)
        if version <= entry.version:
            return
        entry.version, entry.needs_broadcast = version, False
        # No delta base: as in Centrifugo, the node keeps no item data to diff against.
        item = ItemPush(key, version, data, None)
        for tracker in list(ch.subscribers.get(key, ())):
            tracker.deliver(item)

    async def close(self) -> None:
        """Stop every worker, then close the backend."""
        for ch in self._channels.values():
            ch.closed = True
            if ch.worker is not None:
                ch.worker.cancel()
            if ch.shutdown is not None:
                ch.shutdown.cancel()
        workers = [ch.worker for ch in self._channels.values() if ch.worker is not None]
        self._channels.clear()
        await asyncio.gather(*workers, return_exceptions=True)
        await self._backend.close()

    @property
    def num_channels(self) -> int:
        return len(self._channels)

    @property
    def num_keys(self) -> int:
        """Keys polled on this node, over every channel."""
        return sum(len(ch.entries) for ch in self._channels.values())

    # ------------------------------------------------------------------ life of a channel

    def _schedule_shutdown(self, channel: str, ch: _Channel) -> None:
        """Drop the channel after its shutdown delay unless a key is tracked again meanwhile."""
        if ch.shutdown is None:
            loop = asyncio.get_running_loop()
            ch.shutdown = loop.call_later(ch.settings.shutdown_delay, self._drop, channel, ch)

    def _untracked(self, channel: str, ch: _Channel, keys: list[str]) -> None:
        """`keys` are no longer polled here: their broker channels may go."""
        if keys and self.routes is not None and ch.settings.publish_enabled:
            self.routes.settle(channel, keys)

    def _drop(self, channel: str, ch: _Channel) -> None:
        ch.shutdown = None
        if ch.entries or self._channels.get(channel) is not ch:
            return
        ch.closed = True
        del self._channels[channel]
        if ch.worker is not None:
            ch.worker.cancel()

    async def _run(self, channel: str, ch: _Channel) -> None:
        """The channel's worker: notified keys at once, every key once per interval."""
        loop = asyncio.get_running_loop()
        interval = ch.settings.refresh_interval
        due = loop.time() + interval
        while not ch.closed:
            if not ch.notified:
                try:
                    async with asyncio.timeout(max(due - loop.time(), 0.0)):
                        await ch.wake.wait()
                except TimeoutError:
                    pass
            ch.wake.clear()
            if ch.notified:
                keys = sorted(k for k in ch.notified if k in ch.entries)
                ch.notified.clear()
                await self._poll(channel, ch, keys)
            if loop.time() >= due:
                started = loop.time()
                await self._cycle(channel, ch)
                due = started + interval

    async def _cycle(self, channel: str, ch: _Channel) -> None:
        """Poll every key, in batches spread over the interval (as Centrifugo does)."""
        keys = sorted(ch.entries)
        size = ch.settings.batch_size
        chunks = [keys[i : i + size] for i in range(0, len(keys), size)]
        if not chunks:
            return
        spread = ch.settings.refresh_interval / len(chunks)
        await asyncio.gather(
            *(self._poll(channel, ch, chunk, delay=i * spread) for i, chunk in enumerate(chunks))
        )

    async def _poll(self, channel: str, ch: _Channel, keys: list[str], delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        items = [(key, self._asked_version(ch, key)) for key in keys if key in ch.entries]
        if not items or ch.closed:
            return
        try:
            async with self._limit:
                answer = await self._backend.refresh(ch.settings.proxy_name, channel, items)
        except PollFailure as exc:
            _log.warning("shared poll of %s failed: %s", channel, exc)
            if self._metrics is not None:
                self._metrics.shared_poll_call("failure", len(items))
            return
        if self._metrics is not None:
            self._metrics.shared_poll_call("ok", len(items))
        if not ch.closed:
            self._apply(channel, ch, answer)

    @staticmethod
    def _asked_version(ch: _Channel, key: str) -> int:
        """The version the backend is told the node holds: 0 asks for the data in any case."""
        entry = ch.entries[key]
        if not ch.settings.versioned or entry.needs_broadcast:
            return 0
        return entry.version

    # ------------------------------------------------------------------ answers

    def _apply(self, channel: str, ch: _Channel, answer: PollAnswer) -> None:
        """Record what changed, then push it: new versions, and removals."""
        if ch.settings.versioned and answer.epoch != ch.epoch:
            self._flip_epoch(ch, answer.epoch)
        updates: list[ItemPush] = []
        removals: list[str] = []
        unchanged = 0
        for item in answer.items:
            entry = ch.entries.get(item.key)
            if entry is None:
                continue
            if item.removed:
                removals.append(item.key)
                continue
            held = entry.version  # the delta base's version, when prev_data came with it
            update = self._change(ch, entry, item)
            if update is not None:
                base = None if item.prev_data is None else (held, item.prev_data)
                updates.append(ItemPush(item.key, update, item.data, base))
            else:
                unchanged += 1
        if self._metrics is not None:
            self._metrics.shared_poll_items("changed", len(updates))
            self._metrics.shared_poll_items("removed", len(removals))
            self._metrics.shared_poll_items("unchanged", unchanged)
        for push in updates:
            for tracker in list(ch.subscribers.get(push.key, ())):
                tracker.deliver(push)
        for key in removals:
            for tracker in ch.subscribers.pop(key, ()):
                tracker.remove(key)
            ch.entries.pop(key, None)
        self._untracked(channel, ch, removals)

    def _change(self, ch: _Channel, entry: _Entry, item: PolledItem) -> int | None:
        """The version to deliver `item` at, or None when there is nothing to deliver."""
        if not ch.settings.versioned and item.version == 0:
            digest = hash(item.data)
            if entry.version > 0 and digest == entry.data_hash:
                return self._unchanged(entry, entry.version)
            ch.counter += 1
            entry.version, entry.data_hash, entry.needs_broadcast = ch.counter, digest, False
            return entry.version
        if item.version <= entry.version:
            same = item.version == entry.version
            return self._unchanged(entry, item.version) if same else None
        entry.version, entry.needs_broadcast = item.version, False
        return item.version

    @staticmethod
    def _unchanged(entry: _Entry, version: int) -> int | None:
        """An unchanged item goes out only to clients that joined without its data."""
        if entry.needs_broadcast and entry.version > 0:
            entry.needs_broadcast = False
            return version
        return None

    def _flip_epoch(self, ch: _Channel, epoch: str) -> None:
        """The publisher's epoch changed: versions restart, so every subscriber starts over."""
        ch.epoch = epoch
        for entry in ch.entries.values():
            entry.version, entry.data_hash, entry.needs_broadcast = 0, 0, False
        trackers = {t for subs in ch.subscribers.values() for t in subs}
        for tracker in trackers:
            tracker.reset()
