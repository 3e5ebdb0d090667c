"""The SDK behaviour tests of tests/functional/test_sdk_official_clients.py, unchanged, run by
centrifuge-js over HTTP-streaming (JSON and Protobuf) and SSE with emulation
(docs/transports.md): one shared matrix, not copies. A module of its own so that the test
workers share the matrix's time.

The driver taps fetch and EventSource as it taps the WebSocket, so every assertion on what
crossed the wire holds over emulation too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.functional import test_sdk_official_clients as shared
from tests.functional.conftest import ServerHandle
from tests.sdk.harness import TRANSPORT_SDKS, SdkDriver, open_driver

pytestmark = shared.pytestmark
server = shared.server


@pytest.fixture(params=TRANSPORT_SDKS)
async def sdk(request: pytest.FixtureRequest, server: ServerHandle) -> AsyncIterator[SdkDriver]:
    """centrifuge-js over one streaming transport; closed before the module's server stops."""
    async with open_driver(request.param) as driver:
        yield driver


_TESTS: dict[str, Any] = {
    name: test for name, test in vars(shared).items() if name.startswith("test_")
}
globals().update(_TESTS)
