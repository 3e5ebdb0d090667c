"""The one exception root of Rotary.

Every exception Rotary raises on purpose derives from `RotaryError`, so an embedding
application can catch Rotary's failures without catching its own.
"""

__all__ = ["ConfigError", "RotaryError"]


class RotaryError(Exception):
    """Root of every exception Rotary raises on purpose."""


class ConfigError(RotaryError):
    """Configuration could not be loaded or is invalid.

    `problems` lists every problem found, each prefixed with the dotted key it concerns,
    so that one run of the loader reports all of them at once.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) if self.problems else "invalid configuration")
