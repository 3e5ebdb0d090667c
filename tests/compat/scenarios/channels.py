"""Subscription tokens, sub_refresh, subscription expiry, namespaces and their options."""

from __future__ import annotations

from tests.compat.dsl import (
    Api,
    Closed,
    Cmd,
    Push,
    Scenario,
    Tok,
)
from tests.compat.scenarios._helpers import (
    BAD_SECRET,
    connect,
    publish,
    sub,
    subtok,
)

__all__ = ["NAMESPACES", "SUBSCRIPTION_TOKENS"]

SUBSCRIPTION_TOKENS = [
    Scenario(
        "subscribe_private_channel_with_token",
        "base",
        (
            *connect("a"),
            sub("a", "$priv", token=subtok("$priv", claims={"data": {"welcome": True}})),
        ),
        quick=True,
    ),
    Scenario(
        "subscribe_private_channel_without_token_gets_103",
        "base",
        (
            *connect("a"),
            sub("a", "$priv"),
        ),
        quick=True,
    ),
    Scenario(
        "subscribe_with_expired_token_gets_109",
        "base",
        (
            *connect("a"),
            sub("a", "$priv", token=subtok("$priv", exp_in=-5)),
        ),
    ),
    Scenario(
        "subscribe_with_bad_signature_gets_103",
        "base",
        (
            *connect("a"),
            sub("a", "$priv", token=subtok("$priv", secret=BAD_SECRET)),
        ),
    ),
    Scenario(
        "subscribe_with_token_for_other_channel_closes_3500",
        "base",
        (
            *connect("a"),
            sub("a", "$priv", token=subtok("$other")),
            Closed("a"),
        ),
    ),
    Scenario(
        "subscribe_with_token_for_other_user_closes_3500",
        "base",
        (
            *connect("a"),
            sub("a", "$priv", token=subtok("$priv", sub="43")),
            Closed("a"),
        ),
    ),
    Scenario(
        "subscribe_with_token_without_channel_gets_103",
        "base",
        (
            *connect("a"),
            sub("a", "$priv", token=Tok()),
        ),
    ),
    Scenario(
        "subscribe_with_token_expire_at_in_past_gets_110",
        "base",
        (
            *connect("a"),
            sub("a", "$priv", token=subtok("$priv", expire_at_in=-50)),
        ),
    ),
    Scenario(
        "subscribe_token_expire_at_sets_ttl",
        "base",
        (
            *connect("a"),
            sub("a", "$priv", token=subtok("$priv", expire_at_in=120)),
        ),
    ),
    Scenario(
        "subscribe_token_opens_plain_namespace",
        "base",
        (
            *connect("a"),
            sub("a", "plain:x", token=subtok("plain:x")),
        ),
    ),
    Scenario(
        "subscribe_token_override_turns_presence_and_join_leave_on",
        "base",
        (
            *connect("a"),
            sub(
                "a",
                "plain:o",
                token=subtok(
                    "plain:o",
                    claims={
                        "override": {
                            "presence": {"value": True},
                            "join_leave": {"value": True},
                            "force_push_join_leave": {"value": True},
                        }
                    },
                ),
            ),
            *connect("b", Tok(sub="7")),
            sub(
                "b",
                "plain:o",
                token=subtok(
                    "plain:o",
                    sub="7",
                    claims={
                        "override": {"presence": {"value": True}, "join_leave": {"value": True}}
                    },
                ),
            ),
            Push("a"),
            Api("presence_stats", {"channel": "plain:o"}),
        ),
    ),
    Scenario(
        "subscription_expires_with_2501",
        "base",
        (
            *connect("a"),
            sub("a", "$short", token=subtok("$short", exp_in=2)),
            Push("a"),
        ),
    ),
    Scenario(
        "sub_refresh_extends_subscription",
        "base",
        (
            *connect("a"),
            sub("a", "$r", token=subtok("$r", exp_in=60)),
            Cmd("a", {"sub_refresh": {"channel": "$r", "token": subtok("$r", exp_in=600)}}),
        ),
    ),
    Scenario(
        "sub_refresh_with_expired_token",
        "base",
        (
            *connect("a"),
            sub("a", "$r", token=subtok("$r", exp_in=60)),
            Cmd("a", {"sub_refresh": {"channel": "$r", "token": subtok("$r", exp_in=-5)}}),
            # Still subscribed? The next push is the publication, or the end of the subscription.
            publish("$r", {"after": "refresh"}),
            Push("a"),
        ),
    ),
    Scenario(
        "sub_refresh_with_bad_signature_closes_3500",
        "base",
        (
            *connect("a"),
            sub("a", "$r", token=subtok("$r")),
            Cmd("a", {"sub_refresh": {"channel": "$r", "token": subtok("$r", secret=BAD_SECRET)}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "sub_refresh_when_not_subscribed_gets_103",
        "base",
        (
            *connect("a"),
            Cmd("a", {"sub_refresh": {"channel": "$r", "token": subtok("$r")}}),
        ),
    ),
    Scenario(
        "sub_refresh_without_token_gets_107",
        "base",
        (
            *connect("a"),
            sub("a", "$r", token=subtok("$r")),
            Cmd("a", {"sub_refresh": {"channel": "$r"}}),
        ),
    ),
]

NAMESPACES = [
    Scenario(
        "subscribe_unknown_namespace_gets_102",
        "base",
        (
            *connect("a"),
            sub("a", "nope:x"),
        ),
        quick=True,
    ),
    Scenario(
        "subscribe_twice_gets_105",
        "base",
        (
            *connect("a"),
            sub("a", "news"),
            sub("a", "news"),
        ),
    ),
    Scenario(
        "subscribe_plain_namespace_without_token_gets_103",
        "base",
        (
            *connect("a"),
            sub("a", "plain:x"),
        ),
    ),
    Scenario(
        "subscribe_user_limited_channel",
        "user_limited",
        (
            *connect("a"),
            sub("a", "dm#42,7"),
            sub("a", "dm#7,8"),
        ),
    ),
    Scenario(
        "publish_from_client_needs_permission",
        "base",
        (
            *connect("a"),
            sub("a", "news"),
            Cmd("a", {"publish": {"channel": "news", "data": {"x": 1}}}),
            sub("a", "chat:p"),
            Cmd("a", {"publish": {"channel": "chat:p", "data": {"x": 2}}}),
            Push("a"),
        ),
    ),
    Scenario(
        "unsubscribe_stops_publications",
        "base",
        (
            *connect("a"),
            sub("a", "news"),
            publish("news", {"n": 1}),
            Push("a"),
            Cmd("a", {"unsubscribe": {"channel": "news"}}),
            publish("news", {"n": 2}),
            sub("a", "news2"),
            publish("news2", {"n": 3}),
            Push("a"),
        ),
    ),
]
