"""Token verification speed: Rotary's verifier against PyJWT's ``jwt.decode``, same tokens.

Cases: HS256, RS256 and ES256 without the verified-token cache, and a cache hit (the
reconnect-storm path; compared with PyJWT verifying the HS256 token, since PyJWT has no
cache). Both sides get already-loaded key objects, so neither parses a PEM per call.
Measurement is timeit-style: a loop of N calls timed as one, repeated; Rotary and PyJWT
rounds alternate so that load drift on the machine hits both alike; the medians are kept.

Run alone with ``python -m bench.verify [--quick]``; ``python -m bench verify`` calls `run`.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from rotary.auth import TokenVerifier
from rotary.auth.settings import AuthSettings, TokenSettings

__all__ = ["run"]

SECRET = "bench-hmac-secret-0123456789abcdef0123456789"
TARGETS = {"HS256": 7.0, "RS256": 2.0, "ES256": 1.3, "cache_hit": 100.0}


def _pem(private: Any) -> str:
    public = private.public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return public.public_bytes(serialization.Encoding.PEM, spki).decode()


def _per_call_us(fn: Callable[[], object], number: int) -> float:
    return timeit.timeit(fn, number=number) / number * 1e6


def _calibrate(fn: Callable[[], object], seconds: float) -> int:
    """Loop length so that one timed loop takes about `seconds`."""
    number = 1
    while True:
        took = timeit.timeit(fn, number=number)
        if took >= seconds / 4 or number >= 1 << 22:
            return max(1, int(number * seconds / max(took, 1e-9)))
        number *= 4


def _compare(
    rotary_fn: Callable[[], object],
    pyjwt_fn: Callable[[], object],
    *,
    repeats: int,
    seconds: float,
) -> tuple[float, float]:
    """Median per-call µs of (rotary_fn, pyjwt_fn), measured in alternating rounds."""
    n_rotary, n_pyjwt = _calibrate(rotary_fn, seconds), _calibrate(pyjwt_fn, seconds)
    rotary_runs: list[float] = []
    pyjwt_runs: list[float] = []
    for _ in range(repeats):
        rotary_runs.append(_per_call_us(rotary_fn, n_rotary))
        pyjwt_runs.append(_per_call_us(pyjwt_fn, n_pyjwt))
    return statistics.median(rotary_runs), statistics.median(pyjwt_runs)


def _drive(coroutine: Any) -> object:
    """Run a coroutine that never suspends, without an event loop (to time the async API)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine suspended")


def _cases(now: float) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """case → (Rotary call, PyJWT call), each verifying the same token; both checked once."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    claims = {"sub": "123722", "exp": int(now) + 3600, "iat": int(now), "info": {"name": "Ann"}}
    uncached = TokenSettings(
        hmac_secret_key=SECRET, rsa_public_key=_pem(rsa_key), ecdsa_public_key=_pem(ec_key)
    )
    cold = TokenVerifier(AuthSettings(connection=uncached, cache_size=0))
    warm = TokenVerifier(AuthSettings(connection=uncached))
    setups = {
        "HS256": (SECRET, SECRET),
        "RS256": (rsa_key, rsa_key.public_key()),
        "ES256": (ec_key, ec_key.public_key()),
    }
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {}
    for alg, (signing_key, public) in setups.items():
        token = jwt.encode(claims, signing_key, algorithm=alg)
        cases[alg] = (
            lambda t=token: cold.verify_connection_sync(t, now=now),
            lambda t=token, k=public, a=alg: jwt.decode(t, k, algorithms=[a]),
        )
    hs = jwt.encode(claims, SECRET, algorithm="HS256")
    cases["cache_hit"] = (lambda: warm.verify_connection_sync(hs, now=now), cases["HS256"][1])
    cases["HS256_async"] = (lambda: _drive(cold.verify_connection(hs, now=now)), cases["HS256"][1])
    for name, (rotary_fn, pyjwt_fn) in cases.items():
        user = getattr(rotary_fn(), "user", None)
        if user != "123722" or pyjwt_fn()["sub"] != "123722":  # type: ignore[index]
            raise RuntimeError(f"{name}: a verifier refused the benchmark token")
    return cases


def run(*, quick: bool) -> dict[str, object]:
    """Measure every case; see the module docstring. Quick mode takes a few seconds."""
    repeats, seconds = (9, 0.03) if quick else (21, 0.08)
    results: dict[str, dict[str, float]] = {}
    for name, (rotary_fn, pyjwt_fn) in _cases(time.time()).items():
        rotary_us, pyjwt_us = _compare(rotary_fn, pyjwt_fn, repeats=repeats, seconds=seconds)
        results[name] = {"rotary_us": round(rotary_us, 3), "pyjwt_us": round(pyjwt_us, 3)}
    speedup = {name: round(r["pyjwt_us"] / r["rotary_us"], 2) for name, r in results.items()}
    return _report(results, speedup)


def _report(results: dict[str, dict[str, float]], speedup: dict[str, float]) -> dict[str, object]:
    main = ("HS256", "RS256", "ES256", "cache_hit")
    figures = {f"{n}_{side}": r[side] for n, r in results.items() for side in r}
    table = [
        [n, r["rotary_us"], r["pyjwt_us"], f"{speedup[n]}x", _target(n)] for n, r in results.items()
    ]
    output = {n: results[n] for n in main}
    output["speedup_vs_pyjwt"] = {n: speedup[n] for n in main}  # type: ignore[assignment]
    return {
        "figures": figures,
        "ratios": {f"verify_{n}_speedup_vs_pyjwt": speedup[n] for n in main},
        "table_header": ["case", "Rotary µs/token", "PyJWT µs/token", "speedup", "target"],
        "table": table,
        "json": output,
    }


def _target(name: str) -> str:
    target = TARGETS.get(name)
    return f">={target:g}x" if target else "(async API, informative)"


def _print(result: dict[str, object]) -> None:
    header = result["table_header"]
    rows = result["table"]
    assert isinstance(header, list) and isinstance(rows, list)
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(json.dumps(result["json"], indent=2))


if __name__ == "__main__":
    _print(run(quick="--quick" in sys.argv[1:]))
