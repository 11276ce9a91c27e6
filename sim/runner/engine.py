"""run(scenario) -> Results: build the SimPy environment, run it, collect the tables."""

from __future__ import annotations

import gc
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import simpy

from sim.analysis import summary as metrics
from sim.analysis.columns import query_columns, request_columns
from sim.analysis.tally import Reduced, Tally
from sim.errors import Problem, SearchsimError
from sim.io.tables import TableSink
from sim.model import catalog
from sim.model.distributions import Buffered, Uniform
from sim.runner import fleet
from sim.scenario.schema import Scenario
from sim.serving import arrivals as workload
from sim.serving import cache as cache_mod
from sim.serving.architectures import architecture
from sim.serving.monitor import Marks
from sim.serving.passages import Corpus
from sim.serving.pipeline import Pipeline
from sim.serving.records import Recorder
from sim.serving.rng import streams
from sim.serving.semantic import Clusters, SemanticCache
from sim.serving.snapshot import Snapshot
from sim.serving.stages.pool import LLMPool
from sim.serving.stages.retrieval import RetrievalPool

TICKS = 200  # progress granularity and drain-check resolution


@dataclass
class Results:
    scenario: Scenario
    summary: dict
    queries: pa.Table | None  # None when streamed to files (`tables="file"`) or discarded
    requests: pa.Table | None
    timeseries: pa.Table
    snapshot: Snapshot | None = None  # the pools' levels and counters the summary read


def architecture_of(s: Scenario):
    """The architecture that runs (an LLM request trace replaces the scenario's)."""
    trace = s.workload.replayed
    return architecture(s.architecture, None if trace is None else trace.kind,
                        s.workload.instruction_tokens)


def _run_clock(env: simpy.Environment, pipe: Pipeline, s: Scenario,
               progress: Callable[[float], None] | None) -> None:
    """Arrivals until `duration`, then drain until everything is done or `drain_s` runs out."""
    end = s.run.duration_s + s.run.drain_s
    for i in range(1, TICKS + 1):
        target = end * i / TICKS
        if target > s.run.duration_s and pipe.drained:
            break
        env.run(until=target)
        if progress is not None:
            progress(min(1.0, env.now / end))


