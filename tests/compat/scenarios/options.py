"""Options beyond the base file: separate subscription keys, a custom user claim, insecure
mode, personal channels, namespace permissions, positioning and cache recovery."""

from __future__ import annotations

import hashlib
import hmac
import time

from tests.compat.configs import POLL_SECRET, SUB_SECRET
from tests.compat.dsl import Api, Closed, Cmd, Open, Push, Scenario, Tok, Var
from tests.compat.scenarios._helpers import connect, publish, sub, subtok

__all__ = ["OPTIONS"]

ENG = {"key": "team", "cmp": "eq", "val": "eng"}


def track_signature(channel: str, keys: list[str], user: str = "42") -> str:
    """A shared poll track signature as an app's backend makes it, valid for a month."""
    iat = int(time.time())
    expiry = iat + 30 * 86400
    keys_hash = hashlib.sha256("\x00".join(keys).encode()).hexdigest()
    payload = f"{iat}\x00{expiry}\x00{user}\x00{channel}\x00{keys_hash}"
    mac = hmac.new(POLL_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{iat}:{expiry}:{mac}"


def poll_publish(key: str, version: int, **extra: object) -> Api:
    """A ``shared_poll_publish`` of `key` into ``sp:1``."""
    return Api("shared_poll_publish", {"channel": "sp:1", "key": key, "version": version, **extra})


def tagged(channel: str, n: int, team: str) -> Api:
    """A publication of ``{"n": n}`` tagged with its team."""
    return Api("publish", {"channel": channel, "data": {"n": n}, "tags": {"team": team}})


OPTIONS = [
    Scenario(
        "separate_subscription_key_is_the_only_one_for_subscriptions",
        "sub_tokens",
        (
            *connect("a"),
            sub("a", "$s", token=subtok("$s")),
            sub("a", "$s", token=subtok("$s", secret=SUB_SECRET)),
        ),
    ),
    Scenario(
        "custom_user_id_claim_names_the_user",
        "user_claim",
        (
            *connect("a", Tok(sub="ignored", claims={"user_id": "77"})),
            sub("a", "chat:u"),
            Cmd("a", {"presence": {"channel": "chat:u"}}),
        ),
    ),
    Scenario(
        "insecure_mode_connects_and_subscribes_without_tokens",
        "insecure",
        (
            Open("a"),
            Cmd("a", {"connect": {}}),
            sub("a", "plain:x"),
            sub("a", "$priv"),
            Cmd("a", {"publish": {"channel": "plain:x", "data": {"i": 1}}}),
            Push("a"),
        ),
    ),
    Scenario(
        "personal_channel_is_subscribed_at_connect",
        "personal",
        (
            *connect("a"),
            Api("presence", {"channel": "#42"}),
            publish("#42", {"to": "me"}),
            Push("a"),
        ),
    ),
    Scenario(
        "namespace_permissions_for_clients_and_anonymous",
        "open_ns",
        (
            *connect("a"),
            Cmd("a", {"presence": {"channel": "open:p"}}),
            Cmd("a", {"history": {"channel": "open:p", "limit": 1}}),
            Cmd("a", {"publish": {"channel": "open:p", "data": {"n": 1}}}),
            Cmd("a", {"history": {"channel": "open:p", "limit": 5}}),
            *connect("b", Tok(sub="")),
            sub("b", "open:p"),
            sub("b", "chat:p"),
            Cmd("b", {"presence": {"channel": "open:p"}}),
        ),
    ),
    Scenario(
        "client_publication_carries_publisher_info",
        "base",
        (
            *connect("a", Tok(claims={"info": {"name": "a"}})),
            sub("a", "chat:pi"),
            *connect("b", Tok(sub="7")),
            sub("b", "chat:pi"),
            Push("b"),  # b's own join
            Cmd("a", {"publish": {"channel": "chat:pi", "data": {"hi": 1}}}),
            Push("b"),
        ),
    ),
    Scenario(
        "forced_positioning_reports_the_stream_position",
        "open_ns",
        (
            *connect("a"),
            publish("pos:x", {"n": 1}),
            sub("a", "pos:x"),
            publish("pos:x", {"n": 2}),
            Push("a"),
        ),
    ),
    Scenario(
        "cache_recovery_returns_only_the_latest_publication",
        "open_ns",
        (
            *connect("a"),
            Cmd("a", {"subscribe": {"channel": "cache:x"}}, save={"e": "subscribe/epoch"}),
            Cmd("a", {"unsubscribe": {"channel": "cache:x"}}),
            publish("cache:x", {"n": 1}),
            publish("cache:x", {"n": 2}),
            sub("a", "cache:x", recover=True, offset=0, epoch=Var("e")),
        ),
    ),
    Scenario(
        "connection_limit_refuses_the_upgrade",
        "connection_limit",
        (*connect("a"), Open("b"), Open("c")),
    ),
    Scenario(
        "refresh_without_expiry",
        "base",
        (
            *connect("a", Tok(exp_in=2)),
            Cmd("a", {"refresh": {"token": Tok(exp_in=None)}}),
            Closed("a", wait=5),
        ),
    ),
    Scenario(
        "token_with_crit_header",
        "base",
        (*connect("a", Tok(header={"crit": ["exp"]})), Closed("a", wait=3)),
    ),
    Scenario(
        "api_revoke_token",
        "base",
        (Api("revoke_token", {"uid": "some-jti", "expire_at": 4102444800}),),
    ),
    Scenario(
        "single_connection_per_user_closes_the_older_one",
        "single_connection",
        (
            *connect("a"),
            *connect("b"),
            Closed("a"),
            Cmd("b", {"presence_stats": {"channel": "chat:x"}}),
        ),
    ),
    Scenario(
        "client_that_never_answers_pings_is_closed",
        "fast_ping",
        (*connect("a"), Push("a"), Closed("a", wait=8)),
    ),
    Scenario(
        "server_time_rpc_ping_and_fossil_deltas",
        "extras",
        (
            *connect("a"),
            Cmd("a", {"rpc": {"method": "ping"}}),
            sub("a", "delta:d", delta="fossil"),
            Api(
                "publish",
                {"channel": "delta:d", "data": {"text": "hello world " * 4}, "delta": True},
            ),
            Api(
                "publish",
                {"channel": "delta:d", "data": {"text": "hello there " * 4}, "delta": True},
            ),
            Push("a", 2),
        ),
    ),
    Scenario(
        "channel_names_and_permissions_edge_cases",
        "base",
        (
            *connect("a"),
            sub("a", "x" * 300),
            Cmd("a", {"unsubscribe": {"channel": "never-subscribed"}}),
            Cmd("a", {"publish": {"channel": "chat:not-mine", "data": {}}}),
            Cmd("a", {"presence": {"channel": "chat:not-mine"}}),
            Cmd("a", {"history": {"channel": "chat:not-mine"}}),
            sub("a", ""),
        ),
    ),
    Scenario(
        "api_disconnect_with_reconnect_code",
        "base",
        (
            *connect("a"),
            Api("disconnect", {"user": "42", "disconnect": {"code": 3001, "reason": "again"}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "recovery_and_live_delivery_through_a_tags_filter",
        "tags",
        (
            *connect("a"),
            sub("a", "free", tf=ENG),  # no namespace: tags filters not allowed
            sub("a", "tagged:x", tf={"key": "team", "cmp": "eq"}),  # eq without val
            # Offset 1 first: Centrifugo puts the epoch into that one publication only.
            tagged("tagged:x", 0, "ops"),
            tagged("tagcache:y", 0, "ops"),
            Cmd(
                "a",
                {"subscribe": {"channel": "tagged:x", "tf": ENG}},
                save={"e": "subscribe/epoch"},
            ),
            tagged("tagged:x", 1, "eng"),
            tagged("tagged:x", 2, "ops"),
            tagged("tagged:x", 3, "eng"),
            Push("a", 2),
            Cmd("a", {"unsubscribe": {"channel": "tagged:x"}}),
            tagged("tagged:x", 4, "ops"),
            tagged("tagged:x", 5, "eng"),
            tagged("tagged:x", 6, "ops"),
            sub("a", "tagged:x", tf=ENG, recover=True, offset=2, epoch=Var("e")),
            Cmd("a", {"subscribe": {"channel": "tagcache:y"}}, save={"c": "subscribe/epoch"}),
            Cmd("a", {"unsubscribe": {"channel": "tagcache:y"}}),
            tagged("tagcache:y", 1, "eng"),
            tagged("tagcache:y", 2, "ops"),
            sub("a", "tagcache:y", tf=ENG, recover=True, offset=0, epoch=Var("c")),
            sub("a", "tagged:d", tf=ENG, delta="fossil"),
        ),
        quick=True,
    ),
    Scenario(
        "server_side_subscriptions_in_a_tags_filter_namespace_get_every_publication",
        "tags",
        (
            # Offset 1 first: Centrifugo puts the epoch into that one publication only.
            tagged("tagged:s", 0, "ops"),
            tagged("tagged:c", 0, "ops"),
            # Neither subs nor the channels claim can give a filter ("tf" is no option).
            *connect("a", Tok(claims={"subs": {"tagged:s": {"tf": ENG}}})),
            *connect("b", Tok(sub="43", claims={"channels": ["tagged:c"]})),
            tagged("tagged:s", 1, "ops"),
            tagged("tagged:s", 2, "eng"),
            tagged("tagged:c", 3, "ops"),
            Push("a", 2),
            Push("b"),
        ),
    ),
    Scenario(
        "shared_poll_publish_pushes_new_versions_and_a_new_epoch_resets_subscribers",
        "shared_poll",
        (
            *connect("a"),
            sub("a", "sp:1", type=4),
            Cmd(
                "a",
                {
                    "sub_refresh": {
                        "channel": "sp:1",
                        "type": 1,
                        "track": [
                            {
                                "signature": track_signature("sp:1", ["k1", "k2"]),
                                "items": [{"key": "k1"}, {"key": "k2"}],
                            }
                        ],
                    }
                },
            ),
            poll_publish("k1", 2, data={"n": 2}),
            Push("a"),
            poll_publish("k1", 2, data={"n": 0}),  # not above the version held: dropped
            poll_publish("k2", 1, b64data="eyJiIjoxfQ=="),
            Push("a"),
            poll_publish("k1", 3),  # no data: the version alone
            Push("a"),
            # A new epoch unsubscribes the channel's subscribers with 2500. The engine of one
            # node brings the node every key's publications, tracked or not (on Redis, only
            # the nodes tracking the key get it: tests/functional/test_shared_poll_extras.py).
            poll_publish("untracked", 1, epoch="e2", data={}),
            Push("a"),
            poll_publish("", 1, data={}),
            Api("shared_poll_publish", {"channel": "nope:1", "key": "k", "version": 1}),
            Api("shared_poll_publish", {"channel": "chat:1", "key": "k", "version": 1}),
        ),
    ),
]
