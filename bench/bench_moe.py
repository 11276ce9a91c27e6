"""Mixture-of-experts serving on the 2026 MoE scenario: simulated LLM requests per
wall-second and peak RSS for gpt-oss-120b alone on each B200 and on DEP 2 (attention data
parallel, experts split over two B200s: the expert and all-to-all terms on every step).

    .venv/bin/python bench/bench_moe.py [SECONDS]
"""

from __future__ import annotations

import sys

from common import run_variants

LAYOUTS = {
    "TP 1, 2 replicas": ["llm.replicas=2"],
    "DEP 2, 1 replica": ["llm.replicas=1", "llm.dp=2", "llm.ep=2"],
}


def main(seconds: str = "600") -> None:
    run_variants("two_stage_2026_moe", LAYOUTS, seconds)


if __name__ == "__main__":
    main(*sys.argv[1:])
