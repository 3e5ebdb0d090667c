"""Free a finished connection's asyncio socket transport by reference counting (Python 3.11).

Python 3.11's selector socket transport keeps ``_read_ready_cb``, a bound method of itself,
for its whole life: transport → method → transport. Once the connection is lost, only the
cycle collector can free it, with its socket object, address tuples and ``__dict__``
(about 1 KB). Rotary runs full collections rarely (`rotary.server`), so a server whose
clients reconnect kept one such transport per connection it ever served: RSS grew for as
long as clients churned. Python 3.12 drops the method when the transport is closed; this
does the same, for every way a connection ends, when its loss is delivered.
"""

from __future__ import annotations

import sys
from asyncio import selector_events
from typing import Any

__all__ = ["break_transport_cycles"]

_MARK = "_rotary_breaks_cycle"


def break_transport_cycles() -> None:
    """Have Python 3.11's socket transport drop its bound read callback once its connection
    is lost (nothing reads after that). No effect on later Pythons. Idempotent."""
    if sys.version_info >= (3, 12):
        return
    cls: Any = getattr(selector_events, "_SelectorSocketTransport", None)
    if cls is None or getattr(cls, _MARK, False):
        return
    lost = cls._call_connection_lost

    def _call_connection_lost(self: Any, exc: BaseException | None) -> None:
        try:
            lost(self, exc)
        finally:
            self._read_ready_cb = None

    cls._call_connection_lost = _call_connection_lost
    setattr(cls, _MARK, True)
