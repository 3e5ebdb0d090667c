"""Transports: WebSocket, HTTP-streaming, SSE (with emulation) and the unidirectional ones
(aiohttp), all on the one seam of `rotary.node.outbox`."""
