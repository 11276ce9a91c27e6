"""The standard two_stage run (K = 10, >= 100,000 LLM requests): simulated LLM requests per
wall-second and peak memory. Pass `continuous` to use continuous batching.

    .venv/bin/python bench/bench_core.py [static|continuous]
"""

from __future__ import annotations

import sys

from common import ROOT, report, timed

from sim import config, engine


def main(batching: str = "static") -> None:
    s = config.load(ROOT / "scenarios" / "two_stage.toml",
                    ["run.duration_s=8000", f"llm.batching={batching!r}"])
    res, wall = timed(lambda: engine.run(s))
    n = res.requests.num_rows
    report(f"two_stage {batching}", n, wall,
           f"(simulated {res.summary['simulated_s']:.0f} s, utilization "
           f"{res.summary['accelerator_utilization']:.1%})")


if __name__ == "__main__":
    main(*sys.argv[1:])
