"""permessage-deflate framing (rotary.transports.deflate), without sockets."""

from __future__ import annotations

import zlib

import pytest

from rotary.transports.deflate import Deflate, DeflateFramer, deflate_offered


def _parse(frame: bytes) -> tuple[bool, int, bytes]:
    """(RSV1 set, opcode, payload) of one unmasked server frame."""
    size, start = frame[1] & 0x7F, 2
    if size == 126:
        size, start = int.from_bytes(frame[2:4], "big"), 4
    elif size == 127:
        size, start = int.from_bytes(frame[2:10], "big"), 10
    payload = frame[start:]
    assert len(payload) == size
    return bool(frame[0] & 0x40), frame[0] & 0x0F, payload


def _inflate(body: bytes) -> bytes:
    # A fresh decompressor per message: no message may refer to an earlier one.
    return zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff")


def test_a_message_of_exactly_the_minimum_size_goes_uncompressed_and_one_byte_more_does_not() -> (
    None
):
    framer = DeflateFramer(Deflate(enabled=True, min_size=10), 15)
    assert _parse(framer.text(b"x" * 10)) == (False, 0x1, b"x" * 10)
    compressed, opcode, body = _parse(framer.text(b"x" * 11))
    assert (compressed, opcode, _inflate(body)) == (True, 0x1, b"x" * 11)


def test_every_message_inflates_on_its_own_whatever_came_before() -> None:
    framer = DeflateFramer(Deflate(enabled=True), 15)
    messages = [b'{"push":{"channel":"news","pub":{"data":{"n":%d}}}}' % n for n in range(3)]
    frames = [framer.binary(m) for m in messages]
    assert [_inflate(_parse(f)[2]) for f in frames] == messages
    assert {_parse(f)[1] for f in frames} == {0x2}
    # The same message deflates to the same bytes every time: one framed copy serves all.
    assert framer.text(messages[0]) == framer.text(messages[0])


@pytest.mark.parametrize("level", [-2, -1, 0, 1, 9])
def test_every_go_flate_level_produces_valid_deflate(level: int) -> None:
    payload = b"level " * 10_000  # past 64 KiB framed: the 8-byte length form
    framer = DeflateFramer(Deflate(enabled=True, level=level), 15)
    compressed, _, body = _parse(framer.text(payload))
    assert compressed and _inflate(body) == payload


def test_a_smaller_negotiated_window_is_honoured() -> None:
    framer = DeflateFramer(Deflate(enabled=True), 9)
    payload = bytes(range(256)) * 8
    body = _parse(framer.text(payload))[2]
    assert zlib.decompressobj(-9).decompress(body + b"\x00\x00\xff\xff") == payload


@pytest.mark.parametrize(
    ("header", "offered"),
    [
        ("permessage-deflate; client_max_window_bits", True),
        ("x-webkit-deflate-frame, Permessage-Deflate", True),
        ("x-webkit-deflate-frame", False),
        ("", False),
    ],
)
def test_an_offer_is_found_among_the_extensions(header: str, offered: bool) -> None:
    assert deflate_offered(header) is offered


def test_the_decompressed_limit_defaults_to_ten_times_the_message_limit() -> None:
    assert Deflate(enabled=True).read_limit(65536) == 655360
    assert Deflate(enabled=True, decompressed_size_limit=1000).read_limit(65536) == 1000


def test_an_empty_message_is_one_zero_byte_that_inflates_to_nothing() -> None:
    body = _parse(DeflateFramer(Deflate(enabled=True), 15).text(b""))[2]
    assert (body, _inflate(body)) == (b"\x00", b"")
