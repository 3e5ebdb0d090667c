"""Free a finished connection's asyncio socket transport by reference counting.

asyncio's selector socket transport keeps ``_read_ready_cb``, a bound method of itself, for
its whole life: transport → method → transport. Once the connection is lost, only the
cycle collector can free it, with its socket object, address tuples and ``__dict__``
(about 1 KB). Rotary runs full collections rarely (`rotary.server`), so a server whose
clients reconnect kept one such transport per connection it ever served: RSS grew for as
long as clients churned. Python 3.12 drops the method in ``close()``, but a connection reset
or aborted never passes there; this drops it when the loss of the connection is delivered,
whichever way it ended.
"""

from __future__ import annotations

from asyncio import selector_events
from typing import Any

__all__ = ["break_transport_cycles"]

_MARK = "_rotary_breaks_cycle"


def break_transport_cycles() -> None:
    """Have asyncio's socket transport drop its bound read callback once its connection is
    lost (nothing reads after that). Idempotent."""
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
