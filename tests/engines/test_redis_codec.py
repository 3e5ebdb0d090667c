"""The Redis engine's byte formats and shard hash: pure functions, no Redis needed."""

from __future__ import annotations

import collections

import pytest

from rotary.engines.base import ClientInfo, Publication, StreamPosition
from rotary.engines.redis._codec import (
    CodecError,
    decode_info,
    decode_publication,
    decode_publication_message,
    decode_user,
    encode_info,
    encode_publication,
)
from rotary.engines.redis._shards import Keys, shard_index

INFOS = [
    ClientInfo(user="", client="c1"),
    ClientInfo(user="ann", client="c2", conn_info=b'{"a":1}'),
    ClientInfo(user="bøb", client="c3", chan_info=b'{"x":[1,2]}'),
    ClientInfo(user="u", client="c4", conn_info=b"", chan_info=b"\x00\xff:"),
]


@pytest.mark.parametrize("info", INFOS)
def test_client_info_round_trips_exactly(info: ClientInfo) -> None:
    assert decode_info(encode_info(info)) == info
    assert decode_user(encode_info(info)) == info.user


@pytest.mark.parametrize("info", [None, *INFOS])
@pytest.mark.parametrize("tags", [None, {}, {"k": "v", "ü": ":"}])
def test_publication_round_trips_exactly(
    info: ClientInfo | None, tags: dict[str, str] | None
) -> None:
    body = encode_publication(b'{"n":1}', time_ms=1_700_000_000_123, info=info, tags=tags)

    assert decode_publication(body, 7) == Publication(
        data=b'{"n":1}', offset=7, info=info, tags=tags, time=1_700_000_000_123
    )


def test_binary_data_with_colons_survives_the_pubsub_header() -> None:
    body = encode_publication(b"a:b:\x00c", time_ms=0, info=None, tags=None)

    pub, position = decode_publication_message(b"12:abCD:" + body)

    assert pub.data == b"a:b:\x00c"
    assert pub.offset == 12
    assert position == StreamPosition(12, "abCD")


def test_a_publication_without_history_has_offset_0_and_no_epoch() -> None:
    body = encode_publication(b"{}", time_ms=5, info=None, tags=None)

    assert decode_publication_message(b"0::" + body)[1] == StreamPosition(0, "")


@pytest.mark.parametrize("raw", [b"", b"\x01", b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"])
def test_truncated_frames_raise_codec_error(raw: bytes) -> None:
    with pytest.raises(CodecError):
        decode_publication(raw)


def test_trailing_bytes_raise_codec_error() -> None:
    with pytest.raises(CodecError):
        decode_info(encode_info(INFOS[0]) + b"x")


def test_a_malformed_pubsub_header_raises_codec_error() -> None:
    with pytest.raises(CodecError):
        decode_publication_message(b"notanumber")


def test_shard_index_is_stable_and_spreads_channels() -> None:
    channels = [f"chat:{n}" for n in range(2000)]

    first = [shard_index(ch, 4) for ch in channels]
    counts = collections.Counter(first)

    assert first == [shard_index(ch, 4) for ch in channels]
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 350
    assert all(shard_index(ch, 1) == 0 for ch in channels)


def test_adding_a_shard_moves_only_channels_to_the_new_shard() -> None:
    channels = [f"news:{n}" for n in range(2000)]

    moved = [ch for ch in channels if shard_index(ch, 3) != shard_index(ch, 4)]

    assert all(shard_index(ch, 4) == 3 for ch in moved)
    assert len(moved) < 700


def test_all_keys_of_a_channel_share_one_cluster_hash_tag() -> None:
    keys = Keys("pfx")

    names = [
        keys.stream("a:b"),
        keys.meta("a:b"),
        keys.result("a:b", "k"),
        keys.presence_data("a:b"),
        keys.presence_expire("a:b"),
    ]

    assert all(name.startswith("pfx.") and "{a:b}" in name for name in names)
    assert keys.pubsub("a:b") == "pfx.client.a:b"
    assert keys.control == "pfx.control"
