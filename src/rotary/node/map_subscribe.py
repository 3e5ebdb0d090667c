"""The subscribe command for map channels: state pages, stream catch-up, then live.

docs/map-subscriptions.md "Subscribing". A client walks through phases, one subscribe
request each: STATE pages (``phase`` 2, with a ``cursor`` after the first), then STREAM
pages (``phase`` 1) from the position the first state page named, until the server answers
with phase LIVE (0, omitted on the wire) and the subscription is live. Only the first
request of a flow is authorized; later ones continue it. The server goes live on its own
when the client is close enough to the stream's top, as Centrifugo does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rotary.engines.base import StreamPosition, UnrecoverablePosition
from rotary.engines.maps import MapPublication
from rotary.node import revocation, subscribe, tags
from rotary.node.map_delta import delta_state, recovered_map_publications
from rotary.node.map_flows import FLOWS, Flow, drop
from rotary.node.maps import MapSubscriber
from rotary.node.subscription import add_expiry, add_publish_debounce
from rotary.protocol.base import NotEncodable
from rotary.protocol.codes import CommandError, DisconnectCode, DisconnectError, ErrorCode
from rotary.protocol.messages import (
    MAP_PHASE_STATE,
    MAP_PHASE_STREAM,
    TYPE_MAP,
    SubscribeRequest,
)

if TYPE_CHECKING:
    from rotary.node.contracts import Session

__all__ = ["handle_map_subscribe"]


async def handle_map_subscribe(s: Session, cmd_id: int, req: SubscribeRequest) -> None:
    """Answer one request of a map subscribe flow (a page, or the live reply), in either
    wire format. Data a JSON client cannot carry (binary, or not text under fossil delta)
    closes its connection with 3506."""
    flow = await _flow(s, req)
    try:
        if req.phase == MAP_PHASE_STATE:
            await _state_phase(s, cmd_id, req, flow)
        elif req.phase == MAP_PHASE_STREAM and flow.settings.has_stream:
            await _stream_phase(s, cmd_id, req, flow)
        else:  # a live request, or a stream request in a map without a stream
            raise CommandError(ErrorCode.BAD_REQUEST)
    except NotEncodable:
        drop(s, req.channel)
        s.unencodable()
    except BaseException:
        drop(s, req.channel)
        raise


async def _flow(s: Session, req: SubscribeRequest) -> Flow:
    """The flow this request continues, or a new one once the request is authorized."""
    flows = FLOWS.get(s)
    flow = flows.get(req.channel) if flows else None
    continues = req.cursor != "" or req.phase != MAP_PHASE_STATE
    if flow is not None and continues:
        if s.node.clock.monotonic() - flow.started > flow.settings.catch_up_timeout:
            drop(s, req.channel)
            raise DisconnectError(DisconnectCode.SLOW)
        return flow
    if req.cursor:  # a page of a flow that never started here
        raise CommandError(ErrorCode.PERMISSION_DENIED)
    sub, data = await subscribe.admit_map(s, req)
    settings = s.node.maps.settings(req.channel)
    flow = Flow(sub, settings, s.node.clock.monotonic(), data)
    FLOWS.setdefault(s, {})[req.channel] = flow
    return flow


async def _state_phase(s: Session, cmd_id: int, req: SubscribeRequest, flow: Flow) -> None:
    maps, settings, channel = s.node.maps, flow.settings, req.channel
    limit = settings.page_size(req.limit)
    page = await maps.broker.read_state(channel, settings, cursor=req.cursor, limit=limit)
    if (req.epoch or req.offset) and req.epoch != page.position.epoch:
        raise CommandError(ErrorCode.UNRECOVERABLE_POSITION)
    if flow.position is None or not req.cursor:
        flow.position = page.position
    entries = page.entries
    if req.cursor:  # later pages: what changed after the first page comes from the stream
        entries = [e for e in entries if e.offset <= flow.position.offset]
    entries = tags.passing(entries, flow.sub.tags_filter)
    if not page.cursor and await _near_top(s, flow, limit):
        await _go_live(s, cmd_id, req, flow, since=flow.position, state=entries)
        return
    result: dict[str, Any] = {
        "type": TYPE_MAP,
        "phase": MAP_PHASE_STATE,
        "epoch": flow.position.epoch,
        "offset": flow.position.offset,
        "state": _whole(s, flow, entries),
    }
    if page.cursor:
        result["cursor"] = page.cursor
    s.reply(cmd_id, "subscribe", result)


async def _near_top(s: Session, flow: Flow, limit: int) -> bool:
    """Whether the last state page may go live at once: no stream, or at most a page behind."""
    if not flow.settings.has_stream or flow.position is None:
        return True
    top = await s.node.maps.broker.read_stream(flow.sub.channel, flow.settings, since=None, limit=0)
    return flow.position.offset + limit >= top.position.offset


async def _stream_phase(s: Session, cmd_id: int, req: SubscribeRequest, flow: Flow) -> None:
    since = StreamPosition(req.offset, req.epoch)
    limit = flow.settings.page_size(req.limit)
    try:
        page = await s.node.maps.broker.read_stream(
            req.channel, flow.settings, since=since, limit=limit
        )
    except UnrecoverablePosition:
        raise CommandError(ErrorCode.UNRECOVERABLE_POSITION) from None
    pubs = page.publications
    if not pubs or pubs[-1].offset + limit >= page.position.offset:
        await _go_live(s, cmd_id, req, flow, since=since, state=[])
        return
    result = {
        "type": TYPE_MAP,
        "phase": MAP_PHASE_STREAM,
        "epoch": page.position.epoch,
        "offset": pubs[-1].offset,  # past the filtered out ones too
        "publications": _whole(s, flow, tags.passing(pubs, flow.sub.tags_filter)),
    }
    s.reply(cmd_id, "subscribe", result)


async def _go_live(
    s: Session,
    cmd_id: int,
    req: SubscribeRequest,
    flow: Flow,
    *,
    since: StreamPosition,
    state: list[MapPublication],
) -> None:
    """Buffer changes, catch up from `since`, reply with phase LIVE, then deliver live."""
    channel, sub, maps = req.channel, flow.sub, s.node.maps
    if channel in s.subs or channel in s.subscribing:
        raise CommandError(ErrorCode.ALREADY_SUBSCRIBED)
    s.subscribing.add(channel)
    maps.hub.add_pending(channel, s.id, _subscriber(s, flow))
    try:
        caught_up, top = await _catch_up(s, flow, since)
        caught_up = tags.passing(caught_up, sub.tags_filter)  # filtered before delta chains
        if flow.sub.delta:
            state = delta_state(state, s.codec)
            caught_up = recovered_map_publications(caught_up, s.codec)
    except BaseException:
        maps.hub.remove(channel, s.id)
        raise
    finally:
        s.subscribing.discard(channel)
    drop(s, channel)
    now = s.node.clock.now()
    if sub.expire_at and sub.expire_at <= now:
        maps.hub.remove(channel, s.id)
        raise CommandError(ErrorCode.EXPIRED)
    result = _live_result(req, flow, top, state, caught_up)
    add_expiry(result, sub.expire_at, now)
    resolved = s.node.resolver.resolve(channel)
    if resolved is not None:
        add_publish_debounce(result, resolved.options.client_publish_debounce_interval)
    s.reply(cmd_id, "subscribe", result)
    s.subs[channel] = sub
    for data in maps.hub.activate(channel, s.id, top):
        s.push(data)
    if s.node.maps.presence_maps:
        s.spawn(s.node.maps.join_presence(channel, sub.info))
    if sub.token_identity is not None:
        revocation.recheck_subscription(s, sub, now)


async def _catch_up(
    s: Session, flow: Flow, since: StreamPosition
) -> tuple[list[MapPublication], StreamPosition]:
    """Changes after `since` and the position they reach; 112 when too far behind."""
    settings, channel = flow.settings, flow.sub.channel
    broker = s.node.maps.broker
    if not settings.has_stream:
        top = (await broker.read_state(channel, settings, limit=0)).position
        return [], top
    try:
        stream = await broker.read_stream(
            channel, settings, since=since, limit=settings.live_limit + 1
        )
    except UnrecoverablePosition:
        raise CommandError(ErrorCode.UNRECOVERABLE_POSITION) from None
    pubs = stream.publications
    if len(pubs) > settings.live_limit:
        raise CommandError(ErrorCode.UNRECOVERABLE_POSITION)
    return pubs, stream.position


def _live_result(
    req: SubscribeRequest,
    flow: Flow,
    top: StreamPosition,
    state: list[MapPublication],
    caught_up: list[MapPublication],
) -> dict[str, Any]:
    result: dict[str, Any] = {"type": TYPE_MAP, "epoch": top.epoch, "offset": top.offset}
    if flow.settings.has_stream:
        result["recoverable"] = True
    if flow.sub.delta:
        result["delta"] = True
    if state:
        result["state"] = state
    if caught_up:
        result["publications"] = caught_up
    if req.recover:
        result.update(was_recovering=True, recovered=True)
    if flow.data:
        result["data"] = flow.data
    return result


def _whole(s: Session, flow: Flow, pubs: list[MapPublication]) -> list[MapPublication]:
    """Entries or changes of a page as the subscriber receives them (whole; under fossil
    delta over JSON, data as JSON strings). Raises `NotEncodable` like the codec."""
    return delta_state(pubs, s.codec) if flow.sub.delta else pubs


def _subscriber(s: Session, flow: Flow) -> MapSubscriber:
    node = s.node
    return MapSubscriber(
        s.push,
        s.codec,
        flow.sub.delta,
        unencodable=lambda: node.call_soon(s.unencodable),
        tags_filter=flow.sub.tags_filter,
    )
