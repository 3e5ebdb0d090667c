"""Property tests: every parser taking outside bytes refuses bad input only with its
documented error (see tests/fuzz/targets.py), for shaped and for arbitrary input.

The number of examples comes from the Hypothesis profile: ``default`` in `make test`,
``fuzz`` (many more) in `make fuzz` when atheris is not available. A hang is caught by
the per-test timeout.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import strategies
from tests.fuzz.targets import TARGETS

settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz", max_examples=3_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("ROTARY_HYPOTHESIS_PROFILE", "default"))

_ANY_BYTES = st.binary(max_size=512)

_SHAPED = {
    "command_frame": strategies.command_frames,
    "protobuf_frame": strategies.protobuf_frames,
    "token": strategies.token_texts,
    "signed_claims": strategies.token_payloads,
    "api_body": strategies.api_bodies,
    "config_file": strategies.config_documents,
}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parser_refuses_shaped_input_only_with_its_documented_error(name: str) -> None:
    @given(_SHAPED[name])
    def check(data: bytes) -> None:
        TARGETS[name](data)

    check()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parser_refuses_arbitrary_bytes_only_with_its_documented_error(name: str) -> None:
    @given(_ANY_BYTES)
    def check(data: bytes) -> None:
        TARGETS[name](data)

    check()