@contextmanager
def _young_collections_rarer():
    """A simulation allocates millions of short-lived objects (events, requests) that die
    young without cycles; Python's default collector would scan them every 700 allocations.
    Collecting the youngest generation every 100,000 instead saves ~5% of the run time."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@dataclass
class Shard:
    """What one simulation (a whole scenario, or one shard of it) leaves behind: its tables
    reduced for the summary, its pools' levels, and the tables themselves where they were
    kept in memory (None when streamed to files or discarded)."""

    reduced: Reduced
    snapshot: Snapshot
    window_end: float  # the measured window's end (a replayed trace may end it early)
    queries: pa.Table | None = None
    requests: pa.Table | None = None


def simulate(s: Scenario, shard: int = 0, shards: int = 1,
             progress: Callable[[float], None] | None = None, tables: str = "memory",
             stream_to: Path | None = None, direct: bool = False) -> Shard:
    """Run one SimPy environment: the scenario's whole stream, or the queries whose key
    hashes to `shard` of `shards` (with that shard's share of the fleet). `tables`: keep the
    record tables in "memory", write them to Parquet files in `stream_to` as the run goes
    ("file"), or "discard" them (only the summary's reduction is kept). `direct`: the shard
    draws only its own queries (at 1/shards of the rate, keys from its part of the key
    space) instead of the whole stream, filtered: statistically the same, and the only way at
    internet scale (sampled shards)."""
    env = simpy.Environment()
    direct = direct and shards > 1 and s.workload.arrival != "trace"
    rngs = streams(s.run.seed, shard if shards > 1 else None, own_arrivals=direct)
    model, arch = catalog.model(s.llm.model), architecture_of(s)
    measured = measured_scenario(s)
    rec, tally, sinks = _recording(measured, arch, tables, stream_to)
    marks = level_marks(measured)
    groups = fleet.replica_groups(s, model)
    pool = LLMPool(env, s.llm, groups[0].step, rec, marks=marks, groups=groups,
                   kv_transfer=fleet.kv_transfer(s, model))
    if s.faults is not None and s.faults.active:
        pool.start_failures(s.faults, rngs["faults"], rngs["fault_domains"])
    cache = cache_mod.build(s.cache, rngs["cache"])
    flushes = cache_mod.flush_times(s.cache, s.run.duration_s + s.run.drain_s)
    if flushes and s.cache.policy == "lru":
        env.process(cache_mod.flushes(env, cache, flushes, s.cache.flush_fraction,
                                      rngs["cache_flush"]))
    retrieval = _retrieval(env, s, arch.retrieves, marks, rngs)
    pipe = Pipeline(env, arch, cache,
                    s.cache.hit_latency_s, s.limits, pool, retrieval, rec,
                    shard=(shard, shards), direct=direct, corpus=_corpus(s),
                    prefix_block=s.llm.prefix_block_tokens if s.llm.prefix_cache else None,
                    semantic=_semantic(s, cache, rngs),
                    lookup_s=s.cache.semantic.lookup_s if s.cache.semantic is not None
                    and s.cache.semantic_on else 0.0)
    keys = workload.QueryKeys(s.workload.distinct_queries, s.workload.zipf_alpha,
                              s.workload.one_off_share, rngs["query_ids"],
                              (shard, shards) if direct else None)
    dists = {"query": s.workload.query_tokens.build(),
             "response": s.workload.response_tokens.build(),
             "passage": s.retrieval.passage_tokens.build()}
    load = s.workload.model_copy(update={"rate_qps": s.workload.rate_qps / shards}) \
        if direct else s.workload
    arrivals = workload.arrivals(load, rngs, s.run.duration_s)
    env.process(pipe.source(arrivals, keys, dists, rngs))
    with _young_collections_rarer():
        _run_clock(env, pipe, s, progress)
    pool.settle()
    rec.close()
    return Shard(tally.reduced(), pool.snapshot(retrieval, env.now), measured.run.duration_s,
                 sinks["queries"].close(), sinks["requests"].close())


def _semantic(s: Scenario, cache, rngs: dict) -> SemanticCache | None:
    """The semantic cache in front of the result cache, when it can serve anything."""
    if not s.cache.semantic_on:
        return None
    cfg = s.cache.semantic
    assert cfg is not None
    clusters = Clusters(s.workload.distinct_queries, cfg.cluster_size.build(),
                        np.random.default_rng([s.run.seed, 11]))  # the same in every shard
    return SemanticCache(cache, clusters, cfg, rngs["semantic"])


def _corpus(s: Scenario) -> Corpus | None:
    """The passages retrieval draws from, when the scenario has a corpus: the same in every
    shard and run of a seed (a passage is a fixed object)."""
    r = s.retrieval
    if r.corpus_passages is None:
        return None
    return Corpus(r.corpus_passages, r.passage_zipf_alpha, r.passage_tokens.build(),
                  s.run.seed)


def _retrieval(env: simpy.Environment, s: Scenario, used: bool, marks: Marks, rngs: dict
               ) -> RetrievalPool:
    """The retrieval pool, its servers failing if the scenario's `[faults]` say so and the
    architecture `used` it (an unused pool neither fails nor counts as down)."""
    faults = s.faults if s.faults is not None and s.faults.retrieval_fails and used else None
    pool = RetrievalPool(env, s.retrieval.servers,
                         Buffered(s.retrieval.service_s.build(), rngs["retrieval_service"]),
                         marks, s.retrieval.timeout_s, s.retrieval.retries,
                         s.retrieval.on_failure, failing=faults is not None)
    if faults is not None:
        up, down, pick = rngs["retrieval_faults"].spawn(3)  # one stream per consumer
        pool.start_failures(Buffered(faults.retrieval_up_time(), up),
                            Buffered(faults.retrieval_down_time(), down),
                            Buffered(Uniform(0.0, 1.0), pick))
    return pool


def _recording(s: Scenario, arch, tables: str, stream_to: Path | None):
    """The recorder, and what its batches feed: the derived columns, the summary's tally,
    and the table sinks. `s` carries the measured window."""
    tally = Tally(count_repeats=arch.caches and s.cache.policy == "lru",
                  interval_s=s.run.interval_s)
    sinks = {kind: TableSink(tables, None if stream_to is None else
                             stream_to / f"{kind}.parquet") for kind in ("queries", "requests")}

    def emit(kind: str, batch: pa.RecordBatch) -> None:
        batch = request_columns(batch) if kind == "requests" else \
            query_columns(batch, s.limits.slo_s, s.usd_per_chip_hour)
        tally.add(kind, batch)
        sinks[kind].write(batch)

    return Recorder(emit, (s.run.warmup_s, s.run.duration_s)), tally, sinks


def measured_scenario(s: Scenario) -> Scenario:
    """The scenario with the window its figures measure: a replayed trace that ends early
    ends the window (`window_within_trace`); its arrival times are read ahead for that."""
    trace = s.workload.replayed
    if trace is None or trace.loop:
        return s
    chunks = workload.arrivals(s.workload, streams(s.run.seed), s.run.duration_s)
    return window_within_trace(s, np.concatenate([c["time"] for c in chunks] or [np.zeros(0)]))


def level_marks(s: Scenario) -> Marks:
    """Where the pools' levels keep their integrals: the time-series grid and the window's
    ends and quarters (the stability check). `s` carries the measured window."""
    w0, w1 = s.run.warmup_s, s.run.duration_s
    quarter = (w1 - w0) / 4
    return Marks(s.run.interval_s, (w0, w0 + quarter, w1 - quarter, w1))


def window_within_trace(s: Scenario, arrival) -> Scenario:
    """A replayed trace (not looped) that ends before `duration_s` shortens the measurement
    window to its last arrival (plus one mean gap), so throughput, cost and utilization are
    never diluted by an empty tail; the scenario as resolved records the shorter window."""
    trace = s.workload.replayed
    if trace is None or trace.loop or len(arrival) < 2:
        return s
    last = float(arrival.max())
    gap = (last - float(arrival.min())) / (len(arrival) - 1)
    if s.run.duration_s - last <= max(10 * gap, 0.01 * s.run.duration_s):
        return s
    if last + gap <= s.run.warmup_s:
        raise SearchsimError(Problem(
            "workload.trace", trace.path, f"a trace that lasts past run.warmup_s "
            f"({s.run.warmup_s:g} s); its last arrival is at {last:.1f} s of simulated time "
            "(set trace.loop = true or a shorter warm-up)"))
    return s.model_copy(update={"run": s.run.model_copy(update={"duration_s": last + gap})})


def finish(s: Scenario, part: Shard) -> Results:
    """Summary and time series from a finished simulation (or from merged shards), over the
    window the simulation measured (no trace read again)."""
    if part.window_end != s.run.duration_s:
        s = s.model_copy(update={"run": s.run.model_copy(update={"duration_s": part.window_end})})
    model, hardware = catalog.model(s.llm.model), catalog.accelerator(s.llm.hardware)
    arch = architecture_of(s)
    snap = part.snapshot
    summary = metrics.summarize(s, arch, model, hardware, part.reduced, snap)
    levels: dict[str, tuple] = {"llm": (snap.busy_chips, snap.waiting, snap.running,
                                        snap.power_w)}
    if arch.retrieves:
        levels["retrieval"] = (snap.retrieval_busy, snap.retrieval_queue, snap.retrieval_busy,
                               None)
    capacity = {"llm": s.llm.chips, "retrieval": s.retrieval.servers}
    ts = metrics.timeseries(levels, capacity, snap.end, s.run.interval_s)
    ts = metrics.cache_rows(ts, part.reduced, s.run.interval_s,
                            arch.caches and s.cache.policy != "none")
    return Results(s, summary, part.queries, part.requests, ts, snap)
