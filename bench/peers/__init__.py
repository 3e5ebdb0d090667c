"""Peer servers measured beside Rotary; each runs as `python -m bench.peers.<name> --port P`.

- `picows_broadcast`: bare WebSocket broadcast on picows (no protocol, no auth).
- `aiohttp_broadcast`: the same on aiohttp, the library Rotary is built on.
- `socketio_server`: python-socketio (AsyncServer on aiohttp) with PyJWT checks and rooms.
- `centrifugo`: Centrifugo v6.9.1 itself (a Go binary, see bench/centrifugo.py), started
  with Rotary's own bench configuration and GOMAXPROCS=1.

The broadcast peers send every publication's bytes unchanged to every connection.
"""
