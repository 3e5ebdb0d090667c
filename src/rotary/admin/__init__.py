"""The admin web UI and its endpoints (docs/admin.md).

`tokens` signs and checks admin tokens, `throttle` limits login attempts per address (both
free of I/O, time passed in); `http` mounts the routes and serves the UI from ``static/``.
"""

from rotary.admin.http import add_admin_routes

__all__ = ["add_admin_routes"]
