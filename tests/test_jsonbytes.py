"""`dumps_kept`: compact JSON bytes trimmed to their length, for values that are kept."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from rotary.jsonbytes import dumps_kept

#: What one kept ~20-byte encoding may occupy: the bytes object and allocator rounding.
SMALL_ENCODING_BUDGET = 200


def traced_bytes_per_item(make: Callable[[int], Any], count: int = 1000) -> float:
    """Memory (tracemalloc) still held per item after making `count` items with `make`."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make(i) for i in range(count)]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(kept) == count
    return (after - before) / count


@pytest.mark.parametrize("value", [{"text": "hi", "n": [1, 2.5, None]}, "é", [], {}, 0, "x" * 5000])
def test_kept_json_is_the_same_compact_encoding_as_orjson_gives(value: Any) -> None:
    assert dumps_kept(value) == orjson.dumps(value)
    assert type(dumps_kept(value)) is bytes


def test_a_kept_small_encoding_occupies_about_its_own_length() -> None:
    per_item = traced_bytes_per_item(lambda i: dumps_kept({"n": i, "ok": True}))

    assert per_item < SMALL_ENCODING_BUDGET


def test_a_value_orjson_cannot_encode_raises_as_orjson_does() -> None:
    with pytest.raises(TypeError):
        dumps_kept({"bad": object()})
