"""``log_file``: the server writes its log to that file instead of standard error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.functional.conftest import default_config


def test_server_log_goes_to_log_file(rotary_server: Any, tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    server = rotary_server({**default_config(), "log_file": str(log_file)})
    assert server.stop() == 0
    written = log_file.read_text()
    assert "listening on" in written and "shutdown complete" in written
    assert "listening on" not in server.log()
