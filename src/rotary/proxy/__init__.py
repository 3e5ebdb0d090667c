"""Centrifugo's HTTP proxy: connect, refresh, subscribe, sub_refresh, publish and RPC events are
sent to the app's backend as JSON POSTs, and its answers decide (docs/backend.md "The proxy").

`settings` holds the configuration values; `answers` builds request bodies and reads answers
(no I/O); `caller` is the one HTTP seam (aiohttp); `hooks` is what the node calls.
"""
