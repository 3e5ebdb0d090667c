"""The signature rules of one token kind, compiled once from its `TokenSettings` (docs/tokens.md
"Algorithms and keys").

Compilation validates everything (keys, URLs, patterns) and reports every problem with the
Centrifugo v5 key it concerns, so a bad configuration fails at startup, never per token.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from rotary.auth.claims import ClaimRules
from rotary.auth.jwks import JwksKeySet
from rotary.auth.jws import Jws
from rotary.auth.keys import (
    SUPPORTED_ALGORITHMS,
    Checker,
    KeyLoadError,
    checkers_for_public_key,
    hmac_checkers,
    load_pem_public_key,
)
from rotary.auth.settings import TokenSettings
from rotary.auth.tokens import Outcome, TokenRejected

__all__ = ["JwksMiss", "Keyring", "compile_keyring"]

_USER_ID_CLAIM = re.compile(r"[a-zA-Z_]+")
_NO_CAP = math.inf


class JwksMiss(Exception):
    """The token's ``kid`` is not cached: the async caller should refresh `keys` and retry."""

    def __init__(self, keys: JwksKeySet) -> None:
        super().__init__("JWKS key not cached")
        self.keys = keys


def _invalid(reason: str, detail: str) -> TokenRejected:
    return TokenRejected(Outcome.INVALID, reason, detail)


def _algorithm_refused(alg: str) -> TokenRejected:
    """Unknown algorithms (``none`` included) and known ones without a configured key."""
    if alg not in SUPPORTED_ALGORITHMS:
        return _invalid("algorithm", f"unsupported JWT algorithm: {alg}")
    return _invalid("algorithm", f"disabled JWT algorithm: {alg}")


class Keyring:
    """Which checker verifies a token of this kind, and the claim rules that go with it."""

    __slots__ = ("_checkers", "_jwks", "_previous", "_previous_until", "_skip", "rules")

    def __init__(
        self,
        *,
        checkers: dict[str, Checker],
        previous: dict[str, Checker],
        previous_until: float,
        jwks: JwksKeySet | None,
        rules: ClaimRules,
        skip: bool,
    ) -> None:
        self._checkers = checkers
        self._previous = previous
        self._previous_until = previous_until
        self._jwks = jwks
        self.rules = rules
        self._skip = skip

    @property
    def uses_jwks(self) -> bool:
        return self._jwks is not None and not self._skip

    def verify(self, jws: Jws, now: float, may_fetch: bool) -> float:
        """Check the signature; return the time after which a cached result must be dropped.

        That time is infinite except for tokens accepted with the previous HMAC secret (its
        ``valid_until``). Raise TokenRejected, or JwksMiss when `may_fetch` and the ``kid`` is
        not cached.
        """
        if self._skip:
            return _NO_CAP
        alg, kid, signing_input, _, signature = jws
        check: Checker | None
        if self._jwks is not None:
            check = self._jwks_checker(self._jwks, alg, kid, now, may_fetch)
        else:
            check = self._checkers.get(alg)
        if check is None:
            raise _algorithm_refused(alg)
        if check(signing_input, signature):
            return _NO_CAP
        previous = self._previous.get(alg)
        if (
            previous is not None
            and now < self._previous_until
            and previous(signing_input, signature)
        ):
            return self._previous_until
        raise _invalid("signature", "signature is not valid")

    @staticmethod
    def _jwks_checker(keys: JwksKeySet, alg: str, kid: str, now: float, may_fetch: bool) -> Checker:
        if alg not in SUPPORTED_ALGORITHMS:
            raise _algorithm_refused(alg)
        if not kid:
            raise _invalid("unknown_key", "JWKS verification needs a kid in the token header")
        found = keys.lookup(kid, now)
        if found is None:
            if may_fetch:
                raise JwksMiss(keys)
            if keys.unavailable:
                raise _invalid("jwks_unavailable", "JWKS endpoint unavailable")
            raise _invalid("unknown_key", "no JWKS key with the token's kid")
        check = found.get(alg)
        if check is None:
            raise _invalid("algorithm", f"token algorithm {alg} does not match the JWKS key")
        return check


def compile_keyring(
    settings: TokenSettings,
    *,
    prefix: str,
    skip_signature: bool,
    jwks_for: Callable[[str], JwksKeySet],
    problems: list[str],
) -> Keyring:
    """Compile `settings`; append each problem (named ``<prefix><key>``) to `problems`.

    `prefix` is ``token_`` or ``subscription_token_`` (Centrifugo v5 flat names).
    `jwks_for(url)` gives the key set of a URL (shared between token kinds).
    """
    checkers = {} if not settings.hmac_secret_key else hmac_checkers(settings.hmac_secret_key)
    for name, pem, kinds in (
        ("rsa_public_key", settings.rsa_public_key, {"RS256"}),
        ("ecdsa_public_key", settings.ecdsa_public_key, {"ES256", "ES384", "ES512"}),
        ("ed25519_public_key", settings.ed25519_public_key, {"EdDSA"}),
    ):
        if pem:
            checkers.update(_pem_checkers(pem, kinds, f"{prefix}{name}", problems))
    previous: dict[str, Checker] = {}
    if settings.hmac_previous_secret_key:
        if not settings.hmac_secret_key:
            problems.append(f"{prefix}hmac_previous_secret_key: needs hmac_secret_key as well")
        previous = hmac_checkers(settings.hmac_previous_secret_key)
    url = settings.jwks_public_endpoint
    if url and not _check_jwks_url(url, f"{prefix}jwks_public_endpoint", problems):
        url = ""
    return Keyring(
        checkers=checkers,
        previous=previous,
        previous_until=float(settings.hmac_previous_secret_key_valid_until),
        jwks=jwks_for(url) if url else None,
        rules=_compile_rules(settings, prefix, problems),
        skip=skip_signature,
    )


def _pem_checkers(pem: str, kinds: set[str], key: str, problems: list[str]) -> dict[str, Checker]:
    try:
        found = checkers_for_public_key(load_pem_public_key(pem))
    except KeyLoadError as exc:
        problems.append(f"{key}: {exc}")
        return {}
    if not kinds & found.keys():
        problems.append(f"{key}: the key is not of the expected type")
        return {}
    return found


def _check_jwks_url(url: str, key: str, problems: list[str]) -> bool:
    if "{{" in url or "}}" in url:
        problems.append(
            f"{key}: {{{{placeholders}}}} are not supported: the JWKS URL is never built from "
            "token claims (SSRF, GHSA-j77h-rr39-c552); configure one fixed URL"
        )
        return False
    if not url.startswith(("http://", "https://")):
        problems.append(f"{key}: must be an http:// or https:// URL")
        return False
    return True


def _compile_rules(settings: TokenSettings, prefix: str, problems: list[str]) -> ClaimRules:
    before = len(problems)
    for exact, regex in (("audience", "audience_regex"), ("issuer", "issuer_regex")):
        pattern = getattr(settings, regex)
        if getattr(settings, exact) and pattern:
            problems.append(f"{prefix}{regex}: can not be used together with {prefix}{exact}")
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"{prefix}{regex}: invalid regular expression: {exc}")
    claim = settings.user_id_claim
    if claim and _USER_ID_CLAIM.fullmatch(claim) is None:
        problems.append(f"{prefix}user_id_claim: must match ^[a-zA-Z_]+$")
    if len(problems) > before:
        return ClaimRules()
    return ClaimRules(
        audience=settings.audience,
        audience_regex=settings.audience_regex,
        issuer=settings.issuer,
        issuer_regex=settings.issuer_regex,
        user_id_claim=claim,
    )
