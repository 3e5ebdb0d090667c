"""Strict compact-JWS parsing (docs/tokens.md "How a connection token is checked" step 1), and
strict base64 helpers.

Only the shape is checked here: nothing read from a token is trusted until its signature
has been verified by the caller. The header is tiny and repeats across tokens, so its
decoded form is memoised by its exact base64 text (a pure function of it).
"""

from __future__ import annotations

import binascii

import orjson

from rotary.auth.tokens import Outcome, TokenRejected

__all__ = ["Jws", "b64std_decode", "b64url_decode", "parse_compact"]

# base64url → standard alphabet; the standard-only characters and "=" become "!" so that the
# strict decoder refuses them instead of accepting a mixed or padded encoding.
_URL_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"", b"==", b"=")  # indexed by length modulo 4
_HEADER_MEMO: dict[bytes, tuple[str, str]] = {}
_HEADER_MEMO_MAX = 256


#: (alg, kid, signing_input, payload, signature) of a compact JWS, signature not yet checked.
#: A plain tuple: this is on the hot path, where a NamedTuple's construction costs.
Jws = tuple[str, str, bytes, bytes, bytes]


def _malformed(detail: str, *, alg: str = "", claims: bytes | None = None) -> TokenRejected:
    return TokenRejected(Outcome.INVALID, "malformed", detail, alg=alg, claims=claims)


def _b64_strict(std: bytes) -> bytes:
    """Decode unpadded base64 already moved to the standard alphabet; raise ValueError.

    A length of 1 modulo 4 gets no padding and is refused by the strict decoder.
    """
    return binascii.a2b_base64(std + _PADDING[len(std) & 3], strict_mode=True)


def b64url_decode(text: str | bytes) -> bytes:
    """Decode unpadded base64url strictly (no ``=``, no ``+``/``/``); raise ValueError."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    return _b64_strict(raw.translate(_URL_TO_STD))


def b64std_decode(text: str) -> bytes:
    """Decode standard padded base64 strictly (Go's ``StdEncoding``); raise ValueError."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError("not base64") from exc
    if len(raw) & 3:
        raise ValueError("base64 length not a multiple of 4")
    return binascii.a2b_base64(raw, strict_mode=True)


def _header(encoded: bytes) -> tuple[str, str]:
    """(alg, kid) of a header given in the standard alphabet, memoised; raise TokenRejected."""
    try:
        header = orjson.loads(_b64_strict(encoded))
    except ValueError:
        raise _malformed("token format is not valid: bad header") from None
    if type(header) is not dict:
        raise _malformed("token format is not valid: header is not a JSON object")
    if "crit" in header:
        # RFC 7515 §4.1.11: a recipient must refuse extensions it does not understand, and
        # Rotary understands none; an empty or malformed list is refused as well.
        raise _malformed("token format is not valid: crit header names unsupported extensions")
    alg, kid = header.get("alg"), header.get("kid", "")
    if type(alg) is not str or type(kid) is not str:
        raise _malformed("token format is not valid: alg and kid must be strings")
    if len(_HEADER_MEMO) >= _HEADER_MEMO_MAX:
        _HEADER_MEMO.clear()
    _HEADER_MEMO[encoded] = (alg, kid)
    return alg, kid


def parse_compact(token: str) -> Jws:
    """Split and decode ``header.payload.signature``; raise TokenRejected (INVALID, malformed).

    The token must start with ``eyJ`` (a JSON object header), have exactly three parts, each
    unpadded base64url, and a JSON-object header whose ``alg`` (and ``kid`` if present) are
    strings. A header with ``crit`` is refused: Rotary implements no JWS extension. The payload
    is only base64-decoded here, not parsed.
    """
    if not token.startswith("eyJ"):
        raise _malformed("token format is not valid")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise _malformed("token format is not valid: non-ASCII characters") from None
    parts = raw.translate(_URL_TO_STD).split(b".")
    if len(parts) != 3:
        raise _malformed("token format is not valid: expected three parts")
    header, payload, signature = parts
    memo = _HEADER_MEMO.get(header)
    alg, kid = memo if memo is not None else _header(header)
    try:
        payload_bytes = binascii.a2b_base64(payload + _PADDING[len(payload) & 3], strict_mode=True)
        signature_bytes = binascii.a2b_base64(
            signature + _PADDING[len(signature) & 3], strict_mode=True
        )
    except ValueError:
        raise _malformed("token format is not valid: bad base64", alg=alg) from None
    signing_input = raw[: len(header) + len(payload) + 1]
    return alg, kid, signing_input, payload_bytes, signature_bytes
