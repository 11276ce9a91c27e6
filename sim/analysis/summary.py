"""The run's summary (latency, utilization, cost, revenue share) from its reduced tables and
its pools' levels, and its time series.

Statistics cover queries that arrived in the measurement window [warm-up, duration); the
time series covers the whole run. Two costs are reported: provisioned (the fleet's price over
the window, idle included, per completed query) and busy (accelerator-seconds actually used).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sim.analysis.energy import energy_figures
from sim.analysis.tally import Reduced, Tally
from sim.model.perf import useful_flops
from sim.scenario import capacity
from sim.units import SECONDS_PER_HOUR


def _percentiles(x: np.ndarray, qs: tuple[float, ...]) -> list[float | None]:
    """Several percentiles of the finite values, from one partition of one copy (a long
    run's columns are large)."""
    x = x[~np.isnan(x)]
    if not len(x):
        return [None] * len(qs)
    return [float(v) for v in np.percentile(x, qs, overwrite_input=True)]


def _mean(x: np.ndarray):
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else None


def timeseries(levels: dict, capacity: dict, end: float, interval: float) -> pa.Table:
    """Per pool and interval: utilization, mean queue, mean running, and mean power in
    watts where the pool's power is modelled (`levels[pool]` = busy, queue, running and
    power or None)."""
    edges = np.append(np.arange(0.0, end, interval), end)
    if len(edges) < 2 or edges[-2] == edges[-1]:
        edges = edges[:-1] if len(edges) > 2 else np.array([0.0, max(end, 1e-9)])
    cols: dict[str, list] = {name: [] for name in (
        "interval_start", "interval_end", "pool", "utilization", "queue_mean", "running_mean",
        "power_w_mean")}
    for pool, (busy, queue, running, power) in levels.items():
        k = len(edges) - 1
        cols["interval_start"] += edges[:-1].tolist()
        cols["interval_end"] += edges[1:].tolist()
        cols["pool"] += [pool] * k
        cols["utilization"] += (busy.bin_means(edges) / capacity[pool]).tolist()
        cols["queue_mean"] += queue.bin_means(edges).tolist()
        cols["running_mean"] += running.bin_means(edges).tolist()
        cols["power_w_mean"] += power.bin_means(edges).tolist() if power is not None \
            else [float("nan")] * k
    return pa.table(cols)


def cache_rows(ts: pa.Table, t: Reduced, interval: float, cached: bool) -> pa.Table:
    """Rows for the result cache (`pool` = "cache"): each interval's hit rate over the
    queries that arrived in it (NaN where none did); the other columns NaN. Without a cache
    (`cached` False) only the empty column is added."""
    base = ts.append_column("cache_hit_rate", pa.array(np.full(ts.num_rows, np.nan)))
    if not cached:
        return base
    llm = ts.filter(pc.equal(ts["pool"], "llm"))
    k = np.rint(llm["interval_start"].to_numpy() / interval).astype(int)
    arrivals = np.array([t.arrivals_by_bin.get(int(i), 0) for i in k], dtype=float)
    hits = np.array([t.hits_by_bin.get(int(i), 0) for i in k], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(arrivals > 0, hits / arrivals, np.nan)
    nan = np.full(len(k), np.nan)
    rows = pa.table({"interval_start": llm["interval_start"], "interval_end": llm["interval_end"],
                     "pool": ["cache"] * len(k), "utilization": nan, "queue_mean": nan,
                     "running_mean": nan, "power_w_mean": nan, "cache_hit_rate": rate})
    return pa.concat_tables([base, rows])


def capacity_qps(s, snap, t: Reduced, requests_per_query: float) -> float | None:
    """Queries per second the fleet serves with every replica running full batches: the
    step-time model prices a request of the window's mean prompt and output at batch
    B = min(max_batch, the requests whose whole context fits the KV cache). Under the article
    model this is exactly accelerators / busy accelerator-seconds per query."""
    if requests_per_query == 0 or t.requests == 0:
        return None
    prompt, output = t.prompt_tokens / t.requests, t.output_tokens / t.requests
    # prefix-cache reads as measured: what a request skips of its prefill
    reused = min(t.cached_tokens / t.requests, max(prompt - 1, 0.0))
    return capacity.requests_per_s(s, prompt, output, reused) / requests_per_query


def _stability(s, waiting, unfinished: float) -> bool:
    """Unstable: too many of the window's queries unfinished after the drain, or the LLM
    queue growing through the window (last quarter well above the first); thresholds in
    `[run]`."""
    if unfinished > s.run.unstable_unfinished_share:
        return False
    w0, w1 = s.run.warmup_s, s.run.duration_s
    quarter = (w1 - w0) / 4
    first = waiting.integral(w0, w0 + quarter) / quarter
    last = waiting.integral(w1 - quarter, w1) / quarter
    return not last > s.run.unstable_queue_growth * first + s.llm.max_batch * \
        s.llm.replica_count


def layout_text(g) -> str:
    """"tp 4", or with attention data and expert parallelism "tp 1, dp 8, ep 8"."""
    if g.dp == 1 and g.ep == 1:
        return f"tp {g.tp}"
    return f"tp {g.tp}, dp {g.dp}, ep {g.ep}"


def fleet_text(s) -> str:
    text = [f"{g.replicas} x {g.hardware} ({layout_text(g)})" for g in s.llm.fleet]
    if s.llm.disaggregated is not None:
        text = [f"prefill {text[0]}", f"decode {text[1]}"]
    return " + ".join(text)


def _share(count: int, of: int) -> float | None:
    return count / of if of else None


def _ratio(total: float, count: int) -> float | None:
    return total / count if count else None


def summarize(s, arch, model, hardware, t: Reduced, snap) -> dict:
    """The run's figures from its reduced tables `t` and its pools' levels `snap`. `arch` is
    the architecture that ran: the scenario's, or `llm_trace` when an LLM request trace drove
    the pool directly (no cache keys, so no cache bound). Window figures cover the queries
    that arrived in [warmup_s, duration_s) and their requests."""
    load = _load(s, arch, t, snap)
    use = _utilization(s, model, hardware, t, snap)
    energy = energy_figures(s, arch, t.n_done, snap)
    # an owned fleet's chip-hour: its capital plus the energy it was measured to draw
    chip_rate = energy["owned_usd_per_chip_hour"] if s.economics.is_owned else None
    return {**_identity(s, arch, snap), **load, **_latency(t, load["stable"]),
            **_answers(s, t), **use,
            **_cost(s, arch, t, use, load["sustainable_qps"], chip_rate), **energy,
            **_serving(t, snap, s.run.warmup_s, s.run.duration_s),
            **(_prefix(s, t) if s.llm.prefix_cache is not None else {}),
            **(_semantic(s, t) if s.cache.semantic_on else {}),
            **(_disaggregated(t, snap) if s.llm.disaggregated is not None else {})}


def summarize_tables(s, arch, model, hardware, queries: pa.Table, requests: pa.Table,
                     snap) -> dict:
    """`summarize` from whole tables (as a run keeps them in memory)."""
    tally = Tally(count_repeats=arch.caches and s.cache.policy == "lru",
                  interval_s=s.run.interval_s)
    tally.add("queries", queries)
    tally.add("requests", requests)
    return summarize(s, arch, model, hardware, tally.reduced(), snap)


def _identity(s, arch, snap) -> dict:
    return {"scenario": s.name, "architecture": arch.name, "seed": s.run.seed,
            "model": s.llm.model, "hardware": s.llm.hardware, "step_model": s.llm.step_model,
            "batching": s.llm.batching, "accelerators": s.llm.chips,
            "fleet": fleet_text(s),
            "duration_s": s.run.duration_s, "warmup_s": s.run.warmup_s, "simulated_s": snap.end}


def _load(s, arch, t: Reduced, snap) -> dict:
    """Arrivals, throughput, stability and the cache."""
    hit_rate = _share(t.hits, t.n)
    # requests per arriving query, from the cache decision at arrival: counting finished
    # requests instead would understate it in overload, when misses are left unfinished
    sustainable = capacity_qps(s, snap, t, arch.fanout * (1 - (hit_rate or 0.0)))
    unfinished = 1 - t.n_done / t.n if t.n else 0.0
    retrieval = retrieval_capacity_qps(s, 1 - (hit_rate or 0.0)) if arch.retrieves else None
    pools = {k: v for k, v in (("llm", sustainable), ("retrieval", retrieval)) if v}
    seconds = s.run.duration_s - s.run.warmup_s
    return {
        "queries": t.queries,
        "measured_queries": t.n,
        "completed": t.n_done,
        "in_flight": t.in_flight,
        "offered_qps": t.n / seconds,
        "sustainable_qps": sustainable,
        "retrieval_sustainable_qps": retrieval,
        "bottleneck": min(pools, key=lambda k: pools[k]) if pools else None,
        "stable": bool(_stability(s, snap.waiting, unfinished)),
        "cache_hit_rate": hit_rate,
        # the window's hit rate with an infinite cache: the share of its queries whose key
        # arrived before (warm-up included); no LRU cache of the same stream does better
        "cache_hit_bound": _share(t.repeats, t.n)
        if arch.caches and s.cache.policy == "lru" else None,
        "llm_requests": t.requests,
    }


def retrieval_capacity_qps(s, miss_rate: float) -> float | None:
    """Queries per second the retrieval servers serve flat out: servers / mean service time,
    per query that misses the cache."""
    if miss_rate <= 0:
        return None
    return s.retrieval.servers / s.retrieval.service_s.build().mean / miss_rate


def distribution_figures(t: Reduced) -> dict:
    """The figures of a reduction that come from whole distributions: latency mean and
    percentiles, time-to-first-token percentiles."""
    p50, p95, p99 = _percentiles(t.column("latency"), (50, 95, 99))
    ttft_p50, ttft_p99 = _percentiles(t.column("ttft"), (50, 99))
    return {"latency_mean_s": _mean(t.column("latency")), "latency_p50_s": p50,
            "latency_p95_s": p95, "latency_p99_s": p99, "ttft_p50_s": ttft_p50,
            "ttft_p99_s": ttft_p99}


def _latency(t: Reduced, stable: bool) -> dict:
    latency = t.column("latency")
    p50, p95, p99 = _percentiles(latency, (50, 95, 99))
    return {
        "latency_mean_s": _mean(latency),
        "latency_p50_s": p50,
        "latency_p95_s": p95,
        "latency_p99_s": p99,
        "latency_percentiles_valid": stable,
        "llm_wait_mean_s": _ratio(t.llm_wait_sum, t.llm_wait_count),
        "retrieval_wait_mean_s": _ratio(t.retrieval_wait_sum, t.retrieval_wait_count),
    }


def _answers(s, t: Reduced) -> dict:
    """What users got: complete answers (every response, or a cache hit), partial ones (some
    responses at the deadline), degraded ones (plain results). Only complete answers within
    `slo_s` meet the SLO."""
    complete_share = _share(t.complete, t.n)
    quality = None if complete_share is None else (
        "complete" if complete_share >= s.limits.complete_share_target else "incomplete")
    return {
        "slo_s": s.limits.slo_s,
        "slo_attainment": _share(t.slo_met, t.n),
        "slo_miss_cause": slo_miss_cause(t),
        **slo_misses(t),
        "complete_fraction": complete_share,
        "answer_quality": quality,
        "degraded_fraction": _share(t.degraded, t.n),
        "partial_fraction": _share(t.partial, t.n),
        "failed_fraction": _share(t.failed, t.n),
        "retrieval_failed_fraction": _share(t.retrieval_failed, t.n),
        "retrieval_timeouts": t.retrieval_timeouts,
        "retrieval_cut_calls": t.retrieval_cut_calls,
    }


def slo_miss_cause(t: Reduced) -> str | None:
    """What made the window's missed queries late, whether they were answered late or cut
    by the deadline: `queueing` (most of the typical missed query's time went to waiting
    for a replica or a retrieval server: more replicas help), `service` (most of it went to
    being served: a faster step, shorter outputs or a higher tensor-parallel degree help),
    `unfinished` (still running at the end: overload); None when every query met it. A cut
    answer is a symptom, not a cause: what made it miss the deadline is one of the three."""
    counts = {"unfinished": t.missed_unfinished}
    answered = t.late + t.missed_deadline
    if answered:
        share = float(np.median(t.column("miss_wait_share")))
        counts["queueing" if share > 0.5 else "service"] = answered
    if not any(counts.values()):
        return None
    return max(counts, key=lambda k: counts[k])


def slo_misses(t: Reduced) -> dict:
    """The window's SLO misses by kind, as shares of the misses, and how the answered ones
    spent their time."""
    missed = t.late + t.missed_deadline + t.missed_unfinished
    return {"slo_misses": missed,
            "slo_miss_cut_fraction": _share(t.missed_deadline, missed) if missed else None,
            "slo_miss_late_fraction": _share(t.late, missed) if missed else None,
            "slo_miss_unfinished_fraction": _share(t.missed_unfinished, missed)
            if missed else None,
            "slo_miss_queueing_share": t.miss_wait_s / t.miss_latency_s
            if t.miss_latency_s > 0 else None}


def _utilization(s, model, hardware, t: Reduced, snap) -> dict:
    w0, w1 = s.run.warmup_s, s.run.duration_s
    chips = s.llm.chips
    busy_chip_s = snap.busy_chips.integral(w0, w1)
    utilization = busy_chip_s / (chips * (w1 - w0))
    # tokens the model processed for the window's requests: the prompt (and any
    # recomputation), then every generated token but the last fed back in
    busy = t.accelerator_s
    # the busy chips' peak (a mixed fleet's, weighted by busy time)
    peak = snap.busy_flops.integral(w0, w1) / busy_chip_s if s.llm.groups and busy_chip_s \
        else hardware.peak_flops
    mfu_busy = float(useful_flops(model, t.model_tokens) / (busy * peak)) if busy > 0 \
        else None
    busy_replica_s = snap.busy_replicas.integral(w0, w1)
    return {
        "mean_batch_size": snap.running.integral(w0, w1) / busy_replica_s
        if busy_replica_s > 0 else None,
        "accelerator_utilization": utilization,
        "mfu_while_busy": mfu_busy,
        "mfu": utilization * mfu_busy if mfu_busy is not None else None,
        "accelerator_seconds": busy,
        "retrieval_utilization": snap.retrieval_busy.integral(w0, w1)
        / (s.retrieval.servers * (w1 - w0)),
        "retrieval_availability": snap.retrieval_up.integral(w0, w1)
        / (s.retrieval.servers * (w1 - w0)),
    }


def _cost(s, arch, t: Reduced, use: dict, sustainable: float | None,
          chip_rate: float | None = None) -> dict:
    """Provisioned: the fleet's price over the window per completed query (retrieval servers
    only where retrieval runs). Busy: the chip-seconds the fleet was busy inside the window at
    the chip price, per completed query: utilization x the accelerators' provisioned cost, so
    never above it (work that spills past the window's end is not billed twice). The chip
    price is the rented one, or `chip_rate` for an owned fleet (its measured chip-hour); at
    capacity, an owned chip is priced at full power."""
    chips = s.llm.chips
    seconds = s.run.duration_s - s.run.warmup_s
    usd_chip_h = s.usd_per_chip_hour if chip_rate is None else chip_rate
    retrieval_usd_h = s.retrieval.servers * s.retrieval.usd_per_server_hour \
        if arch.retrieves else 0.0
    fleet_usd_h = chips * usd_chip_h + retrieval_usd_h
    n = t.n_done
    # semantic-cache lookups are paid per lookup (embedding model and index)
    lookups = t.semantic_lookups * s.cache.semantic.usd_per_lookup if s.cache.semantic_on \
        else 0.0
    prov = (fleet_usd_h * seconds / SECONDS_PER_HOUR + lookups) / n if n else None
    busy_chip_s = use["accelerator_utilization"] * chips * seconds
    busy = busy_chip_s * usd_chip_h / SECONDS_PER_HOUR / n if n else None
    revenue = s.economics.revenue_per_query
    # the article's view: the fleet's price over the throughput it sustains at full batches
    full_usd_h = chips * s.usd_per_chip_hour + retrieval_usd_h
    capacity = full_usd_h / SECONDS_PER_HOUR / sustainable if sustainable else None
    return {
        "price_basis": "owned" if s.economics.is_owned else "rented",
        "usd_per_chip_hour": usd_chip_h,
        "fleet_usd_per_hour": fleet_usd_h,
        "cost_per_query_provisioned": prov,
        "cost_per_query_busy": busy,
        "revenue_per_query": revenue,
        "revenue_share": prov / revenue if prov is not None else None,
        "revenue_share_busy": busy / revenue if busy is not None else None,
        "cost_per_query_at_capacity": capacity,
        "revenue_share_at_capacity": capacity / revenue if capacity is not None else None,
        "tokens_in": t.tokens_in,
        "tokens_out": t.tokens_out,
    }


def _prefix(s, t: Reduced) -> dict:
    """Prefix caching: the window's prompt tokens read from replicas' prefix caches instead
    of prefilled, as a share of the prompt tokens its requests needed (read or computed,
    recomputation after a preemption or a failure included) and of the requests that read
    any."""
    return {
        "prefix_hit_tokens": t.cached_tokens,
        "prefix_hit_rate_tokens": _ratio(t.cached_tokens,
                                         t.cached_tokens + t.prefilled_tokens),
        "prefix_hit_rate_requests": _ratio(t.cached_requests, t.requests),
    }


def _semantic(s, t: Reduced) -> dict:
    """The semantic cache: window queries it answered from near-duplicates' results (and
    of those, how many from a query of another intent), its lookups and their cost."""
    lookup_usd = t.semantic_lookups * s.cache.semantic.usd_per_lookup
    return {
        "semantic_lookups": t.semantic_lookups,
        "semantic_hit_rate": _ratio(t.semantic_hits, t.n),
        "answers_from_other_queries": t.semantic_hits,
        "semantic_false_hit_share": _ratio(t.semantic_false_hits, t.semantic_hits),
        "semantic_lookup_usd_per_query": _ratio(lookup_usd, t.n_done),
    }


def _disaggregated(t: Reduced, snap) -> dict:
    """The two pools' busy shares over the run (how well the prefill:decode ratio fits the
    load) and the KV transfers' mean time per window request."""
    def busy(role: str) -> float | None:
        reps = [r for r in snap.replicas if r.role == role]
        return sum(r.busy_s for r in reps) / (len(reps) * snap.end) if reps and snap.end \
            else None

    return {"prefill_busy_share": busy("prefill"), "decode_busy_share": busy("decode"),
            "kv_transfer_s_mean": _ratio(t.transfer_s, t.requests)}


def _serving(t: Reduced, snap, w0: float, w1: float) -> dict:
    """Serving figures of the window's requests, the replicas' memory, and failures:
    availability is the replicas' up-time share over the window."""
    ttft_p50, ttft_p99 = _percentiles(t.column("ttft"), (50, 99))
    caps = [r.capacity for r in snap.replicas if r.capacity]
    return {
        "ttft_p50_s": ttft_p50,
        "ttft_p99_s": ttft_p99,
        "tpot_mean_s": _ratio(t.tpot_sum, t.tpot_count),
        "max_batch_seen": max(r.batch_peak for r in snap.replicas),
        "kv_capacity_tokens": min(caps) if caps else None,
        "kv_peak_fraction": max(r.kv_peak / r.capacity for r in snap.replicas)
        if caps else None,
        "preemptions": snap.preemptions,
        "refusals": snap.refusals,
        "cancelled_requests": t.cancelled,
        "availability": snap.up.integral(w0, w1) / (len(snap.replicas) * (w1 - w0)),
        "requests_retried": t.retried,
        "requests_lost": t.lost,
        "queries_affected_by_failures": t.queries_hit,
        "llm_requests_submitted": snap.submitted,
        "llm_requests_unfinished": sum(r.outstanding for r in snap.replicas),
    }
