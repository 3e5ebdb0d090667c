"""The demo chat page of ``rotary dev`` (docs/admin.md "The demo page").

It exists only in development mode: `add_demo_routes` is called by the server only when
``rotary dev`` asks for it, because its token endpoint signs a connection token for any
user name it is sent.
"""

from rotary.demo.http import DemoSettings, add_demo_routes

__all__ = ["DemoSettings", "add_demo_routes"]
