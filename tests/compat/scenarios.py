"""Every differential scenario, as data (see `tests.compat.dsl` for the step language).

Conventions: connections are named "a", "b"; `_connect(conn, tok)` opens and connects;
channels live in the namespaces of `tests.compat.configs` ("chat": presence, join/leave,
history and recovery, subscribable by any user; "plain": everything off; no namespace:
subscribable by any user).
"""

from __future__ import annotations

import base64
from typing import Any

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
    Sleep,
    Tok,
    Var,
)

__all__ = ["SCENARIOS", "by_id"]

_BAD_SECRET = "not-the-compat-secret-0123456789abcdef0123"
_UNSIGNED = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiI0MiJ9."


def _connect(conn: str = "a", tok: Tok | None = None) -> tuple[Open, Cmd]:
    return Open(conn), Cmd(conn, {"connect": {"token": tok or Tok()}})


def _sub(conn: str, channel: str, **extra: Any) -> Cmd:
    return Cmd(conn, {"subscribe": {"channel": channel, **extra}})


def _subtok(channel: str, sub: str = "42", **kw: Any) -> Tok:
    claims = {"channel": channel, **kw.pop("claims", {})}
    return Tok(sub=sub, claims=claims, **kw)


def _publish(channel: str, data: Any) -> Api:
    return Api("publish", {"channel": channel, "data": data})


def _connect_only(sid: str, tok: Tok, config: str = "base", quick: bool = False) -> Scenario:
    return Scenario(sid, config, _connect("a", tok), quick=quick)


def _connect_then_close(sid: str, tok: Tok, config: str = "base") -> Scenario:
    return Scenario(sid, config, (*_connect("a", tok), Closed("a")))


_B64_INFO = base64.b64encode(b'{"from":"b64"}').decode()

_CONNECTION_TOKENS = [
    _connect_only("connect_hs256_token_gets_client_expiry_and_ping", Tok(), quick=True),
    _connect_only("connect_hs384_token_connects", Tok(alg="HS384")),
    _connect_only("connect_hs512_token_connects", Tok(alg="HS512")),
    _connect_only("connect_token_without_exp_never_expires", Tok(exp_in=None)),
    _connect_only("connect_expired_token_gets_109", Tok(exp_in=-10), quick=True),
    _connect_only("connect_nbf_in_future_gets_109", Tok(claims={"nbf": 4102444800})),
    _connect_then_close("connect_bad_signature_closes_3500", Tok(secret=_BAD_SECRET)),
    _connect_then_close("connect_alg_none_closes_3500", Tok(raw=_UNSIGNED)),
    _connect_then_close("connect_garbage_token_closes_3500", Tok(raw="not-a-jwt")),
    _connect_then_close("connect_numeric_sub_closes_3500", Tok(claims={"sub": 42})),
    _connect_then_close("connect_channel_claim_closes_3500", Tok(claims={"channel": "x"})),
    _connect_then_close("connect_float_expire_at_closes_3500", Tok(claims={"expire_at": 1.5e12})),
    _connect_only("connect_expire_at_overrides_exp", Tok(expire_at_in=100)),
    _connect_only("connect_expire_at_zero_never_expires", Tok(claims={"expire_at": 0})),
    _connect_only("connect_expire_at_in_past_gets_110", Tok(expire_at_in=-100)),
    _connect_only("connect_anonymous_token_connects", Tok(sub="")),
    _connect_then_close("connect_anonymous_token_refused_3507", Tok(sub=""), "no_anon_tokens"),
    Scenario(
        "connect_without_token_closes_3501",
        "base",
        (
            Open("a"),
            Cmd("a", {"connect": {}}),
            Closed("a"),
        ),
        quick=True,
    ),
    Scenario(
        "connect_without_token_allowed_anonymous",
        "anonymous",
        (
            Open("a"),
            Cmd("a", {"connect": {}}),
        ),
    ),
    _connect_only(
        "connect_channels_claim_subscribes_server_side",
        Tok(claims={"channels": ["chat:srv", "news"]}),
    ),
    _connect_only(
        "connect_subs_claim_returns_data",
        Tok(claims={"subs": {"chat:srv": {"data": {"hello": 1}, "info": {"i": 2}}}}),
    ),
    _connect_only(
        "connect_channels_claim_unknown_namespace_gets_102", Tok(claims={"channels": ["nope:x"]})
    ),
    _connect_only("connect_bad_b64info", Tok(claims={"b64info": "***"})),
    _connect_only("connect_token_valid_for_two_years", Tok(exp_in=2 * 365 * 86400)),
    Scenario(
        "connect_info_and_b64info_reach_join_push",
        "base",
        (
            *_connect("a"),
            _sub("a", "chat:info"),
            *_connect("b", Tok(sub="7", claims={"info": {"name": "seven"}})),
            _sub("b", "chat:info"),
            Push("a"),
            *_connect("c", Tok(sub="8", claims={"b64info": _B64_INFO})),
            _sub("c", "chat:info"),
            Push("a"),
        ),
    ),
]

