"""The configuration reference: generated from the key table, and docs/config.md kept equal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rotary.config import Config, ConfigError, load_config
from rotary.config.doc import (
    BAD_EXAMPLE,
    BAD_EXAMPLE_PROBLEMS,
    EXAMPLE_V5,
    EXAMPLE_V6,
    REGENERATE,
    ROTARY_ONLY,
    SECTIONS,
    config_reference,
    default_text,
    env_vars,
    section_of,
)
from rotary.config.keys import KEYS, keys_by_v5

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def _json_blocks(text: str) -> list[Any]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", text, re.S)]


def _load(tmp_path: Path, name: str, doc: Any) -> Config:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return load_config(str(path), env={})


def test_docs_config_md_is_the_current_generated_reference() -> None:
    assert DOC.read_text(encoding="utf-8") == config_reference(), (
        f"docs/config.md is stale: regenerate it from the repository root with `{REGENERATE}`"
    )


def test_rotary_configdoc_prints_the_reference(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROTARY_", "CENTRIFUGO_"))}
    result = subprocess.run(
        [sys.executable, "-m", "rotary", "configdoc"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == config_reference()


def test_every_key_of_the_table_has_a_row_with_its_names_and_default() -> None:
    text = config_reference()
    for key in KEYS:
        rows = [line for line in text.splitlines() if line.startswith(f"| `{key.v5}` |")]
        assert len(rows) == 1, key.v5
        if key.v6:
            assert f"`{key.v6}`" in rows[0]
        for name in env_vars(key):
            assert f"`{name}`" in rows[0]
        assert default_text(key) in rows[0]


def test_every_key_has_a_one_line_description() -> None:
    missing = [key.v5 for key in KEYS if not key.description.strip()]
    assert missing == []
    assert all("\n" not in key.description for key in KEYS)


def test_every_key_belongs_to_one_of_the_sections_and_every_section_has_keys() -> None:
    used = {section_of(key) for key in KEYS}
    assert used == set(SECTIONS)


def test_each_key_has_both_prefixes_of_environment_variables() -> None:
    for key in KEYS:
        names = env_vars(key)
        assert f"CENTRIFUGO_{key.v5.upper()}" in names
        assert f"ROTARY_{key.v5.upper()}" in names
        if key.v6:
            assert f"ROTARY_{key.v6.replace('.', '_').upper()}" in names


def test_rotary_only_keys_exist_and_are_marked() -> None:
    text = config_reference()
    by_v5 = keys_by_v5()
    assert set(by_v5) >= ROTARY_ONLY
    for name in ROTARY_ONLY:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert "**Rotary only.**" in row
    assert text.count("**Rotary only.**") == len(ROTARY_ONLY)


@pytest.mark.parametrize(
    ("v5", "shown"),
    [
        ("ping_interval", "`25s`"),
        ("global_history_meta_ttl", "`720h0m0s`"),
        ("token_jwks_cache_ttl", "`1h0m0s`"),
        ("redis_address", '`["127.0.0.1:6379"]`'),
        ("port", "`8000`"),
        ("health", "`true`"),
        ("api_handler_prefix", '`"/api"`'),
        ("separate_subscription_token_config", "`false`"),
        ("subscription_token_hmac_secret_key", '`""`'),
    ],
)
def test_defaults_are_shown_as_written_in_a_file_with_go_durations(v5: str, shown: str) -> None:
    row = next(line for line in config_reference().splitlines() if line.startswith(f"| `{v5}` |"))
    assert f"| {shown} |" in row


def test_the_v5_and_v6_examples_in_the_doc_load_to_equal_configs(tmp_path: Path) -> None:
    v5, v6, bad = _json_blocks(DOC.read_text(encoding="utf-8"))
    assert (v5, v6, bad) == (EXAMPLE_V5, EXAMPLE_V6, BAD_EXAMPLE)
    from_v5 = _load(tmp_path, "v5.json", v5)
    assert from_v5 == _load(tmp_path, "v6.json", v6)
    assert from_v5 != Config()
    assert from_v5.client.ping_interval == 20.0
    assert [ns.name for ns in from_v5.channels.namespaces] == ["chat"]


def test_the_bad_example_in_the_doc_reports_exactly_the_problems_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, "bad.json", BAD_EXAMPLE)
    assert caught.value.problems == list(BAD_EXAMPLE_PROBLEMS)
    for problem in BAD_EXAMPLE_PROBLEMS:
        assert f"error: {problem}\n" in DOC.read_text(encoding="utf-8")
