"""`RedisBroker`: history in Redis streams, delivery over Redis PUB/SUB, many nodes."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import re
import string
from typing import Any

from redis.exceptions import RedisError

from rotary.clock import Clock
from rotary.config.model import RedisSettings
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
from rotary.engines.redis._codec import (
    KIND_CONTROL,
    KIND_JOIN,
    KIND_LEAVE,
    KIND_PUBLICATION,
    CodecError,
    decode_info,
    decode_publication,
    decode_publication_message,
    encode_info,
    encode_publication,
)
from rotary.engines.redis._probe import DeliveryProbe
from rotary.engines.redis._pubsub import RedisEngineError, ShardSubscriber
from rotary.engines.redis._scripts import Script
from rotary.engines.redis._shards import Keys, Shard, build_shards, close_shards, shard_index

__all__ = ["IDEMPOTENCY_TTL", "RedisBroker", "random_epoch"]

logger = logging.getLogger("rotary.engines.redis")

#: Seconds an idempotency key's first result is remembered per channel.
IDEMPOTENCY_TTL = 300.0

_EPOCH_ALPHABET = string.ascii_letters
# One candidate epoch goes with every publish (the script uses it only for a new stream),
# so it must be cheap: one call on an OS-seeded generator.
_EPOCH_RANDOM = random.SystemRandom()
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.:-]")


def random_epoch() -> str:
    """A random 8-letter epoch (the stream's incarnation name)."""
    return "".join(_EPOCH_RANDOM.choices(_EPOCH_ALPHABET, k=8))


class RedisBroker:
    """A `rotary.engines.base.Broker` shared by every node connected to the same Redis.

    Each channel lives on one shard (`shard_index`): its stream, meta hash, idempotency
    keys and PUB/SUB channel. `publish` runs ``lua/publish.lua``, which writes history and
    PUBLISHes in one atomic step, so every subscribed node sees a channel's publications
    in offset order and exactly the ones history holds.

    Reconnects: when a shard's PUB/SUB connection comes back, every channel is subscribed
    again and then, if the handler has a ``handle_resubscribed(shard: int)`` method, it is
    called with the shard index. Publications sent while the connection was down are not
    delivered; the node should make the clients of that shard's channels recover from
    history (`shard_of` tells which channels those are).
    """

    def __init__(
        self,
        settings: RedisSettings,
        *,
        node_id: str,
        clock: Clock,
        probe_interval: float = 5.0,
    ) -> None:
        self._settings = settings
        self._node_id = node_id
        self._clock = clock
        self._keys = Keys(settings.prefix)
        self._control = self._keys.control.encode()
        self._shards: list[Shard] = build_shards(settings)
        self._subscribers: list[ShardSubscriber] = []
        self._handler: BrokerEventHandler | None = None
        self._closed = False
        self._publish = Script("publish")
        self._history = Script("history")
        self._probe_interval = probe_interval
        self._probe: DeliveryProbe | None = None

    @property
    def shard_count(self) -> int:
        """How many shards channels are spread over."""
        return len(self._shards)

    def shard_of(self, channel: str) -> int:
        """The index of the shard holding `channel`."""
        return shard_index(channel, len(self._shards))

    async def start(self, handler: BrokerEventHandler) -> None:
        """Connect one PUB/SUB connection per shard and listen to the control channel.

        Returns once the control channel is subscribed; raises `RedisEngineError` when
        shard 0 cannot be reached within ``io_timeout`` (reconnecting goes on until close).
        """
        self._handler = handler
        safe_node = _UNSAFE_NAME.sub("_", self._node_id)
        probe_channel = f"{self._keys.prefix}.probe.{safe_node}"
        for shard in self._shards:
            subscriber = ShardSubscriber(
                name=f"rotary-{safe_node}-pubsub-{shard.index}",
                new_connection=shard.new_pubsub_connection,
                dispatch=self._dispatch,
                on_resubscribed=functools.partial(self._resubscribed, shard.index),
                timeout=self._settings.io_timeout,
            )
            subscriber.want([probe_channel])
            subscriber.start()
            self._subscribers.append(subscriber)
        self._probe = DeliveryProbe(
            channel=probe_channel,
            clients=[shard.client for shard in self._shards],
            subscribers=self._subscribers,
            interval=self._probe_interval,
            time=asyncio.get_running_loop().time,
        )
        self._probe.start()
        await self._subscribers[0].subscribe([self._keys.control])

    def health_problems(self) -> list[str]:
        """Why this node cannot deliver now: each shard whose PUB/SUB connection is down or
        not yet resubscribed (a dead or silent Redis: see `ShardSubscriber`)."""
        problems = [
            f"redis shard {index}: PUB/SUB connection down"
            for index, subscriber in enumerate(self._subscribers)
            if not subscriber.connected
        ]
        if self._probe is not None:
            problems += self._probe.problems()
        return problems

    async def close(self) -> None:
        """Stop the PUB/SUB tasks and close every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._handler = None
        if self._probe is not None:
            await self._probe.close()
        for subscriber in self._subscribers:
            await subscriber.close()
        self._subscribers.clear()
        await close_shards(self._shards)

    async def subscribe(self, channel: str) -> None:
        """Subscribe this node to `channel`; returns once Redis confirmed it."""
        await self._subscriber(channel).subscribe([self._keys.pubsub(channel)])

    async def unsubscribe(self, channel: str) -> None:
        """Unsubscribe this node from `channel`; returns once Redis confirmed it."""
        await self._subscriber(channel).unsubscribe([self._keys.pubsub(channel)])

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> StreamPosition:
        """Store (if asked) and broadcast `data` atomically; return the position after it.

        A non-empty `idempotency_key` seen for `channel` within `IDEMPOTENCY_TTL` seconds
        returns the first result and stores and sends nothing.
        """
        keep = opts.history_size > 0 and opts.history_ttl > 0 and not opts.skip_history
        body = encode_publication(
            data,
            time_ms=int(self._clock.now() * 1000),
            info=opts.info,
            tags=opts.tags,
            use_delta=opts.use_delta,
        )
        keys = [*self._stream_keys(channel), self._keys.result(channel, opts.idempotency_key)]
        args: list[str | bytes | int] = [
            self._keys.pubsub(channel),
            body,
            opts.history_size if keep else 0,
            _ms(opts.history_ttl),
            _ms(opts.history_meta_ttl),
            random_epoch(),
            _ms(IDEMPOTENCY_TTL) if opts.idempotency_key else 0,
        ]
        reply = await self._eval(self._publish, channel, keys, args)
        return StreamPosition(int(reply[0]), _text(reply[1]))

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        """Tell every node subscribed to `channel` that `info` joined."""
        await self._send(channel, KIND_JOIN + encode_info(info))

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        """Tell every node subscribed to `channel` that `info` left."""
        await self._send(channel, KIND_LEAVE + encode_info(info))

    async def publish_control(self, data: bytes) -> None:
        """Send `data` to every started node, this one included (via shard 0)."""
        try:
            await self._shards[0].client.publish(self._keys.control, KIND_CONTROL + data)
        except RedisError as exc:
            raise RedisEngineError(f"control publish failed: {exc}") from exc

    async def history(
        self, channel: str, flt: HistoryFilter, *, meta_ttl: float = 0.0
    ) -> HistoryResult:
        """The current position and the publications `flt` selects.

        Creates the epoch when the channel has none. Raises `UnrecoverablePosition` when
        `flt.since` carries another epoch. `meta_ttl` > 0 extends the meta's life.
        """
        include, first, last = _range(flt)
        args: list[str | bytes | int] = [
            "1" if include else "0",
            first,
            last,
            max(flt.limit, 0),
            "1" if flt.reverse else "0",
            _ms(meta_ttl),
            random_epoch(),
        ]
        reply = await self._eval(self._history, channel, self._stream_keys(channel), args)
        position = StreamPosition(int(reply[0]), _text(reply[1]))
        if flt.since is not None and flt.since.epoch and flt.since.epoch != position.epoch:
            raise UnrecoverablePosition(
                f"epoch {flt.since.epoch!r} is not the current epoch of channel {channel!r}"
            )
        return HistoryResult(position, [_entry_publication(entry) for entry in reply[2]])

    async def remove_history(self, channel: str) -> None:
        """Delete `channel`'s stream; its meta (position and epoch) stays."""
        try:
            await self._shard(channel).client.delete(self._keys.stream(channel))
        except RedisError as exc:
            raise RedisEngineError(f"remove_history failed: {exc}") from exc

    def _shard(self, channel: str) -> Shard:
        return self._shards[self.shard_of(channel)]

    def _subscriber(self, channel: str) -> ShardSubscriber:
        if not self._subscribers:
            raise RedisEngineError("the broker is not started (or already closed)")
        return self._subscribers[self.shard_of(channel)]

    def _stream_keys(self, channel: str) -> list[str]:
        return [self._keys.stream(channel), self._keys.meta(channel)]

    async def _eval(
        self, script: Script, channel: str, keys: list[str], args: list[str | bytes | int]
    ) -> Any:
        try:
            return await script.run(self._shard(channel).client, keys, args)
        except RedisError as exc:
            raise RedisEngineError(f"{script.name} script failed: {exc}") from exc

    async def _send(self, channel: str, payload: bytes) -> None:
        try:
            await self._shard(channel).client.publish(self._keys.pubsub(channel), payload)
        except RedisError as exc:
            raise RedisEngineError(f"publish to {channel!r} failed: {exc}") from exc

    def _dispatch(self, redis_channel: bytes, payload: bytes) -> None:
        handler = self._handler
        if handler is None or not payload:
            return
        kind, body = payload[:1], payload[1:]
        try:
            if self._probe is not None and redis_channel == self._probe.channel.encode():
                index = self._probe.parse(payload)
                if index is not None:
                    self._probe.heard(index)
                return
            if redis_channel == self._control:
                if kind == KIND_CONTROL:
                    handler.handle_control(body)
                return
            channel = redis_channel[len(self._keys.client_prefix) :].decode()
            _deliver(handler, channel, kind, body)
        except (CodecError, UnicodeDecodeError) as exc:
            logger.warning("undecodable message on %r: %s", redis_channel, exc)

    def _resubscribed(self, shard: int) -> None:
        hook = getattr(self._handler, "handle_resubscribed", None)
        if hook is not None:
            hook(shard)


def _deliver(handler: BrokerEventHandler, channel: str, kind: bytes, body: bytes) -> None:
    if kind == KIND_PUBLICATION:
        pub, position = decode_publication_message(body)
        handler.handle_publication(channel, pub, position)
    elif kind == KIND_JOIN:
        handler.handle_join(channel, decode_info(body))
    elif kind == KIND_LEAVE:
        handler.handle_leave(channel, decode_info(body))


def _range(flt: HistoryFilter) -> tuple[bool, str, str]:
    """Whether to read entries, and the two id bounds in the order XRANGE/XREVRANGE take."""
    since = flt.since
    if flt.reverse:
        if since is None:
            return flt.limit != 0, "+", "-"
        return flt.limit != 0 and since.offset > 1, f"{since.offset - 1}-0", "-"
    if since is None:
        return flt.limit != 0, "-", "+"
    return flt.limit != 0, f"{since.offset + 1}-0", "+"


def _entry_publication(entry: Any) -> Publication:
    """A stream entry ``[b"<offset>-0", [b"d", body]]`` as a numbered publication."""
    entry_id, fields = entry
    return decode_publication(fields[1], int(entry_id.split(b"-", 1)[0]))


def _ms(seconds: float) -> int:
    return math.ceil(seconds * 1000) if seconds > 0 else 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
