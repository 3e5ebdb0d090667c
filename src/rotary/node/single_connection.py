"""One connection per user (``user_personal_single_connection``, docs/channels.md "User-limited and
personal channels").

Centrifugo, once a user's connection is established, reads the presence of the user's
personal channel and, when it counts two clients or more, asks every node to disconnect
the user's other connections with 3504 "connection limit". Rotary sends that request (the
same control message as the server API ``disconnect`` with the new client whitelisted) after
every connect of a user in this mode, without reading presence first: it costs one broker
message either way, and it works whether or not presence is on in the personal namespace.
Older connections on every node are closed; the new one stays. Like Centrifugo it applies
only when personal-channel subscription is on and the user is not anonymous.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rotary.protocol.codes import DisconnectCode

if TYPE_CHECKING:
    from rotary.node.contracts import Session

__all__ = ["after_connect", "close_other_connections"]

_log = logging.getLogger("rotary.connect")


def after_connect(s: Session) -> None:
    """Start closing the other connections of `s`'s user when the mode applies to it."""
    settings = s.node.settings
    if settings.personal_single_connection and settings.subscribe_to_personal and s.user:
        s.spawn(close_other_connections(s))


async def close_other_connections(s: Session) -> None:
    """Disconnect every other connection of `s`'s user, on every node, with 3504.

    When the request cannot be sent, `s` itself is closed with 3004, as Centrifugo does.
    """
    try:
        await s.node.api_disconnect(
            s.user, whitelist=(s.id,), disconnect=DisconnectCode.CONNECTION_LIMIT
        )
    except Exception:
        _log.exception("client %s: cannot close the other connections of user %r", s.id, s.user)
        s.disconnect(DisconnectCode.SERVER_ERROR)
