"""Lua scripts shipped as package files, run by SHA with a fallback when Redis forgot them."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

__all__ = ["Script"]


class Script:
    """One Lua script from ``rotary/engines/redis/lua/<name>.lua``.

    `run` sends EVALSHA; when Redis answers NOSCRIPT (restarted, SCRIPT FLUSH, a new shard)
    it sends the source once with EVAL, which also caches it for the next EVALSHA.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = (
            resources.files("rotary.engines.redis")
            .joinpath("lua", f"{name}.lua")
            .read_text(encoding="utf-8")
        )
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    async def run(self, client: Any, keys: list[str], args: list[str | bytes | int]) -> Any:
        """Run the script on `client` (a redis-py asyncio client) and return its reply."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)
