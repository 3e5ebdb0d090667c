"""Markdown tables from a results file: `python -m bench.report RESULTS.json`.

Used to bring a run's figures into docs/benchmarks.md. The ratios against Centrifugo get a
table of their own (before the table of every ratio), headed with how Centrifugo ran.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.harness import cell

__all__ = ["main", "markdown"]


def markdown(doc: dict[str, Any]) -> str:
    """Every scenario's table and the ratios of a results document, as Markdown."""
    meta = doc.get("meta", {})
    blocks = [
        f"Run of {meta.get('date', '?')} (commit {str(meta.get('commit', ''))[:10]}, "
        f"{'quick' if meta.get('quick') else 'full'}; Python {meta.get('python', '?')}, "
        f"{meta.get('cpus', '?')} CPUs ({meta.get('cpu_model') or 'model not recorded'}), "
        f"servers on CPU {meta.get('server_cpus')}, "
        f"load on CPU {meta.get('load_cpus')}; load average at the end "
        f"{', '.join(f'{x:.1f}' for x in meta.get('loadavg_at_end', []))})."
    ]
    for name, r in doc.get("scenarios", {}).items():
        if "error" in r:
            blocks.append(f"### {name}\n\nfailed: `{r['error']}`")
            continue
        header = r.get("table_header") or ["figure", "value"]
        rows = r.get("table") or [[k, v] for k, v in r.get("figures", {}).items()]
        notes = r.get("json", {}).get("notes", []) if isinstance(r.get("json"), dict) else []
        text = f"### {name} ({r.get('seconds', '?')} s)\n\n{_table(header, rows)}"
        blocks.append(text + "".join(f"\n\nNote: {n.strip()}" for n in notes))
    ratios = doc.get("ratios", {})
    beside = [[k, v] for k, v in ratios.items() if "centrifugo" in k]
    if beside:
        cores = meta.get("centrifugo_cores", "GOMAXPROCS=1")
        blocks.append(
            f"### beside Centrifugo ({cores})\n\n"
            + _table(["Rotary / Centrifugo", "value"], beside)
        )
    if ratios:
        blocks.append(
            "### ratios\n\n" + _table(["ratio", "value"], [[k, v] for k, v in ratios.items()])
        )
    return "\n\n".join(blocks) + "\n"


def _table(header: list[Any], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(str(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" if n == 0 else "--:" for n in range(len(header))) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    print(markdown(json.loads(args.results.read_text())), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
