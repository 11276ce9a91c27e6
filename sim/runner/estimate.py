"""How long a simulation will take, said before it starts when that is more than a minute.

The estimate is simulated LLM requests over a measured speed: one process simulates about
REQUESTS_PER_WALL_S requests a second (bench/bench_reference.py, 2-core machine,
2026-12: 30-31k on its reference workload; prompt-first engines run faster, static batching
and tiny batches slower), so it is a rough figure, refined by the progress bar's ETA once
the work runs. A trace replay's length is not known before it is read: no estimate.
"""

from __future__ import annotations

import math

from sim.scenario.schema import Scenario
from sim.serving.architectures import architecture

REQUESTS_PER_WALL_S = 30_000.0
# a prefix cache matches and keeps every request's blocks: bench/bench_features.py 600 ran
# 5.5k requests a second with it (and affinity routing) against 15.7k without
PREFIX_CACHE_SPEED = 0.35
SAY_AFTER_S = 60.0  # shorter work starts without an estimate


def run_requests(s: Scenario) -> float | None:
    """LLM requests one run of `s` simulates at most (no cache hits; a diurnal rate at its
    peak), over its sampled shards only, counted at the speed of a run without a prefix
    cache (one with costs 1 / PREFIX_CACHE_SPEED times as much); None for a trace
    replay."""
    w = s.workload
    if w.replayed is not None:
        return None
    rate = w.rate_qps * (max(w.profile) if w.arrival == "diurnal" and w.profile else 1.0)
    share = (s.run.sample_shards / s.run.shards) if s.run.sample_shards else 1.0
    slower = 1.0 / PREFIX_CACHE_SPEED if s.llm.prefix_cache is not None else 1.0
    return rate * s.run.duration_s * architecture(s.architecture).fanout * share * slower


def wall_seconds(requests: float, workers: int) -> float:
    return requests / (REQUESTS_PER_WALL_S * max(1, workers))


def sizing_requests(s: Scenario, candidates: int, lo: int, hi: int, replications: int
                    ) -> float | None:
    """The most a sizing can simulate: every candidate's most probes, each once per seed."""
    one = run_requests(s)
    if one is None:
        return None
    probes = 2 + math.ceil(math.log2(hi - lo + 1))  # the top, a bisection, one below the top
    return one * candidates * probes * replications


def say(requests: float | None, workers: int) -> str | None:
    """The line to print before work estimated to take more than SAY_AFTER_S, else None."""
    if requests is None:
        return None
    seconds = wall_seconds(requests, workers)
    if seconds <= SAY_AFTER_S:
        return None
    when = f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
    return (f"estimate: up to {requests:,.0f} simulated LLM requests, about {when} on "
            f"{workers} process{'es' if workers > 1 else ''} at ~{REQUESTS_PER_WALL_S:,.0f} a "
            "second each (the progress bar's ETA refines it)")
