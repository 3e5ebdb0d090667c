"""Presence, join/leave, history and recovery, the server API, limits and malformed input."""

from __future__ import annotations

from tests.compat.dsl import (
    Api,
    Batch,
    Closed,
    Cmd,
    Open,
    Push,
    Raw,
    Reply,
    Scenario,
    Send,
    Tok,
    Var,
)
from tests.compat.scenarios._helpers import (
    connect,
    publish,
    sub,
)

__all__ = ["API", "LIMITS", "PRESENCE_HISTORY"]

PRESENCE_HISTORY = [
    Scenario(
        "presence_join_leave_in_order",
        "base",
        (
            *connect("a"),
            sub("a", "chat:room"),
            *connect("b", Tok(sub="7", claims={"info": {"n": 7}})),
            sub("b", "chat:room"),
            Push("a"),
            Cmd("a", {"presence": {"channel": "chat:room"}}),
            Cmd("a", {"presence_stats": {"channel": "chat:room"}}),
            Cmd("b", {"unsubscribe": {"channel": "chat:room"}}),
            Push("a"),
            Cmd("a", {"presence_stats": {"channel": "chat:room"}}),
        ),
        quick=True,
    ),
    Scenario(
        "presence_in_channel_without_presence_gets_108",
        "base",
        (
            *connect("a"),
            sub("a", "news"),
            Cmd("a", {"presence": {"channel": "news"}}),
        ),
    ),
    Scenario(
        "history_after_publications",
        "base",
        (
            *connect("a"),
            sub("a", "chat:h"),
            publish("chat:h", {"n": 1}),
            publish("chat:h", {"n": 2}),
            publish("chat:h", {"n": 3}),
            Push("a", 3),
            Cmd("a", {"history": {"channel": "chat:h", "limit": 2}}),
            Cmd("a", {"history": {"channel": "chat:h", "limit": -1, "reverse": True}}),
            Cmd("a", {"history": {"channel": "chat:h", "limit": 5, "since": {"offset": 1}}}),
            Cmd("a", {"history": {"channel": "chat:h"}}),
        ),
        quick=True,
    ),
    Scenario(
        "history_since_another_epoch",
        "base",
        (
            *connect("a"),
            sub("a", "chat:he"),
            publish("chat:he", {"n": 1}),
            publish("chat:he", {"n": 2}),
            Cmd(
                "a",
                {
                    "history": {
                        "channel": "chat:he",
                        "limit": 5,
                        "since": {"offset": 1, "epoch": "x"},
                    }
                },
            ),
        ),
    ),
    Scenario(
        "history_in_channel_without_history_gets_108",
        "base",
        (
            *connect("a"),
            sub("a", "news"),
            Cmd("a", {"history": {"channel": "news"}}),
        ),
    ),
    Scenario(
        "recovery_returns_missed_publications",
        "base",
        (
            *connect("a"),
            Cmd("a", {"subscribe": {"channel": "chat:rec"}}, save={"e": "subscribe/epoch"}),
            publish("chat:rec", {"n": 1}),
            Push("a"),
            Cmd("a", {"unsubscribe": {"channel": "chat:rec"}}),
            publish("chat:rec", {"n": 2}),
            publish("chat:rec", {"n": 3}),
            Api("history", {"channel": "chat:rec", "limit": 0}, keep=("result.offset",)),
            sub("a", "chat:rec", recover=True, offset=1, epoch=Var("e")),
            Cmd("a", {"unsubscribe": {"channel": "chat:rec"}}),
            sub("a", "chat:rec", recover=True, offset=1, epoch="wrong-epoch"),
            Cmd("a", {"unsubscribe": {"channel": "chat:rec"}}),
            sub("a", "chat:rec", recover=True, offset=99, epoch=Var("e")),
        ),
        quick=True,
    ),
]

