"""Records -> Arrow tables and the run's summary (latency, utilization, cost, revenue share).

Statistics cover queries that arrived in the measurement window [warm-up, duration); the
time series covers the whole run. Two costs are reported: provisioned (the fleet's price over
the window, idle included, per completed query) and busy (accelerator-seconds actually used).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sim.model import catalog, perf
from sim.model.perf import decode_times, prefill_pairs, useful_flops
from sim.serving.records import group_sum
from sim.units import SECONDS_PER_HOUR


def with_request_latencies(requests: pa.Table) -> pa.Table:
    """Per request: queue wait, time to first token, time per output token (after the
    first), all NaN where they do not apply."""
    sub = requests["submitted"].to_numpy()
    start = requests["started"].to_numpy()
    first = requests["first_token"].to_numpy()
    fin = requests["finished"].to_numpy()
    out = requests["generated_tokens"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (fin - first) / (out - 1), np.nan)
    for name, values in (("queue_wait_s", start - sub), ("ttft_s", first - sub),
                         ("tpot_s", tpot)):
        requests = requests.append_column(name, pa.array(values))
    return requests


def rows_of(queries: pa.Table, query_ids: np.ndarray) -> np.ndarray:
    """Row positions of query ids in a table sorted by id (ids need not be dense: a shard
    holds a subset of the stream's arrival indices)."""
    return np.searchsorted(queries["query_id"].to_numpy(), query_ids)


def per_query_from_requests(queries: pa.Table, requests: pa.Table) -> pa.Table:
    """Add each query's request aggregates: accelerator-seconds, tokens, waits, responses."""
    n = queries.num_rows
    qid = rows_of(queries, requests["query_id"].to_numpy())
    started = requests["started"].to_numpy()
    submitted = requests["submitted"].to_numpy()
    finished = requests["finished"].to_numpy()
    served = ~requests["cancelled"].to_numpy() & ~requests["unfinished"].to_numpy()
    accel = group_sum(qid, requests["accelerator_s"].to_numpy(), n)
    wait = np.full(n, np.nan)
    np.fmax.at(wait, qid, started - submitted)
    first, last = np.full(n, np.inf), np.full(n, -np.inf)
    np.minimum.at(first, qid[served], finished[served])
    np.maximum.at(last, qid[served], finished[served])
    arrival = queries["arrival"].to_numpy()
    cols = {
        "requests": np.bincount(qid, minlength=n)[:n],
        "llm_wait_s": wait,
        "first_response_s": np.where(np.isfinite(first), first - arrival, np.nan),
        "last_response_s": np.where(np.isfinite(last), last - arrival, np.nan),
        "tokens_in": group_sum(qid, requests["prefilled_tokens"].to_numpy(), n).astype(np.int64),
        "tokens_out": group_sum(qid, requests["generated_tokens"].to_numpy(), n).astype(
            np.int64),
        "accelerator_s": accel,
        "latency_s": queries["done"].to_numpy() - arrival,
    }
    for name, values in cols.items():
        queries = queries.append_column(name, pa.array(values))
    return queries


def _percentile(x: np.ndarray, q: float):
    x = x[~np.isnan(x)]
    return float(np.percentile(x, q)) if len(x) else None


def _mean(x: np.ndarray):
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else None


def timeseries(levels: dict, capacity: dict, end: float, interval: float) -> pa.Table:
    edges = np.append(np.arange(0.0, end, interval), end)
    if len(edges) < 2 or edges[-2] == edges[-1]:
        edges = edges[:-1] if len(edges) > 2 else np.array([0.0, max(end, 1e-9)])
    cols: dict[str, list] = {name: [] for name in (
        "interval_start", "interval_end", "pool", "utilization", "queue_mean", "running_mean")}
    for pool, (busy, queue, running) in levels.items():
        k = len(edges) - 1
        cols["interval_start"] += edges[:-1].tolist()
        cols["interval_end"] += edges[1:].tolist()
        cols["pool"] += [pool] * k
        cols["utilization"] += (busy.bin_means(edges) / capacity[pool]).tolist()
        cols["queue_mean"] += queue.bin_means(edges).tolist()
        cols["running_mean"] += running.bin_means(edges).tolist()
    return pa.table(cols)


def capacity_qps(s, snap, requests: pa.Table, requests_per_query: float) -> float | None:
    """Queries per second the fleet serves with every replica running full batches: the
    step-time model prices a request of the window's mean prompt and output at batch
    B = min(max_batch, the requests whose whole context fits the KV cache). Under the article
    model this is exactly accelerators / busy accelerator-seconds per query."""
    if requests_per_query == 0 or requests.num_rows == 0:
        return None
    prompt = float(np.mean(requests["prompt_tokens"].to_numpy()))
    output = float(np.mean(requests["output_tokens"].to_numpy()))
    batch = s.llm.max_batch
    kv = snap.replicas[0].capacity
    if kv:
        batch = max(1, min(batch, int(kv // (prompt + output))))
    step = perf.build(s.llm, catalog.model(s.llm.model), catalog.accelerator(s.llm.hardware))
    prefill = float(step.iteration_time(batch * prompt, batch * prefill_pairs(prompt), 0, 0))
    # the prefill samples the first token; output - 1 decode iterations follow
    steps = max(1, round(output - 1))
    decode = float(decode_times(step, batch, batch * (prompt + 1), steps).sum()) * (
        output - 1) / steps
    per_request = (prefill + decode) / batch  # replica-seconds
    return s.llm.replicas / (per_request * requests_per_query)


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
    return not last > s.run.unstable_queue_growth * first + s.llm.max_batch * s.llm.replicas


@dataclass(frozen=True)
class Window:
    """The measurement window over a run's tables: the queries that arrived in
    [warmup_s, duration_s) and their LLM requests. Every summary figure uses these masks."""

    queries: np.ndarray  # bool per query row
    completed: np.ndarray  # ... of those, answered by the end of the run
    requests: np.ndarray  # bool per request row: its query is in the window
    seconds: float

    @classmethod
    def of(cls, s, queries: pa.Table, requests: pa.Table) -> Window:
        w0, w1 = s.run.warmup_s, s.run.duration_s
        arrival = queries["arrival"].to_numpy()
        inside = (arrival >= w0) & (arrival < w1)
        done = ~np.isnan(queries["done"].to_numpy())
        req = inside[rows_of(queries, requests["query_id"].to_numpy())]
        return cls(inside, inside & done, req, w1 - w0)

    @property
    def n(self) -> int:
        return int(self.queries.sum())

    @property
    def n_done(self) -> int:
        return int(self.completed.sum())


def _share(mask: np.ndarray, of: np.ndarray) -> float | None:
    return float(mask[of].mean()) if of.any() else None


def summarize(s, arch, model, hardware, queries: pa.Table, requests: pa.Table, snap) -> dict:
    """`arch` is the architecture that ran: the scenario's, or `llm_trace` when an LLM request
    trace drove the pool directly (no cache keys, so no cache bound)."""
    w = Window.of(s, queries, requests)
    load = _load(s, arch, w, queries, requests, snap)
    use = _utilization(s, model, hardware, w, requests, snap)
    return {**_identity(s, arch, snap), **load,
            **_latency(s, w, queries, load["stable"]), **_answers(s, w, queries),
            **use, **_cost(s, arch, w, queries, use, load["sustainable_qps"]),
            **_serving(w, requests, snap)}


def _identity(s, arch, snap) -> dict:
    return {"scenario": s.name, "architecture": arch.name, "seed": s.run.seed,
            "model": s.llm.model, "hardware": s.llm.hardware, "step_model": s.llm.step_model,
            "batching": s.llm.batching, "accelerators": s.llm.tp * s.llm.replicas,
            "duration_s": s.run.duration_s, "warmup_s": s.run.warmup_s, "simulated_s": snap.end}


def _load(s, arch, w: Window, queries: pa.Table, requests: pa.Table, snap) -> dict:
    """Arrivals, throughput, stability and the cache."""
    hit = queries["cache_hit"].to_numpy()
    hit_rate = _share(hit, w.queries)
    # requests per arriving query, from the cache decision at arrival: counting finished
    # requests instead would understate it in overload, when misses are left unfinished
    sustainable = capacity_qps(s, snap, requests.filter(pa.array(w.requests)),
                               arch.fanout * (1 - (hit_rate or 0.0)))
    unfinished = 1 - w.n_done / w.n if w.n else 0.0
    retrieval = retrieval_capacity_qps(s, 1 - (hit_rate or 0.0)) if arch.retrieves else None
    pools = {k: v for k, v in (("llm", sustainable), ("retrieval", retrieval)) if v}
    return {
        "queries": queries.num_rows,
        "measured_queries": w.n,
        "completed": w.n_done,
        "in_flight": int(np.isnan(queries["done"].to_numpy()).sum()),
        "offered_qps": w.n / w.seconds,
        "sustainable_qps": sustainable,
        "retrieval_sustainable_qps": retrieval,
        "bottleneck": min(pools, key=lambda k: pools[k]) if pools else None,
        "stable": bool(_stability(s, snap.waiting, unfinished)),
        "cache_hit_rate": hit_rate,
        "cache_hit_bound": _repeat_share(queries, w)
        if arch.caches and s.cache.policy == "lru" else None,
        "llm_requests": int(w.requests.sum()),
    }


def retrieval_capacity_qps(s, miss_rate: float) -> float | None:
    """Queries per second the retrieval servers serve flat out: servers / mean service time,
    per query that misses the cache."""
    if miss_rate <= 0:
        return None
    return s.retrieval.servers / s.retrieval.service_s.build().mean / miss_rate


def _repeat_share(queries: pa.Table, w: Window) -> float | None:
    """The window's hit rate with an infinite cache: the share of its queries whose key
    arrived before (warm-up included). No LRU cache of the same stream can do better."""
    keys = queries["key"].to_numpy()  # rows in arrival order (query ids are arrival indices)
    _, first = np.unique(keys, return_index=True)
    repeat = np.ones(len(keys), dtype=bool)
    repeat[first] = False
    return _share(repeat, w.queries)


def _latency(s, w: Window, queries: pa.Table, stable: bool) -> dict:
    latency = queries["latency_s"].to_numpy()[w.completed]
    return {
        "latency_mean_s": _mean(latency),
        "latency_p50_s": _percentile(latency, 50),
        "latency_p95_s": _percentile(latency, 95),
        "latency_p99_s": _percentile(latency, 99),
        "latency_percentiles_valid": stable,
        "llm_wait_mean_s": _mean(queries["llm_wait_s"].to_numpy()[w.queries]),
        "retrieval_wait_mean_s": _mean(queries["retrieval_wait_s"].to_numpy()[w.queries]),
    }


def _answers(s, w: Window, queries: pa.Table) -> dict:
    """What users got: complete answers (every response, or a cache hit), partial ones (some
    responses at the deadline), degraded ones (plain results). Only complete answers within
    `slo_s` meet the SLO."""
    outcome = queries["deadline_outcome"].to_numpy(zero_copy_only=False)
    complete = queries["complete"].to_numpy()
    complete_share = _share(complete, w.queries)
    quality = None if complete_share is None else (
        "complete" if complete_share >= s.limits.complete_share_target else "incomplete")
    return {
        "slo_s": s.limits.slo_s,
        "slo_attainment": _share(queries["slo_met"].to_numpy(), w.queries),
        "slo_miss_cause": slo_miss_cause(queries, w.queries),
        "complete_fraction": complete_share,
        "answer_quality": quality,
        "degraded_fraction": _share(outcome == "degraded", w.queries),
        "partial_fraction": _share(outcome == "partial", w.queries),
    }


def slo_miss_cause(queries: pa.Table, window: np.ndarray) -> str | None:
    """What keeps the window's queries from meeting the SLO: `deadline` (answers cut to
    partial or degraded), `queueing` (complete but late, mostly waiting for the LLM pool:
    more replicas help), `service` (complete but late, mostly being served: a faster step,
    shorter outputs or a higher tensor-parallel degree help; replicas do not), `unfinished`
    (still running at the end: overload); None when every query met it."""
    missed = window & ~queries["slo_met"].to_numpy()
    if not missed.any():
        return None
    complete = queries["complete"].to_numpy()
    answered = ~np.isnan(queries["done"].to_numpy())
    counts = {"unfinished": int((missed & ~answered).sum()),
              "deadline": int((missed & answered & ~complete).sum())}
    late = missed & complete
    if late.any():
        wait = np.nan_to_num(queries["llm_wait_s"].to_numpy()[late])
        wait += np.nan_to_num(queries["retrieval_wait_s"].to_numpy()[late])
        share = float(np.median(wait / queries["latency_s"].to_numpy()[late]))
        counts["queueing" if share > 0.5 else "service"] = int(late.sum())
    return max(counts, key=lambda k: counts[k])


def _utilization(s, model, hardware, w: Window, requests: pa.Table, snap) -> dict:
    w0, w1 = s.run.warmup_s, s.run.duration_s
    chips = s.llm.tp * s.llm.replicas
    utilization = snap.busy_chips.integral(w0, w1) / (chips * w.seconds)
    # tokens the model processed for the window's requests: the prompt (and any
    # recomputation), then every generated token but the last fed back in
    generated = requests["generated_tokens"].to_numpy()[w.requests]
    tokens = requests["prefilled_tokens"].to_numpy()[w.requests] + np.maximum(generated - 1, 0)
    busy = float(requests["accelerator_s"].to_numpy()[w.requests].sum())
    mfu_busy = float(useful_flops(model, tokens.sum()) / (busy * hardware.peak_flops)) \
        if busy > 0 else None
    busy_replica_s = snap.busy_chips.integral(w0, w1) / s.llm.tp
    return {
        "mean_batch_size": snap.running.integral(w0, w1) / busy_replica_s
        if busy_replica_s > 0 else None,
        "accelerator_utilization": utilization,
        "mfu_while_busy": mfu_busy,
        "mfu": utilization * mfu_busy if mfu_busy is not None else None,
        "accelerator_seconds": busy,
        "retrieval_utilization": snap.retrieval_busy.integral(w0, w1)
        / (s.retrieval.servers * w.seconds),
    }


def _cost(s, arch, w: Window, queries: pa.Table, use: dict,
          sustainable: float | None) -> dict:
    """Provisioned: the fleet's price over the window per completed query (retrieval servers
    only where retrieval runs). Busy: the chip-seconds the fleet was busy inside the window at
    the chip price, per completed query: utilization x the accelerators' provisioned cost, so
    never above it (work that spills past the window's end is not billed twice)."""
    chips = s.llm.tp * s.llm.replicas
    usd_chip_h = s.usd_per_chip_hour
    retrieval_usd_h = s.retrieval.servers * s.retrieval.usd_per_server_hour \
        if arch.retrieves else 0.0
    fleet_usd_h = chips * usd_chip_h + retrieval_usd_h
    n = w.n_done
    prov = fleet_usd_h * w.seconds / SECONDS_PER_HOUR / n if n else None
    busy_chip_s = use["accelerator_utilization"] * chips * w.seconds
    busy = busy_chip_s * usd_chip_h / SECONDS_PER_HOUR / n if n else None
    revenue = s.economics.revenue_per_query
    # the article's view: the fleet's price over the throughput it sustains at full batches
    capacity = fleet_usd_h / SECONDS_PER_HOUR / sustainable if sustainable else None
    return {
        "usd_per_chip_hour": usd_chip_h,
        "fleet_usd_per_hour": fleet_usd_h,
        "cost_per_query_provisioned": prov,
        "cost_per_query_busy": busy,
        "revenue_per_query": revenue,
        "revenue_share": prov / revenue if prov is not None else None,
        "revenue_share_busy": busy / revenue if busy is not None else None,
        "cost_per_query_at_capacity": capacity,
        "revenue_share_at_capacity": capacity / revenue if capacity is not None else None,
        "tokens_in": int(queries["tokens_in"].to_numpy()[w.queries].sum()),
        "tokens_out": int(queries["tokens_out"].to_numpy()[w.queries].sum()),
    }


def _serving(w: Window, requests: pa.Table, snap) -> dict:
    """Serving figures of the window's requests, and the replicas' memory."""
    cancelled = requests["cancelled"].to_numpy()
    served = w.requests & ~cancelled
    ttft = requests["ttft_s"].to_numpy()[served]
    tpot = requests["tpot_s"].to_numpy()[served]
    caps = [r.capacity for r in snap.replicas if r.capacity]
    return {
        "ttft_p50_s": _percentile(ttft, 50),
        "ttft_p99_s": _percentile(ttft, 99),
        "tpot_mean_s": _mean(tpot),
        "max_batch_seen": max(r.batch_peak for r in snap.replicas),
        "kv_capacity_tokens": min(caps) if caps else None,
        "kv_peak_fraction": max(r.kv_peak / r.capacity for r in snap.replicas)
        if caps else None,
        "preemptions": snap.preemptions,
        "refusals": snap.refusals,
        "cancelled_requests": int((w.requests & cancelled).sum()),
        "llm_requests_submitted": snap.submitted,
        "llm_requests_unfinished": sum(r.outstanding for r in snap.replicas),
    }


def answer_columns(queries: pa.Table, slo_s: float) -> pa.Table:
    """`complete`: answered with every response (or from the cache); `slo_met`: complete
    and within `slo_s`. A partial or degraded answer never meets the SLO."""
    outcome = queries["deadline_outcome"].to_numpy(zero_copy_only=False)
    answered = ~np.isnan(queries["done"].to_numpy())
    complete = answered & ~np.isin(outcome, ("partial", "degraded"))
    latency = queries["latency_s"].to_numpy()
    with np.errstate(invalid="ignore"):
        met = complete & (latency <= slo_s)
    return queries.append_column("complete", pa.array(complete)).append_column(
        "slo_met", pa.array(met))
