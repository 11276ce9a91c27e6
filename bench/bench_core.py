"""The standard two_stage run (K = 10, >= 100,000 LLM requests): simulated LLM requests per
wall-second and peak memory. Pass `continuous` to use continuous batching, and optionally
another bundled scenario and duration.

    .venv/bin/python bench/bench_core.py [static|continuous] [SCENARIO] [DURATION_S] [SHARDS]

With SHARDS > 1 the run is split into that many shards on as many processes (peak RSS is
then this process's: the merge, not the shards' workers).
"""

from __future__ import annotations

import sys

from common import ROOT, report, timed

from sim.runner.api import run
from sim.scenario import loading


def main(batching: str = "static", scenario: str = "two_stage", duration: str = "8000",
         shards: str = "1") -> None:
    s = loading.load(ROOT / "scenarios" / f"{scenario}.toml",
                    [f"run.duration_s={duration}", f"llm.batching={batching!r}",
                     f"run.shards={shards}", f"run.jobs={shards}"])
    res, wall = timed(lambda: run(s))
    n = res.requests.num_rows
    label = f"{scenario} {batching}" + (f" {shards} shards" if int(shards) > 1 else "")
    report(label, n, wall,
           f"(simulated {res.summary['simulated_s']:.0f} s, utilization "
           f"{res.summary['accelerator_utilization']:.1%})")


if __name__ == "__main__":
    main(*sys.argv[1:])
