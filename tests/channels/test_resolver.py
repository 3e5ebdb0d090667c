"""Channel name parsing, validity, user limits and personal channels (docs/channels.md)."""

from __future__ import annotations

import pytest

from rotary.channels import (
    ChannelOptions,
    ChannelResolver,
    ChannelSettings,
    Namespace,
    ResolvedChannel,
)
from rotary.errors import ConfigError

TOP = ChannelOptions(presence=True)
CHAT = ChannelOptions(join_leave=True)
LIMITED = ChannelOptions(allow_user_limited_channels=True)


def make_resolver(*namespaces: Namespace, **kwargs: object) -> ChannelResolver:
    settings = ChannelSettings(
        without_namespace=kwargs.pop("top", TOP),  # type: ignore[arg-type]
        namespaces=namespaces or (Namespace("chat", CHAT), Namespace("ab", ChannelOptions())),
        **kwargs,  # type: ignore[arg-type]
    )
    return ChannelResolver(settings)


def resolve(channel: str, resolver: ChannelResolver | None = None) -> ResolvedChannel:
    found = (resolver or make_resolver()).resolve(channel)
    assert found is not None, channel
    return found


def test_plain_channel_is_top_level_with_the_whole_name_as_rest() -> None:
    found = resolve("news")
    assert (found.namespace, found.rest, found.private) == ("", "news", False)
    assert found.options is TOP


def test_namespaced_channel_gets_its_namespace_options() -> None:
    found = resolve("chat:room1")
    assert (found.namespace, found.rest, found.private) == ("chat", "room1", False)
    assert found.options is CHAT


def test_private_namespaced_channel_strips_one_prefix() -> None:
    found = resolve("$chat:room1")
    assert (found.namespace, found.rest, found.private) == ("chat", "room1", True)


def test_private_top_level_channel_keeps_the_original_name_as_rest() -> None:
    found = resolve("$gossips")
    assert (found.namespace, found.rest, found.private) == ("", "$gossips", True)
    assert found.options is TOP


def test_namespace_is_the_text_before_the_first_boundary() -> None:
    found = resolve("ab:b:c")
    assert (found.namespace, found.rest) == ("ab", "b:c")


def test_unknown_namespace_resolves_to_none() -> None:
    resolver = make_resolver()
    assert resolver.resolve("a:b:c") is None
    assert resolver.resolve("$nope:x") is None
    assert not resolver.namespace_known("nope:x")
    assert resolver.namespace_known("news")
    assert resolver.namespace_known("chat:x")


def test_only_one_private_prefix_is_stripped() -> None:
    # "$$chat:x" names the namespace "$chat", which cannot exist.
    assert make_resolver().resolve("$$chat:x") is None
    found = resolve("$$news")
    assert (found.namespace, found.rest, found.private) == ("", "$$news", True)


def test_custom_separators_are_used() -> None:
    resolver = make_resolver(
        Namespace("chat", LIMITED),
        private_prefix="!",
        namespace_boundary="/",
        user_boundary="@",
        user_separator=";",
    )
    found = resolve("!chat/room@1;2", resolver)
    assert (found.namespace, found.rest, found.private) == ("chat", "room@1;2", True)
    assert found.allowed_users == ("1", "2")
    assert resolver.personal_channel("7", "chat") == "chat/@7"


def test_without_channel_regex_a_name_must_be_ascii() -> None:
    resolver = make_resolver()
    assert resolver.name_valid(resolve("chat:room-1"))
    assert not resolver.name_valid(resolve("chat:комната"))
    assert not resolver.name_valid(resolve("café"))


def test_channel_regex_is_searched_in_the_rest_only() -> None:
    resolver = make_resolver(Namespace("chat", ChannelOptions(channel_regex=r"^[a-z]+$")))
    assert resolver.name_valid(resolve("chat:room", resolver))
    assert not resolver.name_valid(resolve("chat:Room1", resolver))


def test_unanchored_channel_regex_matches_anywhere() -> None:
    resolver = make_resolver(Namespace("chat", ChannelOptions(channel_regex=r"\d")))
    assert resolver.name_valid(resolve("chat:room7x", resolver))
    assert not resolver.name_valid(resolve("chat:room", resolver))


def test_channel_regex_allows_non_ascii_when_it_matches() -> None:
    resolver = make_resolver(Namespace("chat", ChannelOptions(channel_regex=r"^\w+$")))
    assert resolver.name_valid(resolve("chat:комната", resolver))


def test_too_long_counts_utf8_bytes() -> None:
    resolver = make_resolver(max_length=4)
    assert not resolver.too_long("abcd")
    assert resolver.too_long("abcde")
    assert resolver.too_long("ééé")  # 6 bytes


def test_default_max_length_is_255_bytes() -> None:
    resolver = make_resolver()
    assert not resolver.too_long("x" * 255)
    assert resolver.too_long("x" * 256)


def test_user_limited_channel_allows_the_listed_user() -> None:
    resolver = make_resolver(Namespace("chat", LIMITED), top=LIMITED)
    found = resolve("news#42", resolver)
    assert found.user_limited and found.allowed_users == ("42",)
    assert found.user_allowed("42") and not found.user_allowed("43")


def test_dialog_channel_allows_every_listed_user() -> None:
    found = resolve("chat:dialog#42,43", make_resolver(Namespace("chat", LIMITED)))
    assert found.allowed_users == ("42", "43")


def test_allowed_users_come_after_the_last_user_boundary() -> None:
    found = resolve("chat:a#b#42,43", make_resolver(Namespace("chat", LIMITED)))
    assert found.allowed_users == ("42", "43")


def test_empty_user_ids_are_dropped_so_anonymous_never_matches() -> None:
    found = resolve("news#", make_resolver(top=LIMITED))
    assert found.user_limited and found.allowed_users == ()
    assert not found.user_allowed("")
    assert resolve("news#42,,", make_resolver(top=LIMITED)).allowed_users == ("42",)


def test_user_boundary_has_no_meaning_when_the_option_is_off() -> None:
    found = resolve("news#42")
    assert not found.user_limited and found.allowed_users == ()
    assert not found.user_allowed("42")


def test_personal_channel_with_and_without_namespace() -> None:
    resolver = make_resolver()
    assert resolver.personal_channel("42") == "#42"
    assert resolver.personal_channel("42", "chat") == "chat:#42"


def test_resolve_results_are_cached() -> None:
    resolver = make_resolver()
    assert resolver.resolve("chat:x") is resolver.resolve("chat:x")


def test_the_cache_stays_bounded() -> None:
    resolver = make_resolver()
    for i in range(20_000):
        resolver.resolve(f"chan{i}")
    assert len(resolver._cache) <= 8192
    assert resolve("chan19999", resolver).rest == "chan19999"


def test_settings_are_exposed() -> None:
    settings = ChannelSettings()
    assert ChannelResolver(settings).settings is settings


@pytest.mark.parametrize("name", ["a", "bad name", "ü-ns", ""])
def test_invalid_namespace_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid namespace name"):
        ChannelResolver(ChannelSettings(namespaces=(Namespace(name),)))


def test_duplicate_namespaces_and_bad_regexes_are_refused_together() -> None:
    settings = ChannelSettings(
        namespaces=(
            Namespace("chat"),
            Namespace("chat", ChannelOptions(channel_regex="(")),
        )
    )
    with pytest.raises(ConfigError) as caught:
        ChannelResolver(settings)
    assert len(caught.value.problems) == 2
    assert "duplicate" in caught.value.problems[0]
    assert "channel_regex" in caught.value.problems[1]
