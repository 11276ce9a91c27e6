"""Records -> Arrow tables and the run's summary (latency, utilization, cost, revenue share).

Statistics cover queries that arrived in the measurement window [warm-up, duration); the
time series covers the whole run. Two costs are reported: provisioned (the fleet's price over
the window, idle included, per completed query) and busy (accelerator-seconds actually used).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
    served = ~requests["cancelled"].to_numpy()
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


def summarize(s, arch, model, hardware, queries: pa.Table, requests: pa.Table, snap) -> dict:
    """`arch` is the architecture that ran: the scenario's, or `llm_trace` when an LLM request
    trace drove the pool directly (no cache keys, so no cache bound)."""
    w0, w1 = s.run.warmup_s, s.run.duration_s
    window = w1 - w0
    arrival = queries["arrival"].to_numpy()
    measured = (arrival >= w0) & (arrival < w1)
    done = queries["done"].to_numpy()
    completed = measured & ~np.isnan(done)
    n_meas, n_done = int(measured.sum()), int(completed.sum())
    latency = (done - arrival)[completed]
    outcome = queries["deadline_outcome"].to_numpy(zero_copy_only=False)
    accel = queries["accelerator_s"].to_numpy()
    chips = s.llm.tp * s.llm.replicas
    usd_chip_h = s.usd_per_chip_hour
    retrieval_usd_h = s.retrieval.servers * s.retrieval.usd_per_server_hour if \
        s.architecture.kind == "two_stage" else 0.0
    fleet_usd_h = chips * usd_chip_h + retrieval_usd_h
    utilization = snap.busy_chips.integral(w0, w1) / (chips * window)
    # tokens the model processed: the prompt (and any recomputation), then every generated
    # token but the last fed back in (the prefill iteration samples the first)
    generated = requests["generated_tokens"].to_numpy()
    req_tokens = requests["prefilled_tokens"].to_numpy() + np.maximum(generated - 1, 0)
    busy_total = float(requests["accelerator_s"].to_numpy().sum())
    mfu_busy = float(useful_flops(model, req_tokens.sum()) / (busy_total * hardware.peak_flops)
                     ) if busy_total > 0 else None
    accel_meas = float(accel[measured].sum())
    req_q = rows_of(queries, requests["query_id"].to_numpy())
    hit_rate = float(queries["cache_hit"].to_numpy()[measured].mean()) if n_meas else 0.0
    # requests per arriving query, from the cache decision at arrival: counting finished
    # requests instead would understate it in overload, when misses are left unfinished
    sustainable = capacity_qps(s, snap, requests.filter(pa.array(measured[req_q])),
                               arch.fanout * (1 - hit_rate))
    offered = n_meas / window
    unfinished = 1 - n_done / n_meas if n_meas else 0.0
    stable = _stability(s, snap.waiting, unfinished)
    cost_prov = fleet_usd_h * window / SECONDS_PER_HOUR / n_done if n_done else None
    cost_busy = accel_meas * usd_chip_h / SECONDS_PER_HOUR / n_done if n_done else None
    running_int = snap.running.integral(w0, w1)
    busy_replica_s = snap.busy_chips.integral(w0, w1) / s.llm.tp
    keys = queries["key"].to_numpy()
    revenue = s.economics.revenue_per_query
    return {
        "scenario": s.name,
        "architecture": arch.name,
        "seed": s.run.seed,
        "model": s.llm.model,
        "hardware": s.llm.hardware,
        "step_model": s.llm.step_model,
        "batching": s.llm.batching,
        "accelerators": chips,
        "duration_s": w1,
        "warmup_s": w0,
        "simulated_s": snap.end,
        "queries": int(len(arrival)),
        "measured_queries": n_meas,
        "completed": n_done,
        "in_flight": int(np.isnan(done).sum()),
        "offered_qps": offered,
        "sustainable_qps": sustainable,
        "stable": bool(stable),
        "cache_hit_rate": hit_rate if n_meas else None,
        "cache_hit_bound": float(1 - len(np.unique(keys)) / len(keys))
        if len(keys) and arch.caches else None,
        "latency_mean_s": _mean(latency),
        "latency_p50_s": _percentile(latency, 50),
        "latency_p95_s": _percentile(latency, 95),
        "latency_p99_s": _percentile(latency, 99),
        "latency_percentiles_valid": bool(stable),
        "slo_s": s.limits.slo_s,
        "slo_attainment": float((latency <= s.limits.slo_s).sum() / n_meas) if n_meas else None,
        "degraded_fraction": float((outcome[measured] == "degraded").mean()) if n_meas else None,
        "partial_fraction": float((outcome[measured] == "partial").mean()) if n_meas else None,
        "llm_requests": int(measured[req_q].sum()),
        "llm_wait_mean_s": _mean(queries["llm_wait_s"].to_numpy()[measured]),
        "retrieval_wait_mean_s": _mean(queries["retrieval_wait_s"].to_numpy()[measured]),
        "mean_batch_size": running_int / busy_replica_s if busy_replica_s > 0 else None,
        "accelerator_utilization": utilization,
        "mfu_while_busy": mfu_busy,
        "mfu": utilization * mfu_busy if mfu_busy is not None else None,
        "accelerator_seconds": accel_meas,
        "usd_per_chip_hour": usd_chip_h,
        "fleet_usd_per_hour": fleet_usd_h,
        "cost_per_query_provisioned": cost_prov,
        "cost_per_query_busy": cost_busy,
        "revenue_per_query": revenue,
        "revenue_share": cost_prov / revenue if cost_prov is not None else None,
        "revenue_share_busy": cost_busy / revenue if cost_busy is not None else None,
        "tokens_in": int(queries["tokens_in"].to_numpy()[measured].sum()),
        "tokens_out": int(queries["tokens_out"].to_numpy()[measured].sum()),
        "retrieval_utilization": snap.retrieval_busy.integral(w0, w1) /
        (s.retrieval.servers * window),
        **_serving(requests, snap),
    }


def _serving(requests: pa.Table, snap) -> dict:
    """Serving figures from `with_request_latencies`' columns, and the replicas' memory."""
    served = ~requests["cancelled"].to_numpy()
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
        "cancelled_requests": int((~served).sum()),
        "llm_requests_submitted": snap.submitted,
        "llm_requests_unfinished": sum(r.outstanding for r in snap.replicas),
    }


def slo_column(queries: pa.Table, slo_s: float) -> pa.Table:
    met = pc.less_equal(queries["latency_s"], slo_s)
    return queries.append_column("slo_met", pc.fill_null(met, False))
