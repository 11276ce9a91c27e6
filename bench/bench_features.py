"""Search-specific serving features on the 2026 passages scenario: simulated LLM requests per
wall-second and peak RSS with each feature off and on (passages are always objects there).

    .venv/bin/python bench/bench_features.py [SECONDS]
"""

from __future__ import annotations

import sys

from common import run_variants

FEATURES = {
    "off": [],
    "prefix cache + affinity": ["llm.prefix_cache={memory_fraction=0.3}",
                                "llm.router='prefix_affinity'"],
    "semantic cache": ["cache.semantic={threshold=0.9}"],
    "disaggregated 3:1": ["llm.disaggregated={prefill={hardware='h200', tp=1, replicas=27}, "
                          "decode={hardware='h200', tp=1, replicas=9}}"],
}


def main(seconds: str = "600") -> None:
    run_variants("two_stage_2026_passages", FEATURES, seconds, ("llm.replicas=36",))


if __name__ == "__main__":
    main(*sys.argv[1:])