_KEYS = [
    _connect_only("connect_rs256_token_connects", Tok(alg="RS256"), "keys"),
    _connect_only("connect_es256_token_connects", Tok(alg="ES256"), "keys"),
    _connect_then_close(
        "connect_rs256_wrong_key_closes_3500", Tok(alg="RS256", wrong_key=True), "keys"
    ),
    _connect_then_close(
        "connect_es256_wrong_key_closes_3500", Tok(alg="ES256", wrong_key=True), "keys"
    ),
    _connect_then_close("connect_hs256_without_hmac_key_closes_3500", Tok(), "rsa_only"),
    _connect_then_close(
        "connect_es256_without_ecdsa_key_closes_3500", Tok(alg="ES256"), "rsa_only"
    ),
    _connect_only(
        "connect_audience_and_issuer_match",
        Tok(claims={"aud": "rotary-tests", "iss": "compat-iss"}),
        "audiss",
    ),
    _connect_only(
        "connect_audience_list_matches",
        Tok(claims={"aud": ["x", "rotary-tests"], "iss": "compat-iss"}),
        "audiss",
    ),
    _connect_then_close(
        "connect_wrong_audience_closes_3500",
        Tok(claims={"aud": "other", "iss": "compat-iss"}),
        "audiss",
    ),
    _connect_then_close(
        "connect_wrong_issuer_closes_3500",
        Tok(claims={"aud": "rotary-tests", "iss": "other"}),
        "audiss",
    ),
    _connect_then_close(
        "connect_missing_audience_closes_3500", Tok(claims={"iss": "compat-iss"}), "audiss"
    ),
]

