"""Rotary: a real-time messaging server speaking Centrifugo's client protocol."""

__all__ = ["PROTOCOL_COMPAT_VERSION", "__version__"]

__version__ = "0.1.0"

#: The Centrifugo server version reported to clients in ConnectResult.version.
PROTOCOL_COMPAT_VERSION = "5.4.9"
