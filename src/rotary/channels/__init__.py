"""Channel names, namespaces and their options."""

from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.channels.resolver import NAMESPACE_NAME_PATTERN, ChannelResolver, ResolvedChannel

__all__ = [
    "NAMESPACE_NAME_PATTERN",
    "ChannelOptions",
    "ChannelResolver",
    "ChannelSettings",
    "Namespace",
    "ResolvedChannel",
]
