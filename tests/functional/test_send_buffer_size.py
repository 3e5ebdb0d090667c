"""``websocket_send_buffer_size`` bounds what the kernel holds for a client that stopped
reading, so that the client is cut after that much instead of megabytes.

Without it the kernel autotunes each connection's send buffer up to ``net.ipv4.tcp_wmem``
(4 MiB on common Linux): a stalled peer then keeps megabytes of kernel memory and goes on
receiving writes until they are full. The bytes the kernel holds unsent are read from
``/proc/net/tcp`` (the send queue of each of the server's connections).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.functional.conftest import default_config, make_token
from tests.functional.rawsock import RawWebSocket

_CHANNEL = "narrow"
_SIZE = 64 << 10
_PAYLOAD = "x" * 5000


def _send_queue_max(port: int) -> int:
    """The most bytes written and not yet taken by the peer, of any connection on `port`."""
    local = f":{port:04X}"
    rows = (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
    return max((int(r[4].split(":")[0], 16) for r in rows if r[1].endswith(local)), default=0)


def _publish_until_cut(server: Any) -> int:
    """Publish batches until the stalled client left the node; the largest send queue."""
    # Small batches: a batch is queued in one go, and more than the queue limit at once
    # would cut the client before the kernel's buffer had filled.
    commands = [{"publish": {"channel": _CHANNEL, "data": {"b": _PAYLOAD}}}] * 10
    most = 0
    for _ in range(1000):
        server.api("batch", {"commands": commands})
        most = max(most, _send_queue_max(server.port))
        if server.api("info", {})["result"]["nodes"][0]["num_clients"] == 0:
            return most
    raise AssertionError("the stalled client was never cut")


@pytest.mark.parametrize(
    ("size", "bounded"),
    [pytest.param(_SIZE, True, id="set"), pytest.param(0, False, id="kernel-autotuning")],
)
def test_send_buffer_size_bounds_the_bytes_the_kernel_holds_for_a_stalled_client(
    rotary_server: Any, size: int, bounded: bool
) -> None:
    config = {
        **default_config(),
        "allow_subscribe_for_client": True,
        "websocket_send_buffer_size": size,
        "client_queue_max_size": _SIZE,
    }
    server = rotary_server(config)
    peer = RawWebSocket(server.port, rcvbuf=4096)
    try:
        peer.request({"id": 1, "connect": {"token": make_token("stalled")}})
        peer.request({"id": 2, "subscribe": {"channel": _CHANNEL}})
        most = _publish_until_cut(server)
    finally:
        peer.close()
    # Linux doubles a SO_SNDBUF value for its own bookkeeping; data stays below that.
    if bounded:
        assert most <= 2 * _SIZE, most
    else:
        assert most > 4 * _SIZE, most


def test_negative_send_buffer_size_is_refused() -> None:
    from rotary.config.load import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"send_buffer_size .*: must not be negative"):
        load_config(None, env={}, overrides={"websocket_send_buffer_size": -1})
