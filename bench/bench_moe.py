"""Mixture-of-experts serving on the 2026 MoE scenario: simulated LLM requests per
wall-second and peak RSS for gpt-oss-120b alone on each B200 and on DEP 2 (attention data
parallel, experts split over two B200s: the expert and all-to-all terms on every step).

    .venv/bin/python bench/bench_moe.py [SECONDS]
"""

from __future__ import annotations

import sys

from common import ROOT, report, timed

from sim.runner.api import run
from sim.scenario import loading

LAYOUTS = {
    "TP 1, 2 replicas": ["llm.replicas=2"],
    "DEP 2, 1 replica": ["llm.replicas=1", "llm.dp=2", "llm.ep=2"],
}


def main(seconds: str = "600") -> None:
    for name, extra in LAYOUTS.items():
        s = loading.load(ROOT / "scenarios" / "two_stage_2026_moe.toml",
                         [f"run.duration_s={seconds}", "run.warmup_s=60", *extra])
        res, wall = timed(lambda s=s: run(s, tables="discard"))
        report(f"two_stage_2026_moe, {name} ({seconds} s)",
               res.summary["llm_requests_submitted"], wall,
               f"(p99 {res.summary['latency_p99_s']:.2f} s)")


if __name__ == "__main__":
    main(*sys.argv[1:])
