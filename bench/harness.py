"""Run scenarios, then print their tables, write the JSON file and the plots.

A scenario is a module `bench.<name>` exposing ``run(*, quick: bool) -> dict`` with the
optional keys ``figures``, ``ratios``, ``table_header``, ``table``, ``curves`` (``{name:
{"x", "y", "xlabel", "ylabel"}}``) and ``json`` (anything else worth keeping). `verify` and
`cluster` are written by other engineers; when their module is missing the harness says so
and `all` skips them.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import progress
from bench.common import REPO, load_cpus, pin_self_to_load, raise_fd_limit, server_cpus
from bench.peers.centrifugo import cores_label
from bench.worker import close_shared_pool

__all__ = [
    "FULL_ONLY",
    "SCENARIOS",
    "cell",
    "cpu_model",
    "load_scenario",
    "main_run",
    "plot",
    "render_tables",
]

SCENARIOS = (
    "verify",
    "nodecost",
    "storm",
    "stormcount",
    "fanout",
    "delta",
    "tagsfilter",
    "memory",
    "cluster",
    "latency",
    "soak",
    "slowconsumers",
    "slowloris",
    "redisdown",
    "proxystorm",
    "workers",
    "flood",
    "compression",
)
_OPTIONAL = {"verify", "nodecost", "cluster", "proxystorm"}
#: Left out of ``all --quick``: valgrind's start-up alone would take the quick run past a
#: minute (run it on its own with ``--quick``).
FULL_ONLY = frozenset({"stormcount"})

Runner = Callable[..., dict[str, Any]]


def load_scenario(name: str) -> Runner | None:
    """The scenario's `run`, or None when its module does not exist (yet)."""
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            return None
        raise
    runner: Runner = module.run
    return runner


def main_run(
    names: list[str], *, quick: bool, json_path: Path | None, plot_path: Path | None
) -> int:
    """Run `names` in order; return 0 when every requested scenario ran, else 1."""
    pin_self_to_load()
    raise_fd_limit()
    results: dict[str, dict[str, Any]] = {}
    status = 0
    progress.open_bar()
    try:
        for name in names:
            outcome = _run_one(name, quick=quick, explicit=len(names) == 1)
            if outcome is None:
                status = 1 if len(names) == 1 else status
                continue
            results[name] = outcome
            status = 1 if "error" in outcome else status
    finally:
        close_shared_pool()
        progress.close_bar()
    ratios = {k: v for r in results.values() for k, v in r.get("ratios", {}).items()}
    print(render_tables(results, ratios))
    if json_path:
        _write_json(json_path, results, ratios, quick=quick)
        print(f"JSON written to {json_path}")
    if plot_path:
        for written in plot(results, plot_path):
            print(f"plot written to {written}")
    return status


def _run_one(name: str, *, quick: bool, explicit: bool) -> dict[str, Any] | None:
    runner = load_scenario(name)
    if runner is None:
        progress.write(f"{name}: not available (bench/{name}.py does not exist yet)")
        return None
    progress.note(name)
    started = time.monotonic()
    try:
        outcome = dict(runner(quick=quick))
    except Exception as exc:  # one broken scenario must not lose the others' figures
        progress.write(f"{name}: failed: {exc!r}")
        outcome = {"error": repr(exc)}
    outcome["seconds"] = round(time.monotonic() - started, 1)
    return outcome


def render_tables(results: dict[str, dict[str, Any]], ratios: dict[str, Any]) -> str:
    """Every scenario's table, then the ratios, as aligned plain text."""
    blocks = []
    for name, r in results.items():
        title = f"== {name} ({r.get('seconds', '?')} s)"
        if "error" in r:
            blocks.append(f"{title}\nfailed: {r['error']}")
            continue
        header = r.get("table_header") or ["figure", "value"]
        rows = r.get("table") or [[k, v] for k, v in r.get("figures", {}).items()]
        notes = r.get("json", {}).get("notes", []) if isinstance(r.get("json"), dict) else []
        blocks.append("\n".join([title, _grid(header, rows), *[f"note: {n}" for n in notes]]))
    if ratios:
        blocks.append(
            "== ratios\n" + _grid(["ratio", "value"], [[k, v] for k, v in ratios.items()])
        )
    return "\n\n".join(blocks)


