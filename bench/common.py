"""Benchmark helpers: wall time, simulated requests per wall-second, peak memory (RSS)."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def report(name: str, requests: int, wall_s: float, extra: str = "") -> None:
    print(f"{name}: {requests:,} LLM requests in {wall_s:.2f} s wall = "
          f"{requests / wall_s:,.0f} requests/wall-s; peak RSS {peak_rss_mb():.0f} MB {extra}",
          flush=True)


def run_variants(scenario: str, variants: dict[str, list[str]], seconds: str,
                 base: tuple[str, ...] = ()) -> None:
    """Each variant of a bundled scenario (its overrides after `base`) run for `seconds`
    simulated seconds, reported with its p99."""
    from sim.runner.api import run
    from sim.scenario import loading
    for name, extra in variants.items():
        s = loading.load(ROOT / "scenarios" / f"{scenario}.toml",
                         [f"run.duration_s={seconds}", "run.warmup_s=60", *base, *extra])
        res, wall = timed(lambda s=s: run(s, tables="discard"))
        report(f"{scenario}, {name} ({seconds} s)", res.summary["llm_requests_submitted"],
               wall, f"(p99 {res.summary['latency_p99_s']:.2f} s)")
