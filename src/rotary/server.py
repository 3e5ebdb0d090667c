"""Wiring and life cycle: config → engine, verifier, resolver, node → one aiohttp app.

One port serves the WebSocket endpoint, the server HTTP API, ``GET /health``, with
``prometheus`` on ``GET /metrics``, and with ``admin`` on the admin UI at ``/`` and its
endpoints under ``/admin/`` (docs/admin.md). Start-up loads the token revocation records (memory
engine: none; Redis: every node's shared set) before the node accepts anyone. Shutdown has
a fixed order: stop accepting, disconnect every client with 3001 "shutdown", wait briefly
for them to go, close the HTTP runner, close the engine and the revocation store.

The environment variable ``ROTARY_REVOCATION_CHECKS=off`` builds a node without a
revocation store (no checks, revocation API answers 108). It exists to measure what the
checks cost (bench/storm.py); never set it in production.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import logging
import os
import signal
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from aiohttp import web

from rotary.admin import add_admin_routes
from rotary.api.executor import ApiExecutor
from rotary.api.http import add_api_routes
from rotary.auth.track_signature import TrackSecrets
from rotary.channels.resolver import ChannelResolver
from rotary.channels.shared_poll import DEFAULT_PROXY
from rotary.clock import Clock, SystemClock
from rotary.config.model import Config
from rotary.demo import DemoSettings, add_demo_routes
from rotary.engines.base import Broker, PresenceManager
from rotary.engines.maps import MapBroker
from rotary.engines.revocation import RevocationStore, revocation_store_for
from rotary.health import health_problems
from rotary.logs import configure_logging
from rotary.metrics import ENGINE_OPS, Metrics
from rotary.node import revocation as node_revocation
from rotary.node.auth import Authenticator
from rotary.node.node import Node
from rotary.node.shared_poll import SharedPollManager
from rotary.protocol.codes import DisconnectCode
from rotary.proxy.hooks import HttpProxy
from rotary.proxy.poll import PollProxy
from rotary.transports import streaming
from rotary.transports.cycles import break_transport_cycles
from rotary.transports.deflate import Deflate
from rotary.transports.limits import Admission, ConnectionRateLimiter
from rotary.transports.uni_websocket import UniWebSocketOptions, uni_websocket_handler
from rotary.transports.websocket import websocket_handler

__all__ = ["build_app", "build_node", "run", "serve"]

_log = logging.getLogger("rotary.server")

#: Seconds clients get to receive their shutdown close frame before the runner stops.
_SHUTDOWN_GRACE = 3.0

#: Set once shutdown begins (the legacy API endpoint then answers 503).
_SHUTTING_DOWN = web.AppKey("rotary_shutting_down", asyncio.Event)

#: Something to await at shutdown, after the node closed.
Closer = Callable[[], Awaitable[None]]


def _engine(config: Config, uid: str, clock: Clock) -> tuple[Broker, PresenceManager]:
    if config.engine.type == "redis":
        from rotary.engines.redis import RedisBroker, RedisPresenceManager

        redis = config.engine.redis
        return (
            # The delivery probe runs at the pace of the node announcements: both are what
            # a node does to know the cluster still hears it.
            RedisBroker(
                redis,
                node_id=uid,
                clock=clock,
                probe_interval=config.server.node_info_interval,
            ),
            RedisPresenceManager(redis, clock=clock),
        )
    from rotary.engines.memory.broker import MemoryBroker
    from rotary.engines.memory.presence import MemoryPresenceManager

    return MemoryBroker(clock), MemoryPresenceManager(clock)


def _map_broker(config: Config, clock: Clock) -> MapBroker | None:
    """The Redis map broker when ``map_broker.type`` asks for it; None: the node's memory one."""
    if config.engine.map_broker_type != "redis":
        return None
    from rotary.engines.redis.maps import RedisMapBroker

    return RedisMapBroker(config.engine.map_redis, clock=clock)


