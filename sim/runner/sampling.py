"""Sampled shards: simulate k of a scenario's S shards and estimate the whole fleet.

Sharding by query hash with the cache partitioned by key makes the shards independent,
statistically identical copies of one system (each with 1/S of the traffic, replicas, cache
and retrieval servers). So k of them, chosen at random by the seed, estimate the fleet:
intensive figures (cost per query, utilization, latency percentiles, SLO attainment) by the
mean over the sampled shards, extensive ones (queries, throughput, power) by S times it, each
with a 95% Student-t interval from the spread between shards, finite-population corrected
(it closes when k = S). Latency and time-to-first-token percentiles come from the sampled
shards' values pooled (a sample of the fleet's whole distribution), with intervals from the
spread of the shards' own percentiles.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sim.analysis import summary as metrics
from sim.errors import Problem, SearchsimError
from sim.runner.engine import Results, Shard, finish
from sim.runner.parallel import map_jobs, report
from sim.runner.shards import shard_scenario, shard_tables, simulate_shard, staged_dirs
from sim.scenario.schema import Scenario

# summary keys that add up over shards (scaled by S); every other number is a per-query or
# per-chip figure, averaged
EXTENSIVE = {
    "queries", "measured_queries", "completed", "in_flight", "offered_qps", "sustainable_qps",
    "retrieval_sustainable_qps", "llm_requests", "accelerators", "accelerator_seconds",
    "fleet_usd_per_hour", "tokens_in", "tokens_out", "llm_power_w_mean", "llm_energy_kwh",
    "preemptions", "refusals", "cancelled_requests", "llm_requests_submitted",
    "llm_requests_unfinished", "requests_retried", "requests_lost",
    "queries_affected_by_failures", "retrieval_timeouts", "host_energy_kwh", "slo_misses",
    "retrieval_cut_calls", "prefix_hit_tokens"}
# the largest any shard saw (a mean of maxima is no maximum)
MAXIMA = {"max_batch_seen", "kv_peak_fraction"}
SHARES = {"revenue_share", "accelerator_utilization", "slo_attainment", "complete_fraction",
          "availability", "retrieval_availability"}
# the figures reported with an interval
HEADLINE = ("offered_qps", "completed", "cost_per_query_provisioned", "cost_per_query_busy",
            "revenue_share", "accelerator_utilization", "latency_p50_s", "latency_p95_s",
            "latency_p99_s", "slo_attainment", "complete_fraction", "energy_per_query_j",
            "owned_cost_per_query", "llm_power_w_mean", "availability")


def chosen_shards(s: Scenario) -> list[int]:
    """The k shards a seed samples, in order."""
    seed = s.run.seed if s.run.sample_seed is None else s.run.sample_seed
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5A3D1E]))
    return sorted(rng.choice(s.run.shards, s.run.sample_shards, replace=False).tolist())


def check(s: Scenario) -> None:
    n = s.run.shards
    for field, total in (("llm.replicas", s.llm.replicas),
                         *((f"llm.groups[{i}].replicas", g.replicas)
                           for i, g in enumerate(s.llm.groups)),
                         ("retrieval.servers", s.retrieval.servers)):
        if total % n:
            raise SearchsimError(Problem(field, total, f"a multiple of run.shards ({n}) to "
                                         "sample shards (sampled shards must be identical)"))


def _one(job) -> tuple[Results, Shard]:
    s, index, shards, tables, directory = job
    si = shard_scenario(s, index, shards)
    part = simulate_shard(si, index, shards, tables, directory, direct=True, progress=report)
    return finish(si, part), part


def _shares(progress: Callable[[float], None] | None) -> Callable[[float, int], None] | None:
    """A run's progress as the share of its shards' work done."""
    return None if progress is None else lambda done, total: progress(done / total)


def run_sampled(s: Scenario, progress: Callable[[float], None] | None = None,
                tables: str = "memory", stream_to: Path | None = None) -> Results:
    """The estimate, the first sampled shard's time series (one shard's picture), and the
    sampled shards' tables (replicas numbered across them) as `shard_tables` says."""
    check(s)
    chosen = chosen_shards(s)
    dirs = staged_dirs(s, tables, stream_to, chosen)
    done = map_jobs(_one, [(s, i, s.run.shards, tables, None if dirs is None else dirs[k])
                           for k, i in enumerate(chosen)], s.run.jobs,
                    _shares(progress), s.run.backend, s.run.ray_address)
    parts = [p for _, p in done]
    summary = estimate([r.summary for r, _ in done], s.run.shards, chosen)
    summary.update(pooled_distributions(parts))
    summary["fleet"] = metrics.fleet_text(s)  # the whole fleet, not one shard's share
    queries, requests = shard_tables(parts, [s.llm.replica_count // s.run.shards] * len(parts),
                                     tables, stream_to, dirs)
    return Results(s, summary, queries, requests, done[0][0].timeseries, None)


def pooled_distributions(parts: list[Shard]) -> dict:
    """Latency and time-to-first-token percentiles (and the latency mean) of the sampled
    shards' values pooled: a sample of the whole fleet's distribution, where the mean of
    each shard's percentile is an average of tails. Their intervals stay the spread between
    shards (`estimate`)."""
    return metrics.distribution_figures(functools.reduce(operator.add,
                                                         [p.reduced for p in parts]))


def estimate(shards: list[dict], total: int, chosen: list[int]) -> dict:
    """The fleet's summary from `shards`' summaries (k of `total`)."""
    k = len(shards)
    out = dict(shards[0])
    for key, value in shards[0].items():
        values = [x[key] for x in shards]
        if isinstance(value, bool):
            out[key] = all(values)
        elif key in MAXIMA and all(isinstance(v, int | float) for v in values):
            out[key] = max(values)
        elif isinstance(value, int) and key not in EXTENSIVE and len(set(values)) == 1:
            out[key] = value  # the same in every shard (the seed, a replica's KV): kept
        elif isinstance(value, int | float) and all(isinstance(v, int | float)
                                                    for v in values):
            scale = total if key in EXTENSIVE else 1
            mean = float(np.mean(values)) * scale
            out[key] = round(mean) if isinstance(value, int) and key in EXTENSIVE else mean
            if key in HEADLINE and k > 1:  # >= 0, shares <= 1; one shard: no interval
                lo, hi = interval(np.asarray(values, dtype=float) * scale, total)
                top = 1.0 if key in SHARES else math.inf
                out[f"{key}_ci95"] = [max(lo, 0.0), min(hi, top)]
        elif isinstance(value, str) or value is None:
            out[key] = max(set(values), key=values.count) if value is not None else value
    out["sampled_shards"] = {"shards": total, "sampled": k, "indices": chosen}
    return out


def interval(values: np.ndarray, population: int) -> tuple[float, float]:
    """A 95% interval for the population mean from a sample without replacement."""
    k, mean = len(values), float(values.mean())
    if k < 2:
        return math.nan, math.nan
    from scipy.stats import t as student_t  # imported when needed: it is slow to load

    fpc = math.sqrt(max(0.0, 1 - k / population))
    half = float(student_t.ppf(0.975, k - 1)) * float(values.std(ddof=1)) / math.sqrt(k) * fpc
    return mean - half, mean + half