def _grid(header: list[Any], rows: list[list[Any]]) -> str:
    cells = [[cell(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(header))]
    lines = [
        "  ".join(
            c.rjust(w) if n else c.ljust(w)
            for n, (c, w) in enumerate(zip(row, widths, strict=False))
        )
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cell(value: Any) -> str:
    """One table cell: thousands separators, three decimals below 100, "-" for None."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name as Linux reports it, else `platform.processor()` (may be "").

    A results file names its machine, so that a reader can tell what its figures were
    measured on.
    """
    try:
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor()


def _meta(quick: bool) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "server_cpus": sorted(server_cpus()),
        "load_cpus": sorted(load_cpus()),
        "loadavg_at_end": os.getloadavg(),
        "commit": commit,
        "rotary_src": os.environ.get("BENCH_ROTARY_SRC", "working tree (editable install)"),
        "centrifugo_cores": cores_label(),
    }


def _write_json(
    path: Path, results: dict[str, dict[str, Any]], ratios: dict[str, Any], *, quick: bool
) -> None:
    doc: dict[str, Any] = {"meta": _meta(quick), "ratios": ratios, "scenarios": results}
    doc.update(_verify_top_level(results))
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def _verify_top_level(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`verify`'s per-algorithm µs figures and ``speedup_vs_pyjwt``, for the top of the file.

    The acceptance criteria read them at the top level; they stay under ``scenarios`` too.
    """
    figures = results.get("verify", {}).get("json")
    return dict(figures) if isinstance(figures, dict) else {}


def plot(results: dict[str, dict[str, Any]], path: Path) -> list[Path]:
    """One PNG per curve (`<stem>_<curve>.png`) plus an overview per scenario in `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    written: list[Path] = []
    curves = {n: r.get("curves", {}) for n, r in results.items() if r.get("curves")}
    for curve_set in curves.values():
        for name, c in curve_set.items():
            fig = Figure(figsize=(6, 4))
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            _draw(ax, c, label=None)
            ax.set_title(name)
            target = path.with_name(f"{path.stem}_{name}{path.suffix or '.png'}")
            # fixed margins: tight_layout costs seconds per figure on a busy machine
            fig.subplots_adjust(left=0.16, bottom=0.13, right=0.97, top=0.91)
            fig.savefig(target, dpi=80)
            written.append(target)
    if curves:
        fig = Figure(figsize=(6 * len(curves), 4.5))
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(curves), squeeze=False)
        for ax, (scenario, curve_set) in zip(axes[0], curves.items(), strict=True):
            for name, c in curve_set.items():
                _draw(ax, c, label=_series_label(c["ylabel"]) or name)
            ax.set_title(scenario)
            ax.set_ylabel(next(iter(curve_set.values()))["ylabel"].split(" (")[0])
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        written.append(path)
    return written


def _series_label(ylabel: str) -> str:
    """``"clients subscribed (Rotary, warm (cache))"`` → ``"Rotary, warm (cache)"``."""
    head, sep, _ = ylabel.partition(" (")
    return ylabel[len(head) + len(sep) : -1] if sep and ylabel.endswith(")") else ""


def _draw(ax: Any, curve: dict[str, Any], *, label: str | None) -> None:
    style = "-" if len(curve["x"]) > 3 else "o-"
    ax.plot(curve["x"], curve["y"], style, label=label)
    ax.set_xlabel(curve["xlabel"])
    ax.set_ylabel(curve["ylabel"])
    ax.grid(True, alpha=0.3)