_EXPIRY = [
    Scenario(
        "connection_expires_with_3005",
        "base",
        (
            *_connect("a", Tok(exp_in=2)),
            Closed("a"),
        ),
    ),
    Scenario(
        "refresh_extends_connection",
        "base",
        (
            *_connect("a", Tok(exp_in=2)),
            Cmd("a", {"refresh": {"token": Tok(exp_in=600)}}),
            Sleep(3.5),
            Cmd("a", {"rpc": {"method": "nope", "data": {}}}),
        ),
    ),
    Scenario(
        "refresh_with_expired_token_closes_3005",
        "base",
        (
            *_connect("a"),
            Cmd("a", {"refresh": {"token": Tok(exp_in=-5)}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "refresh_with_bad_signature_closes_3500",
        "base",
        (
            *_connect("a"),
            Cmd("a", {"refresh": {"token": Tok(secret=_BAD_SECRET)}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "refresh_for_another_user_closes_3500",
        "base",
        (
            *_connect("a"),
            Cmd("a", {"refresh": {"token": Tok(sub="43")}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "refresh_without_token_closes_3501",
        "base",
        (
            *_connect("a"),
            Cmd("a", {"refresh": {}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "refresh_with_expire_at_in_past_gets_110",
        "base",
        (
            *_connect("a"),
            Cmd("a", {"refresh": {"token": Tok(expire_at_in=-50)}}),
        ),
    ),
]

_SUBSCRIPTION_TOKENS = [
    Scenario(
        "subscribe_private_channel_with_token",
        "base",
        (
            *_connect("a"),
            _sub("a", "$priv", token=_subtok("$priv", claims={"data": {"welcome": True}})),
        ),
        quick=True,
    ),
    Scenario(
        "subscribe_private_channel_without_token_gets_103",
        "base",
        (
            *_connect("a"),
            _sub("a", "$priv"),
        ),
        quick=True,
    ),
    Scenario(
        "subscribe_with_expired_token_gets_109",
        "base",
        (
            *_connect("a"),
            _sub("a", "$priv", token=_subtok("$priv", exp_in=-5)),
        ),
    ),
    Scenario(
        "subscribe_with_bad_signature_gets_103",
        "base",
        (
            *_connect("a"),
            _sub("a", "$priv", token=_subtok("$priv", secret=_BAD_SECRET)),
        ),
    ),
    Scenario(
        "subscribe_with_token_for_other_channel_closes_3500",
        "base",
        (
            *_connect("a"),
            _sub("a", "$priv", token=_subtok("$other")),
            Closed("a"),
        ),
    ),
    Scenario(
        "subscribe_with_token_for_other_user_closes_3500",
        "base",
        (
            *_connect("a"),
            _sub("a", "$priv", token=_subtok("$priv", sub="43")),
            Closed("a"),
        ),
    ),
    Scenario(
        "subscribe_with_token_without_channel_gets_103",
        "base",
        (
            *_connect("a"),
            _sub("a", "$priv", token=Tok()),
        ),
    ),
    Scenario(
        "subscribe_with_token_expire_at_in_past_gets_110",
        "base",
        (
            *_connect("a"),
            _sub("a", "$priv", token=_subtok("$priv", expire_at_in=-50)),
        ),
    ),
    Scenario(
        "subscribe_token_expire_at_sets_ttl",
        "base",
        (
            *_connect("a"),
            _sub("a", "$priv", token=_subtok("$priv", expire_at_in=120)),
        ),
    ),
    Scenario(
        "subscribe_token_opens_plain_namespace",
        "base",
        (
            *_connect("a"),
            _sub("a", "plain:x", token=_subtok("plain:x")),
        ),
    ),
    Scenario(
        "subscribe_token_override_turns_presence_and_join_leave_on",
        "base",
        (
            *_connect("a"),
            _sub(
                "a",
                "plain:o",
                token=_subtok(
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
            *_connect("b", Tok(sub="7")),
            _sub(
                "b",
                "plain:o",
                token=_subtok(
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
            *_connect("a"),
            _sub("a", "$short", token=_subtok("$short", exp_in=2)),
            Push("a"),
        ),
    ),
    Scenario(
        "sub_refresh_extends_subscription",
        "base",
        (
            *_connect("a"),
            _sub("a", "$r", token=_subtok("$r", exp_in=60)),
            Cmd("a", {"sub_refresh": {"channel": "$r", "token": _subtok("$r", exp_in=600)}}),
        ),
    ),
    Scenario(
        "sub_refresh_with_expired_token",
        "base",
        (
            *_connect("a"),
            _sub("a", "$r", token=_subtok("$r", exp_in=60)),
            Cmd("a", {"sub_refresh": {"channel": "$r", "token": _subtok("$r", exp_in=-5)}}),
            # Still subscribed? The next push is the publication, or the end of the subscription.
            _publish("$r", {"after": "refresh"}),
            Push("a"),
        ),
    ),
    Scenario(
        "sub_refresh_with_bad_signature_closes_3500",
        "base",
        (
            *_connect("a"),
            _sub("a", "$r", token=_subtok("$r")),
            Cmd(
                "a", {"sub_refresh": {"channel": "$r", "token": _subtok("$r", secret=_BAD_SECRET)}}
            ),
            Closed("a"),
        ),
    ),
    Scenario(
        "sub_refresh_when_not_subscribed_gets_103",
        "base",
        (
            *_connect("a"),
            Cmd("a", {"sub_refresh": {"channel": "$r", "token": _subtok("$r")}}),
        ),
    ),
    Scenario(
        "sub_refresh_without_token_gets_107",
        "base",
        (
            *_connect("a"),
            _sub("a", "$r", token=_subtok("$r")),
            Cmd("a", {"sub_refresh": {"channel": "$r"}}),
        ),
    ),
]

_NAMESPACES = [
    Scenario(
        "subscribe_unknown_namespace_gets_102",
        "base",
        (
            *_connect("a"),
            _sub("a", "nope:x"),
        ),
        quick=True,
    ),
    Scenario(
        "subscribe_twice_gets_105",
        "base",
        (
            *_connect("a"),
            _sub("a", "news"),
            _sub("a", "news"),
        ),
    ),
    Scenario(
        "subscribe_plain_namespace_without_token_gets_103",
        "base",
        (
            *_connect("a"),
            _sub("a", "plain:x"),
        ),
    ),
    Scenario(
        "subscribe_user_limited_channel",
        "user_limited",
        (
            *_connect("a"),
            _sub("a", "dm#42,7"),
            _sub("a", "dm#7,8"),
        ),
    ),
    Scenario(
        "publish_from_client_needs_permission",
        "base",
        (
            *_connect("a"),
            _sub("a", "news"),
            Cmd("a", {"publish": {"channel": "news", "data": {"x": 1}}}),
            _sub("a", "chat:p"),
            Cmd("a", {"publish": {"channel": "chat:p", "data": {"x": 2}}}),
            Push("a"),
        ),
    ),
    Scenario(
        "unsubscribe_stops_publications",
        "base",
        (
            *_connect("a"),
            _sub("a", "news"),
            _publish("news", {"n": 1}),
            Push("a"),
            Cmd("a", {"unsubscribe": {"channel": "news"}}),
            _publish("news", {"n": 2}),
            _sub("a", "news2"),
            _publish("news2", {"n": 3}),
            Push("a"),
        ),
    ),
]

_PRESENCE_HISTORY = [
    Scenario(
        "presence_join_leave_in_order",
        "base",
        (
            *_connect("a"),
            _sub("a", "chat:room"),
            *_connect("b", Tok(sub="7", claims={"info": {"n": 7}})),
            _sub("b", "chat:room"),
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
            *_connect("a"),
            _sub("a", "news"),
            Cmd("a", {"presence": {"channel": "news"}}),
        ),
    ),
    Scenario(
        "history_after_publications",
        "base",
        (
            *_connect("a"),
            _sub("a", "chat:h"),
            _publish("chat:h", {"n": 1}),
            _publish("chat:h", {"n": 2}),
            _publish("chat:h", {"n": 3}),
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
            *_connect("a"),
            _sub("a", "chat:he"),
            _publish("chat:he", {"n": 1}),
            _publish("chat:he", {"n": 2}),
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
            *_connect("a"),
            _sub("a", "news"),
            Cmd("a", {"history": {"channel": "news"}}),
        ),
    ),
    Scenario(
        "recovery_returns_missed_publications",
        "base",
        (
            *_connect("a"),
            Cmd("a", {"subscribe": {"channel": "chat:rec"}}, save={"e": "subscribe/epoch"}),
            _publish("chat:rec", {"n": 1}),
            Push("a"),
            Cmd("a", {"unsubscribe": {"channel": "chat:rec"}}),
            _publish("chat:rec", {"n": 2}),
            _publish("chat:rec", {"n": 3}),
            Api("history", {"channel": "chat:rec", "limit": 0}, keep=("result.offset",)),
            _sub("a", "chat:rec", recover=True, offset=1, epoch=Var("e")),
            Cmd("a", {"unsubscribe": {"channel": "chat:rec"}}),
            _sub("a", "chat:rec", recover=True, offset=1, epoch="wrong-epoch"),
            Cmd("a", {"unsubscribe": {"channel": "chat:rec"}}),
            _sub("a", "chat:rec", recover=True, offset=99, epoch=Var("e")),
        ),
        quick=True,
    ),
]

_API = [
    Scenario(
        "api_publish_and_broadcast_reach_subscribers",
        "base",
        (
            *_connect("a"),
            _sub("a", "news"),
            _sub("a", "chat:x"),
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
            *_connect("a"),
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
            *_connect("a"),
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
            *_connect("a"),
            _sub("a", "chat:api"),
            _publish("chat:api", {"n": 1}),
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

_LIMITS = [
    Scenario(
        "channel_limit_gets_106",
        "limits",
        (
            *_connect("a"),
            _sub("a", "c1"),
            _sub("a", "c2"),
            _sub("a", "c3"),
        ),
    ),
    Scenario(
        "user_connection_limit",
        "limits",
        (
            *_connect("a"),
            *_connect("b"),
            Closed("b"),
        ),
    ),
    Scenario(
        "message_over_size_limit",
        "limits",
        (
            *_connect("a"),
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
            *_connect("a"),
            Cmd("a", {"connect": {"token": Tok()}}),
            Closed("a"),
        ),
    ),
    Scenario(
        "rpc_without_handler_gets_error",
        "base",
        (
            *_connect("a"),
            Cmd("a", {"rpc": {"method": "x", "data": {}}}),
        ),
    ),
    Scenario(
        "batched_commands_answered_in_order",
        "base",
        (
            *_connect("a"),
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

SCENARIOS: list[Scenario] = [
    *_CONNECTION_TOKENS,
    *_KEYS,
    *_EXPIRY,
    *_SUBSCRIPTION_TOKENS,
    *_NAMESPACES,
    *_PRESENCE_HISTORY,
    *_API,
    *_LIMITS,
]


def by_id() -> dict[str, Scenario]:
    """Scenarios by id (ids are unique: a test checks it)."""
    return {s.id: s for s in SCENARIOS}