class _Metered:
    """An engine (broker, presence manager) whose failed operations are counted by name.

    Every coroutine method named in `ENGINE_OPS` counts an exception it raises in
    `Metrics.engine_error` and re-raises it; everything else passes through untouched.
    """

    def __init__(self, target: object, metrics: Metrics) -> None:
        self._target = target
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in ENGINE_OPS and inspect.iscoroutinefunction(value):
            value = self._counted(name, value)
            setattr(self, name, value)  # wrapped once; later look-ups skip __getattr__
        return value

    def _counted(
        self, op: str, method: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except Exception:
                self._metrics.engine_error(op)
                raise

        return call


def _authenticator(
    config: Config,
    resolver: ChannelResolver,
    revocation: RevocationStore | None,
    *,
    metrics: Metrics | None,
    on_close: list[Closer] | None,
) -> Authenticator:
    from rotary.auth import TokenVerifier
    from rotary.policy.tokens import VerifierAuthenticator

    verifier = TokenVerifier(config.auth, channel_known=resolver.namespace_known)
    if on_close is not None:  # the verifier holds an HTTP session when JWKS is configured
        on_close.append(verifier.close)
    return VerifierAuthenticator(verifier, revocation=revocation, metrics=metrics)


def _revocation(config: Config, clock: Clock) -> RevocationStore | None:
    if os.environ.get("ROTARY_REVOCATION_CHECKS", "").lower() == "off":
        _log.warning("token revocation checks are OFF (ROTARY_REVOCATION_CHECKS=off)")
        return None
    return revocation_store_for(config.engine, clock=clock)


def build_node(
    config: Config, *, clock: Clock | None = None, on_close: list[Closer] | None = None
) -> Node:
    """A node wired from `config` (not started). Raises ConfigError for bad settings.

    `on_close`, when given, receives what the caller must await after `Node.close` (the
    token verifier's close).
    """
    clock = clock or SystemClock()
    uid = str(uuid.uuid4())
    resolver = ChannelResolver(config.channels)
    broker, presence = _engine(config, uid, clock)
    presence_ttl = config.engine.redis.presence_ttl if config.engine.type == "redis" else 60.0
    revocation = _revocation(config, clock)
    metrics = Metrics() if config.server.prometheus else None
    if metrics is not None:
        broker = cast(Broker, _Metered(broker, metrics))
        presence = cast(PresenceManager, _Metered(presence, metrics))
    node = Node(
        maps=_map_broker(config, clock),
        settings=config.client,
        resolver=resolver,
        broker=broker,
        presence=presence,
        auth=_authenticator(config, resolver, revocation, metrics=metrics, on_close=on_close),
        revocation=revocation,
        metrics=metrics,
        proxy=HttpProxy(config.proxy, metrics=metrics) if config.proxy.any_active else None,
        clock=clock,
        uid=uid,
        name=config.server.name,
        write_timeout=config.websocket.write_timeout,
        presence_ttl=presence_ttl,
        node_info_interval=config.server.node_info_interval,
        **_shared_poll(config, metrics),
    )
    node_revocation.watch(node)
    return node


def _shared_poll(config: Config, metrics: Metrics | None) -> dict[str, Any]:
    """The shared poll manager and track secrets, when a namespace is of type shared_poll."""
    channels = config.channels
    options = [channels.without_namespace, *(ns.options for ns in channels.namespaces)]
    if not any(o.subscription_type == "shared_poll" for o in options):
        return {}
    sp = config.shared_poll
    secrets = TrackSecrets(
        sp.hmac_secret_key, sp.hmac_previous_secret_key, sp.hmac_previous_secret_key_valid_until
    )
    proxies = dict(config.proxy.named)
    if config.proxy.shared_poll_refresh.endpoint:
        # "default" always means channel.proxy.shared_poll_refresh, as in Centrifugo.
        proxies[DEFAULT_PROXY] = config.proxy.shared_poll_refresh
    backend = PollProxy(proxies)
    manager = SharedPollManager(backend, concurrency=sp.concurrency_limit, metrics=metrics)
    return {"shared_poll": manager, "track_secrets": secrets}


def _health_handler(node: Node) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /health``: 200 ``{}`` while the node can deliver; else 503 and the problems
    (Redis unreachable or silent), so a load balancer stops sending clients here."""

    async def handle(request: web.Request) -> web.Response:
        problems = health_problems(node.broker, node.presence)
        if problems:
            return web.json_response({"problems": problems}, status=503)
        return web.json_response({})

    return handle


def _metrics_handler(node: Node, metrics: Metrics) -> Any:
    async def handle(request: web.Request) -> web.Response:
        info = node.info()
        metrics.set_connections(int(str(info["num_clients"])))
        metrics.set_subscriptions(int(str(info["num_subs"])))
        if node.shared_poll is not None:
            metrics.set_shared_poll(node.shared_poll.num_channels, node.shared_poll.num_keys)
        body, content_type = metrics.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    return handle


def build_app(config: Config, node: Node, *, demo: DemoSettings | None = None) -> web.Application:
    """The aiohttp application: connection endpoints, server API, health check, admin UI.

    `demo` (``rotary dev`` only) adds the demo chat page and its token endpoint.
    """
    break_transport_cycles()
    app = web.Application(client_max_size=max(config.websocket.message_size_limit, 1 << 20))
    client = config.client
    rate = ConnectionRateLimiter(client.connection_rate_limit, node.clock)
    if not config.websocket.disabled:
        handler = websocket_handler(
            node,
            allowed_origins=client.allowed_origins,
            message_size_limit=config.websocket.message_size_limit,
            send_buffer_size=config.websocket.send_buffer_size,
            connection_limit=client.connection_limit,
            connection_rate_limit=client.connection_rate_limit,
            rate_limiter=rate,
            deflate=_deflate(config),
        )
        app.router.add_get(config.websocket.handler_prefix, handler)
    admission = Admission(
        node,
        allowed_origins=client.allowed_origins,
        connection_limit=client.connection_limit,
        rate=rate,
    )
    _add_streaming(app, config, node, admission)
    if config.server.health:
        app.router.add_get("/health", _health_handler(node))
    if config.server.prometheus and node.metrics is not None:
        app.router.add_get("/metrics", _metrics_handler(node, node.metrics))
    executor = ApiExecutor(node)
    _add_api(app, config, executor)
    if config.admin.enabled:
        add_admin_routes(app, executor, config.admin, clock=node.clock)
    if demo is not None:
        add_demo_routes(app, demo, clock=node.clock)
    return app


#: Config field → the factory of its endpoint's handler (docs/transports.md).
_STREAMING = {
    "http_stream": streaming.http_stream_handler,
    "sse": streaming.sse_handler,
    "uni_http_stream": streaming.uni_http_stream_handler,
    "uni_sse": streaming.uni_sse_handler,
    "uni_websocket": uni_websocket_handler,
}


def _deflate(config: Config) -> Deflate:
    """The permessage-deflate settings of the bidirectional WebSocket endpoint."""
    ws = config.websocket
    return Deflate(
        enabled=ws.compression,
        min_size=ws.compression_min_size,
        level=ws.compression_level,
        decompressed_size_limit=ws.decompressed_message_size_limit,
    )


def _add_streaming(app: web.Application, config: Config, node: Node, admission: Admission) -> None:
    """Every enabled HTTP-streaming, SSE and unidirectional endpoint, and the emulation
    endpoint when a bidirectional one (HTTP-streaming, SSE) is on."""
    extras = _transport_options(config)
    for name, factory in _STREAMING.items():
        endpoint = getattr(config, name)
        if endpoint.enabled:
            handler = factory(node, admission, size_limit=endpoint.size_limit, **extras[name])
            app.router.add_route("*", endpoint.handler_prefix, handler)
    if config.http_stream.enabled or config.sse.enabled:
        emulation = config.emulation
        handler = streaming.emulation_handler(node, admission, size_limit=emulation.size_limit)
        app.router.add_route("*", emulation.handler_prefix, handler)


def _transport_options(config: Config) -> dict[str, dict[str, Any]]:
    """The keyword arguments of each endpoint's handler factory beyond its size limit."""
    uni = config.uni
    websocket = UniWebSocketOptions(
        join_messages=uni.websocket_join_push_messages,
        disconnect_push=not uni.websocket_disable_disconnect_push,
        closing_handshake=not uni.websocket_disable_closing_handshake,
        write_timeout=uni.websocket_write_timeout,
        deflate=Deflate(
            enabled=uni.websocket_compression,
            min_size=uni.websocket_compression_min_size,
            level=uni.websocket_compression_level,
            decompressed_size_limit=uni.websocket_decompressed_message_size_limit,
        ),
    )
    return {
        "http_stream": {},
        "sse": {},
        "uni_http_stream": {"code_to_http": uni.http_stream_code_to_http},
        "uni_sse": {"code_to_http": uni.sse_code_to_http},
        "uni_websocket": {"options": websocket},
    }


def _add_api(app: web.Application, config: Config, executor: ApiExecutor) -> None:
    shutting_down = app[_SHUTTING_DOWN] = asyncio.Event()
    add_api_routes(
        app,
        executor,
        config.api,
        shutting_down=shutting_down.is_set,
        # The idle timeout bounds a request's headers (aiohttp); this bounds its body.
        body_timeout=config.server.idle_timeout,
    )


async def serve(
    config: Config,
    *,
    started: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    demo: DemoSettings | None = None,
    reuse_port: bool = False,
) -> None:
    """Serve until `stop` is set (or the task is cancelled), then shut down in order.

    `reuse_port` binds with SO_REUSEPORT, so that the worker processes of
    ``rotary --workers N`` (`rotary.workers`) share the port.
    """
    closers: list[Closer] = []
    node = build_node(config, on_close=closers)
    if node.revocation is not None:
        await node.revocation.start()
    await node.start()
    runner = web.AppRunner(
        build_app(config, node, demo=demo),
        handle_signals=False,
        access_log=None,
        # aiohttp arms this timer when a connection opens and again after each response; a
        # request still unfinished when it fires is dropped (its default is an hour).
        keepalive_timeout=config.server.idle_timeout,
    )
    await runner.setup()
    # No address: every interface, IPv4 and IPv6 (one socket each), as Centrifugo listens.
    site = web.TCPSite(
        runner, config.server.address or None, config.server.port, reuse_port=reuse_port or None
    )
    await site.start()
    _log.info(
        "rotary node %s listening on %s, engine %s",
        node.uid,
        ", ".join(_host_port(a) for a in runner.addresses),
        config.engine.type,
    )
    if started is not None:
        started.set()
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await _shutdown(node, runner, site, closers)


def _host_port(sockname: object) -> str:
    """``host:port`` of a listening socket's name, IPv6 hosts in brackets."""
    assert isinstance(sockname, tuple)
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _shutdown(
    node: Node, runner: web.AppRunner, site: web.TCPSite, closers: list[Closer]
) -> None:
    _log.info("shutting down: disconnecting %d clients", node.num_sessions)
    runner.app[_SHUTTING_DOWN].set()
    await site.stop()
    node.disconnect_all(DisconnectCode.SHUTDOWN)
    try:
        async with asyncio.timeout(_SHUTDOWN_GRACE):
            await node.wait_sessions_gone()
    except TimeoutError:
        _log.warning("%d clients did not close in time", node.num_sessions)
    await runner.cleanup()
    await node.close()
    if node.revocation is not None:
        await node.revocation.close()
    for close in closers:
        await close()
    _log.info("shutdown complete")


def run(
    config: Config,
    *,
    warnings: Sequence[str] = (),
    demo: DemoSettings | None = None,
    reuse_port: bool = False,
) -> int:
    """Run the server until SIGINT/SIGTERM; return the exit status (0 after a clean stop).

    Logs go to stderr or ``log_file``, plain or (``log_json``) one JSON object per line;
    `warnings` (from loading the configuration) are logged first.
    `demo` (``rotary dev`` only) serves the demo page.
    """
    configure_logging(config.log.level, json=config.log.json, file=config.log.file)
    for line in warnings:
        logging.getLogger("rotary.config").warning("%s", line)
    _tune_gc(config.server.gc_gen0_threshold)
    return asyncio.run(_main(config, demo, reuse_port=reuse_port))


def _tune_gc(gen0_threshold: int) -> None:
    """Freeze what start-up created and collect the youngest generation every
    `gen0_threshold` net allocations (``gc_gen0_threshold``)."""
    # A reconnect storm allocates many short-lived objects per connection; with CPython's
    # default gen-0 threshold (700) the collector then runs thousands of times, and each full
    # collection walks every live connection. Freezing what start-up created and collecting
    # gen 0 less often took server CPU of a 2,000-client storm from 2.5 s to 1.8 s (bench
    # storm), at the cost of a few MB of garbage living a little longer. A gen-0 pause grows
    # with the threshold, though: the objects a storm leaves behind are walked in one go,
    # 10-15 ms at 50,000 (bench latency), which delays the publication in flight.
    gc.freeze()
    gc.set_threshold(gen0_threshold, 50, 100)


async def _main(config: Config, demo: DemoSettings | None, *, reuse_port: bool = False) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, stop, sig)
    try:
        await serve(config, stop=stop, demo=demo, reuse_port=reuse_port)
    except OSError as exc:
        _log.error("cannot serve: %s", exc)
        return 1
    return 0


def _on_signal(stop: asyncio.Event, sig: Any) -> None:
    _log.info("received %s", signal.Signals(sig).name)
    stop.set()
