"""The standard two_stage run (K = 10, >= 100,000 LLM requests): simulated LLM requests per
wall-second and peak memory. Pass `continuous` to use continuous batching, and optionally
another bundled scenario and duration.

    .venv/bin/python bench/bench_core.py [static|continuous] [SCENARIO] [DURATION_S]
"""

from __future__ import annotations

import sys

from common import ROOT, report, timed

from sim import config, engine


def main(batching: str = "static", scenario: str = "two_stage", duration: str = "8000") -> None:
    s = config.load(ROOT / "scenarios" / f"{scenario}.toml",
                    [f"run.duration_s={duration}", f"llm.batching={batching!r}"])
    res, wall = timed(lambda: engine.run(s))
    n = res.requests.num_rows
    report(f"{scenario} {batching}", n, wall,
           f"(simulated {res.summary['simulated_s']:.0f} s, utilization "
           f"{res.summary['accelerator_utilization']:.1%})")


if __name__ == "__main__":
    main(*sys.argv[1:])
