"""Centrifugo as a benchmark peer: the same configurations Rotary runs with, in v6 keys.

Centrifugo speaks the protocol Rotary speaks, so the load clients of kind ``rotary`` drive
it unchanged. It runs with GOMAXPROCS=1 and is pinned to the server CPU like Rotary, so
each ratio compares one core with one core. `BENCH_CENTRIFUGO_GOMAXPROCS=0` lets Go use
every core (GOMAXPROCS unset, process not pinned), ``=N`` N of them (not pinned either):
for information, as Centrifugo is deployed; the load workers then share its cores, and its
labels in the results say so (`cores_label`).
"""

from __future__ import annotations

import os
from typing import Any

from bench.centrifugo import start_centrifugo
from bench.common import API_KEY, SECRET, ServerProcess

__all__ = ["centrifugo_config", "cores_label", "gomaxprocs", "start_centrifugo_peer"]


def centrifugo_config(*, public_channels: bool) -> dict[str, Any]:
    """Rotary's bench configuration in Centrifugo v6 keys.

    Connection tokens are checked; with `public_channels` any authenticated user may
    subscribe to channels without a namespace (Rotary's ``ROTARY_STANDARD``), without it only
    subscription tokens open channels (``ROTARY_CHECKED``, whose storm uses `$` channels).
    """
    return {
        "client": {"token": {"hmac_secret_key": SECRET}},
        "http_api": {"key": API_KEY},
        "log": {"level": "error"},
        "channel": {"without_namespace": {"allow_subscribe_for_client": public_channels}},
    }


def gomaxprocs() -> int:
    """``BENCH_CENTRIFUGO_GOMAXPROCS`` (1 unless set; 0: as many as Go finds)."""
    return int(os.environ.get("BENCH_CENTRIFUGO_GOMAXPROCS", "1"))


def cores_label() -> str:
    """How Centrifugo runs, for result labels: ``GOMAXPROCS=1``, ``GOMAXPROCS=4`` or
    ``all cores``."""
    procs = gomaxprocs()
    return f"GOMAXPROCS={procs}" if procs else "all cores"


def start_centrifugo_peer(*, public_channels: bool) -> ServerProcess:
    """Start Centrifugo with `centrifugo_config`, one Go scheduler thread unless overridden.

    Only the one-thread run is pinned to the server CPU: pinned, more threads would share it.
    """
    procs = gomaxprocs()
    config = centrifugo_config(public_channels=public_channels)
    return start_centrifugo(config, gomaxprocs=procs or None, pin=procs == 1)
