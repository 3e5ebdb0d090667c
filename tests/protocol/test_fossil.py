"""Fossil deltas: what `create` makes, the SDKs' own decoder rebuilds (centrifuge-python's
`apply_delta` is the oracle here; tests/functional/test_sdk_delta.py checks centrifuge-js)."""

from __future__ import annotations

import random

import orjson
import pytest
from centrifuge.fossil import apply_delta as sdk_apply

from rotary.protocol import fossil


def _doc(n: int, *, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    items = [{"id": i, "name": f"item-{rng.randrange(10**6)}", "ok": i % 3 == 0} for i in range(n)]
    return orjson.dumps({"items": items, "title": "Spëcial ünïcode ✓ 日本語"})


def _sdk(source: bytes, delta: bytes) -> bytes:
    return bytes(sdk_apply(source, delta))


CASES = [
    (b"", b""),
    (b"", b"hello"),
    (b"short", b"shorter"),
    (_doc(50), _doc(50)),
    (_doc(50), _doc(51)),
    (_doc(50, seed=1), _doc(50, seed=2)),
    (_doc(200), _doc(200).replace(b"item-", b"thing-")),
    (_doc(10), b"{}"),
    (b"a" * 500, b"a" * 499 + b"b"),
]


@pytest.mark.parametrize(("source", "target"), CASES)
def test_the_sdk_decoder_rebuilds_the_target(source: bytes, target: bytes) -> None:
    delta = fossil.create(source, target)
    assert _sdk(source, delta) == target
    assert fossil.apply(source, delta) == target


def test_a_small_change_to_a_large_document_gives_a_small_delta() -> None:
    source = _doc(300)
    target = source.replace(b"item-", b"ITEM-", 1)
    delta = fossil.create(source, target)
    assert len(delta) < len(target) // 20


def test_deltas_of_utf8_text_are_utf8_whatever_the_cut() -> None:
    rng = random.Random(7)
    text = "".join(rng.choice("aé✓日😀 {}") for _ in range(3000)).encode()
    for _ in range(30):
        cut = rng.randrange(len(text))
        target = text[:cut] + "é😀".encode() + text[cut:]
        target = target.decode("utf-8", "ignore").encode()
        source = text.decode("utf-8", "ignore").encode()
        delta = fossil.create(source, target)
        delta.decode("utf-8")  # raises when a copy split a character
        assert _sdk(source, delta) == target


def test_random_edits_round_trip_through_the_sdk() -> None:
    rng = random.Random(3)
    source = _doc(100)
    for _ in range(50):
        target = bytearray(source)
        for _ in range(rng.randrange(1, 6)):
            at = rng.randrange(len(target))
            target[at : at + rng.randrange(0, 40)] = bytes(rng.randrange(32, 127) for _ in range(5))
        assert _sdk(source, fossil.create(source, bytes(target))) == bytes(target)


def test_checksum_is_the_sum_of_big_endian_words() -> None:
    assert fossil.checksum(b"") == 0
    assert fossil.checksum(b"\x00\x00\x00\x01\x00\x00\x00\x02") == 3
    assert fossil.checksum(b"\x01") == 0x01000000
    assert fossil.checksum(b"\xff\xff\xff\xff\x00\x00\x00\x01") == 0


@pytest.mark.parametrize(
    "delta",
    [b"", b"5\n", b"5\n5:abc", b"3\n3:abc0;", b"3\n9@0,3:abcX;", b"3\n2@9,1:a0;", b"3\n3?abc"],
)
def test_malformed_deltas_raise_delta_error(delta: bytes) -> None:
    with pytest.raises(fossil.DeltaError):
        fossil.apply(b"source", delta)
