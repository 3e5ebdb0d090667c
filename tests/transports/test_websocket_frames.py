"""Text and binary frames Rotary builds itself, read back the way RFC 6455 §5.2 defines them."""

from __future__ import annotations

import struct

import pytest

from rotary.transports.websocket import binary_frame, text_frame


def _parse(frame: bytes) -> tuple[int, bytes]:
    """(first byte, payload) of one unmasked frame."""
    first, second = frame[0], frame[1]
    assert second & 0x80 == 0, "server frames are not masked"
    size, start = second & 0x7F, 2
    if size == 126:
        (size,), start = struct.unpack("!H", frame[2:4]), 4
    elif size == 127:
        (size,), start = struct.unpack("!Q", frame[2:10]), 10
    payload = frame[start:]
    assert len(payload) == size
    return first, payload


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frame_is_one_final_text_frame_carrying_the_payload(size: int) -> None:
    payload = b"x" * size
    first, carried = _parse(text_frame(payload))
    assert first == 0x81
    assert carried == payload


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_binary_frame_is_one_final_binary_frame_carrying_the_payload(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"\x00" * (size % 256)
    first, carried = _parse(binary_frame(payload))
    assert first == 0x82
    assert carried == payload
