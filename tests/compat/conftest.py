"""The reference server for the differential suite, or a clear reason why it is missing.

Outside CI a missing Centrifugo binary (or a machine without Go to build it) skips the
differential tests with that reason; under ``CI=true`` it fails them, since CI has Go and
`make test` builds the binary first (`tools/ensure.sh centrifugo`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bench.centrifugo import find_centrifugo
from bench.common import ServerUnavailable


@pytest.fixture(scope="session")
def centrifugo_binary() -> Path:
    """The Centrifugo v6.9.1 binary (never built here: `make centrifugo` does that)."""
    try:
        return find_centrifugo()
    except ServerUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI must run the differential tests)")
        pytest.skip(f"differential tests need Centrifugo: {exc}")
