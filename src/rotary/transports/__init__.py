"""Transports: WebSocket (aiohttp)."""
