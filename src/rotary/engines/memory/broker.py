"""`MemoryBroker`: history, idempotency and delivery for a single node, in process memory."""

from __future__ import annotations

import secrets
import string
from collections import OrderedDict
from collections.abc import Callable

from rotary.clock import Clock
from rotary.engines.base import (
    BrokerEventHandler,
    ClientInfo,
    HistoryFilter,
    HistoryResult,
    Publication,
    PublishOptions,
    StreamPosition,
    UnrecoverablePosition,
)
from rotary.engines.memory.stream import HistoryStream

__all__ = ["IDEMPOTENCY_TTL", "MemoryBroker", "random_epoch"]

#: Seconds an idempotency key is remembered per channel (Centrifugo keeps results 5 minutes).
IDEMPOTENCY_TTL = 300.0

#: Seconds between sweeps that drop streams nobody touched (their meta TTL passed).
_SWEEP_INTERVAL = 60.0

_EPOCH_ALPHABET = string.ascii_letters


def random_epoch() -> str:
    """A random 4-letter epoch, as Centrifugo's memory broker makes."""
    return "".join(secrets.choice(_EPOCH_ALPHABET) for _ in range(4))


class MemoryBroker:
    """A `rotary.engines.base.Broker` for one node, holding everything in memory.

    Every operation completes without awaiting anything, so under asyncio each `publish`
    writes history and calls the handler in one atomic step, and deliveries of a channel
    follow offset order however many publishes run concurrently.

    Only channels this node `subscribe`d are delivered (as with Redis); publishing to any
    other channel still writes its history. `history_meta_ttl` is the default meta TTL used
    when a call passes 0 (0 here too: streams are never forgotten). Time comes from `clock`
    (monotonic for every TTL, wall clock for `Publication.time`); epochs from
    `epoch_factory`.
    """

    #: Every publication of the engine reaches the one node there is: what reaches "the nodes
    #: listening" may be applied by the node itself (shared poll publications do).
    single_node = True

    def __init__(
        self,
        clock: Clock,
        *,
        epoch_factory: Callable[[], str] | None = None,
        history_meta_ttl: float = 0.0,
    ) -> None:
        self._clock = clock
        self._new_epoch = epoch_factory or random_epoch
        self._default_meta_ttl = history_meta_ttl
        self._handler: BrokerEventHandler | None = None
        self._subscribed: set[str] = set()
        self._streams: dict[str, HistoryStream] = {}
        self._results: OrderedDict[tuple[str, str], tuple[float, StreamPosition]] = OrderedDict()
        self._next_sweep = clock.monotonic() + _SWEEP_INTERVAL

    async def start(self, handler: BrokerEventHandler) -> None:
        """Deliver events to `handler` from now on."""
        self._handler = handler

    async def close(self) -> None:
        """Stop delivering. Idempotent; stored history stays readable."""
        self._handler = None
        self._subscribed.clear()

    async def subscribe(self, channel: str) -> None:
        """Deliver `channel`'s publications, joins and leaves to the handler."""
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering `channel`; unsubscribing an unknown channel is not an error."""
        self._subscribed.discard(channel)

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> StreamPosition:
        """Store (if asked) and deliver `data`; return the position after it.

        A repeated non-empty `idempotency_key` within `IDEMPOTENCY_TTL` seconds returns the
        first result and neither stores nor delivers anything.
        """
        now = self._clock.monotonic()
        key = (channel, opts.idempotency_key)
        if opts.idempotency_key:
            seen = self._seen_result(key, now)
            if seen is not None:
                return seen
        pub = Publication(
            data=data,
            info=opts.info,
            tags=opts.tags,
            time=int(self._clock.now() * 1000),
            use_delta=opts.use_delta,
        )
        if _keeps_history(opts):
            stream = self._stream(channel, now, self._meta_ttl(opts.history_meta_ttl))
            pub = stream.add(pub, now=now, size=opts.history_size, ttl=opts.history_ttl)
            position = stream.position
        else:
            position = StreamPosition()
        if opts.idempotency_key:
            self._results[key] = (now + IDEMPOTENCY_TTL, position)
        self._deliver_publication(channel, pub, position)
        return position

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        """Deliver a join to the handler if this node subscribed to `channel`."""
        if self._handler is not None and channel in self._subscribed:
            self._handler.handle_join(channel, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        """Deliver a leave to the handler if this node subscribed to `channel`."""
        if self._handler is not None and channel in self._subscribed:
            self._handler.handle_leave(channel, info)

    async def publish_control(self, data: bytes) -> None:
        """Deliver `data` to this node's handler (the only node there is)."""
        if self._handler is not None:
            self._handler.handle_control(data)

    async def history(
        self, channel: str, flt: HistoryFilter, *, meta_ttl: float = 0.0
    ) -> HistoryResult:
        """The current position and the publications `flt` selects.

        Raises `UnrecoverablePosition` when `flt.since` carries another epoch than the
        stream's. Reading keeps the stream's meta alive like a publish does.
        """
        now = self._clock.monotonic()
        stream = self._stream(channel, now, self._meta_ttl(meta_ttl))
        if flt.since is not None and flt.since.epoch and flt.since.epoch != stream.epoch:
            raise UnrecoverablePosition(
                f"epoch {flt.since.epoch!r} is not the current epoch of channel {channel!r}"
            )
        stream.expire(now)
        return HistoryResult(position=stream.position, publications=stream.select(flt))

    async def remove_history(self, channel: str) -> None:
        """Forget `channel`'s publications; its position and epoch stay."""
        stream = self._streams.get(channel)
        if stream is not None:
            stream.clear()

    def _stream(self, channel: str, now: float, meta_ttl: float) -> HistoryStream:
        """The live stream of `channel`, replaced by a new epoch if its meta TTL passed."""
        self._sweep(now)
        stream = self._streams.get(channel)
        if stream is None or stream.is_forgotten(now):
            stream = HistoryStream(self._new_epoch())
            self._streams[channel] = stream
        stream.touch(now, meta_ttl)
        return stream

    def _meta_ttl(self, requested: float) -> float:
        """The meta TTL to apply: the requested one, or the broker's default when 0."""
        return requested if requested > 0 else self._default_meta_ttl

    def _seen_result(self, key: tuple[str, str], now: float) -> StreamPosition | None:
        """The remembered result of an idempotency key, after dropping expired ones."""
        while self._results:
            oldest_key, (expires_at, _) = next(iter(self._results.items()))
            if expires_at > now:
                break
            del self._results[oldest_key]
        remembered = self._results.get(key)
        return remembered[1] if remembered is not None else None

    def _deliver_publication(self, channel: str, pub: Publication, sp: StreamPosition) -> None:
        if self._handler is not None and channel in self._subscribed:
            self._handler.handle_publication(channel, pub, sp)

    def _sweep(self, now: float) -> None:
        """Drop forgotten streams now and then, so idle channels do not pile up."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        forgotten = [ch for ch, s in self._streams.items() if s.is_forgotten(now)]
        for channel in forgotten:
            del self._streams[channel]


def _keeps_history(opts: PublishOptions) -> bool:
    return opts.history_size > 0 and opts.history_ttl > 0 and not opts.skip_history
