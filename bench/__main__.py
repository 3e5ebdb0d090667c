"""`python -m bench SCENARIO [SCENARIO ...] [--quick] [--json FILE] [--plot FILE.png]`.

Several scenarios run one after the other into one results file. Scenarios: verify,
nodecost, storm, stormcount, fanout, delta, tagsfilter, memory, cluster, latency, soak,
slowconsumers, slowloris, redisdown, proxystorm, workers, flood, compression, or `all` (every
one that exists; `all --quick` leaves out stormcount, whose valgrind start-up alone is slow).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.harness import FULL_ONLY, SCENARIOS, load_scenario, main_run

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", nargs="+", choices=[*SCENARIOS, "all"])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--json", type=Path, help="write every figure and the ratios here")
    parser.add_argument("--plot", type=Path, help="PNG: overview here, one more per curve")
    args = parser.parse_args(argv)
    if "all" in args.scenario:
        names = [
            n
            for n in SCENARIOS
            if load_scenario(n) is not None and not (args.quick and n in FULL_ONLY)
        ]
    else:
        names = list(dict.fromkeys(args.scenario))
    return main_run(names, quick=args.quick, json_path=args.json, plot_path=args.plot)


if __name__ == "__main__":
    raise SystemExit(main())
