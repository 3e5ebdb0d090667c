"""The short form of `bench soak` (make test): after churn, every client leaving brings
the server's descriptors and every per-user and per-channel count back to their baseline."""

from __future__ import annotations

from bench.soak import soak


def test_short_soak_returns_descriptors_and_counts_to_their_baseline() -> None:
    figures = soak(60, 3.0)["figures"]
    for key in ("fds", "num_clients", "num_users", "num_channels", "num_subs"):
        assert figures[f"soak_{key}_after"] == figures[f"soak_{key}_before"], key
    assert figures["soak_num_clients_before"] == 0
    assert figures["soak_dropped_by_server"] == 0, "the server closed a soak client on its own"