API = [
    Scenario(
        "api_publish_and_broadcast_reach_subscribers",
        "base",
        (
            *connect("a"),
            sub("a", "news"),
            sub("a", "chat:x"),
            Push("a"),  # its own join in chat:x
            Api("publish", {"channel": "news", "data": {"p": 1}, "tags": {"k": "v"}}),
            Push("a"),
            Api("broadcast", {"channels": ["news", "chat:x"], "data": {"b": 1}}),
            Push("a", 2, unordered=True),
        ),
        quick=True,
    ),
    Scenario(
        "api_errors",
        "base",
        (
            Api("publish", {"channel": "nope:x", "data": {}}),
            Api("publish", {"channel": "", "data": {}}),
            Api("publish", {"channel": "news"}),
            Api("presence", {"channel": "news"}),
            Api("no_such_method", {}),
            Api("publish", {"channel": "news", "data": {}}, key=""),
            Api("publish", {"channel": "news", "data": {}}, key="wrong"),
        ),
    ),
    Scenario(
        "api_subscribe_unsubscribe_disconnect",
        "base",
        (
            *connect("a"),
            Api("subscribe", {"user": "42", "channel": "chat:srv"}),
            Push("a"),
            Api("unsubscribe", {"user": "42", "channel": "chat:srv"}),
            Push("a"),
            Api("disconnect", {"user": "42", "disconnect": {"code": 4005, "reason": "bye"}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "api_refresh_pushes_new_expiry",
        "base",
        (
            *connect("a"),
            Api("refresh", {"user": "42", "expire_at": 4102444800}),
            Push("a"),
            Api("refresh", {"user": "42", "expired": True}),
            Closed("a"),
        ),
    ),
    Scenario(
        "api_presence_history_channels_info",
        "base",
        (
            *connect("a"),
            sub("a", "chat:api"),
            publish("chat:api", {"n": 1}),
            Api("presence", {"channel": "chat:api"}),
            Api("presence_stats", {"channel": "chat:api"}),
            Api("history", {"channel": "chat:api", "limit": 10}),
            Api("history_remove", {"channel": "chat:api"}),
            Api("history", {"channel": "chat:api", "limit": 10}),
            Api("channels", {}),
            Api("channels", {"pattern": "chat:*"}),
            # Centrifugo refreshes its node counts every few seconds: only the node list counts.
            Api("info", {}, keep=("result.nodes.len",)),
        ),
    ),
    Scenario(
        "api_batch",
        "base",
        (
            Api(
                "batch",
                {
                    "commands": [
                        {"publish": {"channel": "news", "data": {"n": 1}}},
                        {"publish": {"channel": "nope:x", "data": {"n": 2}}},
                        {"presence_stats": {"channel": "chat:b"}},
                    ]
                },
            ),
        ),
    ),
]

LIMITS = [
    Scenario(
        "channel_limit_gets_106",
        "limits",
        (
            *connect("a"),
            sub("a", "c1"),
            sub("a", "c2"),
            sub("a", "c3"),
        ),
    ),
    Scenario(
        "user_connection_limit",
        "limits",
        (
            *connect("a"),
            *connect("b"),
            Closed("b"),
        ),
    ),
    Scenario(
        "message_over_size_limit",
        "limits",
        (
            *connect("a"),
            Raw("a", '{"id":9,"rpc":{"data":"' + "x" * 2000 + '"}}'),
            Closed("a"),
        ),
    ),
    Scenario(
        "malformed_json_closes_3003",
        "base",
        (
            Open("a"),
            Raw("a", "{not json"),
            Closed("a"),
        ),
    ),
    Scenario(
        "command_before_connect",
        "base",
        (
            Open("a"),
            Cmd("a", {"subscribe": {"channel": "news"}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "second_connect_closes",
        "base",
        (
            *connect("a"),
            Cmd("a", {"connect": {"token": Tok()}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "rpc_without_handler_gets_error",
        "base",
        (
            *connect("a"),
            Cmd("a", {"rpc": {"method": "x", "data": {}}}),
        ),
    ),
    Scenario(
        "batched_commands_answered_in_order",
        "base",
        (
            *connect("a"),
            Batch(
                "a",
                (
                    {"subscribe": {"channel": "n1"}},
                    {"subscribe": {"channel": "nope:n2"}},
                    {"presence_stats": {"channel": "chat:zz"}},
                    {"subscribe": {"channel": "n1"}},
                ),
            ),
            Send("a", {"unsubscribe": {"channel": "n1"}}),
            Reply("a"),
        ),
    ),
]
