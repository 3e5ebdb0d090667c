"""Metrics: own registry per instance, bounded labels, text exposition, documented names."""

from __future__ import annotations

import re
import time
from pathlib import Path

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from rotary.metrics import CONTENT_TYPE, Metrics

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the rendered body, keyed by name and sorted labels."""
    body, _ = metrics.render()
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


def test_two_instances_count_separately_and_leave_the_global_registry_alone() -> None:
    first, second = Metrics(), Metrics()

    first.command("publish")
    first.command("publish")
    second.command("publish")

    assert value(first, "rotary_client_commands_total", method="publish") == 2
    assert value(second, "rotary_client_commands_total", method="publish") == 1
    assert REGISTRY.get_sample_value("rotary_client_commands_total", {"method": "publish"}) is None


def test_gauges_follow_connections_and_subscriptions() -> None:
    metrics = Metrics()
    metrics.connection_opened()
    metrics.connection_opened()
    metrics.connection_closed()
    metrics.set_subscriptions(7)
    metrics.subscription_removed()

    assert value(metrics, "rotary_connections") == 1
    assert value(metrics, "rotary_subscriptions") == 6


def test_token_verifications_are_counted_by_kind_outcome_and_reason() -> None:
    metrics = Metrics()
    metrics.token_verified("connection", "ok")
    metrics.token_verified("subscription", "invalid", "signature")
    metrics.token_verified("connection", "revoked", "revoked_jti")

    assert value(
        metrics, "rotary_token_verifications_total", kind="connection", outcome="ok", reason="none"
    )
    assert value(
        metrics,
        "rotary_token_verifications_total",
        kind="subscription",
        outcome="invalid",
        reason="signature",
    )
    assert value(
        metrics,
        "rotary_token_verifications_total",
        kind="connection",
        outcome="revoked",
        reason="revoked_jti",
    )


def test_values_outside_a_vocabulary_are_counted_as_other() -> None:
    metrics = Metrics()
    metrics.command("drop_database")
    metrics.token_verified("refresh", "weird", "a reason a client made up")
    metrics.publication("somewhere")
    metrics.engine_error("flushall")

    assert value(metrics, "rotary_client_commands_total", method="other") == 1
    assert value(
        metrics, "rotary_token_verifications_total", kind="other", outcome="other", reason="other"
    )
    assert value(metrics, "rotary_publications_total", source="other") == 1
    assert value(metrics, "rotary_engine_errors_total", op="other") == 1


def test_disconnect_codes_are_kept_for_the_protocol_and_grouped_for_applications() -> None:
    metrics = Metrics()
    for code in (3011, 3500, 4001, 4002, 4600, 1234):
        metrics.disconnected(code)

    assert value(metrics, "rotary_disconnects_total", code="3011") == 1
    assert value(metrics, "rotary_disconnects_total", code="3500") == 1
    assert value(metrics, "rotary_disconnects_total", code="4000-4499") == 2
    assert value(metrics, "rotary_disconnects_total", code="4500-4999") == 1
    assert value(metrics, "rotary_disconnects_total", code="other") == 1


def test_cache_revocation_and_publication_series_exist_at_zero_before_any_event() -> None:
    metrics = Metrics()
    metrics.token_cache(hit=True)
    metrics.revocation_checked(revoked=True)

    found = samples(metrics)
    assert found[("rotary_token_cache_total", (("result", "hit"),))] == 1
    assert found[("rotary_token_cache_total", (("result", "miss"),))] == 0
    assert found[("rotary_revocation_checks_total", (("result", "revoked"),))] == 1
    assert found[("rotary_revocation_checks_total", (("result", "ok"),))] == 0
    assert found[("rotary_publications_total", (("source", "api"),))] == 0


def test_render_gives_the_classic_text_format() -> None:
    body, content_type = Metrics().render()

    assert content_type == CONTENT_TYPE
    assert content_type.startswith("text/plain; version=0.0.4")
    assert b"# TYPE rotary_connections gauge" in body


def test_every_metric_is_documented_and_every_documented_metric_exists() -> None:
    metrics = Metrics()
    exposed = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in metrics.registry.collect()
    }
    documented = set(re.findall(r"`(rotary_[a-z_]+)`", DOCS.read_text(encoding="utf-8")))

    assert exposed == documented


def test_repeated_counts_of_one_label_set_add_up_and_stay_apart_from_other_sets() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.token_verified("subscription", "ok")
    metrics.token_verified("subscription", "invalid", "signature")
    metrics.token_cache(hit=True)
    metrics.token_cache(hit=True)
    name = "rotary_token_verifications_total"
    assert value(metrics, name, kind="subscription", outcome="ok", reason="none") == 3
    assert value(metrics, name, kind="subscription", outcome="invalid", reason="signature") == 1
    assert value(metrics, "rotary_token_cache_total", result="hit") == 2
    assert ("rotary_token_cache_total", (("result", "miss"),)) in samples(metrics)


def test_each_counted_series_has_a_created_sample_from_when_it_was_first_counted() -> None:
    before = time.time()
    metrics = Metrics()
    metrics.command("subscribe")
    metrics.command("subscribe")

    found = samples(metrics)
    created = found[("rotary_client_commands_created", (("method", "subscribe"),))]
    assert before <= created <= time.time()
    assert found[("rotary_client_commands_total", (("method", "subscribe"),))] == 2
