"""The summary's inputs reduced batch by batch from the two tables as they stream out of a
run: counts and sums, plus the few columns whose percentiles or median are reported (kept
whole, so those stay exact). A `Tally` of one shard reduces to a `Reduced`, and shards'
`Reduced` add up, so a run's summary never needs its tables in memory.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

import numpy as np
import pyarrow as pa

from sim.analysis.columns import numpy_column


def _sum(x: np.ndarray) -> float:
    return float(x.sum()) if len(x) else 0.0


def _finite(x: np.ndarray) -> np.ndarray:
    return x[~np.isnan(x)]


@dataclass
class Reduced:
    # queries: all rows, then those that arrived in the window
    queries: int = 0
    in_flight: int = 0
    n: int = 0
    n_done: int = 0
    hits: int = 0
    repeats: int = 0  # window queries whose key arrived before (a shard holds all of a key)
    llm_wait_sum: float = 0.0
    llm_wait_count: int = 0
    retrieval_wait_sum: float = 0.0
    retrieval_wait_count: int = 0
    slo_met: int = 0
    complete: int = 0
    degraded: int = 0
    partial: int = 0
    missed_unfinished: int = 0
    missed_deadline: int = 0
    late: int = 0  # complete but after the SLO
    tokens_in: int = 0
    tokens_out: int = 0
    # requests whose query arrived in the window
    requests: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    model_tokens: int = 0  # prompt (and recomputation) + generated tokens fed back in
    prefilled_tokens: int = 0  # prompt tokens computed, recomputation after preemption included
    cached_tokens: int = 0  # prompt tokens read from a prefix cache instead of prefilled
    cached_requests: int = 0  # requests that read any
    transfer_s: float = 0.0  # seconds KV spent between a disaggregated fleet's pools
    semantic_lookups: int = 0  # window queries whose exact key missed (the semantic cache's)
    semantic_hits: int = 0  # of those, answered from a near-duplicate's result
    semantic_false_hits: int = 0  # of those, from a query of another intent
    accelerator_s: float = 0.0
    cancelled: int = 0
    tpot_sum: float = 0.0
    tpot_count: int = 0
    lost: int = 0  # to replica failures
    retried: int = 0  # started over after a replica failure, at least once
    queries_hit: int = 0  # window queries with a request lost or retried
    failed: int = 0  # window queries answered with an error
    retrieval_failed: int = 0  # window queries whose every retrieval call timed out
    retrieval_timeouts: int = 0  # calls of window queries that timed out
    retrieval_cut_calls: int = 0  # calls of window queries a server failure cut
    # arrivals and cache hits per time-series interval (by arrival time), all queries
    arrivals_by_bin: Counter = field(default_factory=Counter)
    hits_by_bin: Counter = field(default_factory=Counter)
    # kept whole: percentiles and medians
    latency: list = field(default_factory=list)  # completed window queries
    # missed window queries that were answered (late, or cut by the deadline): the share of
    # each one's time spent waiting (retrieval queue and the LLM queue), and the totals
    miss_wait_share: list = field(default_factory=list)
    miss_wait_s: float = 0.0
    miss_latency_s: float = 0.0
    ttft: list = field(default_factory=list)  # served window requests

    def __add__(self, other: Reduced) -> Reduced:
        return Reduced(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                          for f in fields(self)})

    def column(self, name: str) -> np.ndarray:
        """A kept column, whole (its parts are joined once and dropped)."""
        parts = getattr(self, name)
        if len(parts) > 1:
            parts[:] = [np.concatenate(parts)]
        return parts[0] if parts else np.zeros(0)


def _counts(values: np.ndarray) -> dict[int, int]:
    keys, counts = np.unique(values, return_counts=True)
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


class Tally:
    """Feed it batches of final rows (`add`); `reduced()` gives the totals."""

    def __init__(self, count_repeats: bool = True, interval_s: float = 60.0):
        self.r = Reduced()
        self.interval_s = interval_s
        self.count_repeats = count_repeats  # the infinite-cache bound needs every key
        self._keys: list[np.ndarray] = []
        self._window: list[np.ndarray] = []

    def add(self, kind: str, batch: pa.RecordBatch | pa.Table) -> None:
        if kind == "queries":
            self._queries(batch)
        else:
            self._requests(batch)

    def _queries(self, b) -> None:
        r = self.r

        def col(name):
            return numpy_column(b, name)

        window, done = col("in_window"), ~np.isnan(col("done"))
        if self.count_repeats:
            self._keys.append(col("key"))
            self._window.append(window)
        r.queries += len(window)
        bins = (col("arrival") // self.interval_s).astype(np.int64)
        r.arrivals_by_bin.update(_counts(bins))
        r.hits_by_bin.update(_counts(bins[col("cache_hit")]))
        r.in_flight += int((~done).sum())
        r.n += int(window.sum())
        r.n_done += int((window & done).sum())
        r.hits += int((window & col("cache_hit")).sum())
        for name in ("llm_wait", "retrieval_wait"):
            x = _finite(col(f"{name}_s")[window])
            setattr(r, f"{name}_sum", getattr(r, f"{name}_sum") + _sum(x))
            setattr(r, f"{name}_count", getattr(r, f"{name}_count") + len(x))
        outcome, complete, met = col("deadline_outcome"), col("complete"), col("slo_met")
        r.slo_met += int((window & met).sum())
        r.complete += int((window & complete).sum())
        r.degraded += int((window & (outcome == "degraded")).sum())
        r.partial += int((window & (outcome == "partial")).sum())
        missed = window & ~met
        r.missed_unfinished += int((missed & ~done).sum())
        r.missed_deadline += int((missed & done & ~complete).sum())
        latency = col("latency_s")
        late = missed & complete
        r.late += int(late.sum())
        answered = missed & done
        if answered.any():
            wait = np.nan_to_num(col("queue_wait_s")[answered])
            wait += np.nan_to_num(col("retrieval_wait_s")[answered])
            took = latency[answered]
            r.miss_wait_share.append(np.where(took > 0, wait / np.maximum(took, 1e-12), 0.0))
            r.miss_wait_s += float(wait.sum())
            r.miss_latency_s += float(took.sum())
        r.latency.append(latency[window & done])
        r.queries_hit += int((window & (col("failed_requests") > 0)).sum())
        r.failed += int((window & (outcome == "failed")).sum())
        no_retrieval = col("retrieval_failed")
        calls = col("retrieval_calls")
        r.retrieval_failed += int((window & no_retrieval).sum())
        failed_calls = int(calls[window].sum() - (window & (calls > 0) & ~no_retrieval).sum())
        timeouts = int(col("retrieval_timeouts")[window].sum())
        r.retrieval_timeouts += timeouts
        r.retrieval_cut_calls += failed_calls - timeouts  # cut by a server failure
        semantic = col("semantic_hit")
        r.semantic_lookups += int((window & (~col("cache_hit") | semantic)).sum())
        r.semantic_hits += int((window & semantic).sum())
        r.semantic_false_hits += int((window & col("semantic_false_hit")).sum())
        r.tokens_in += int(col("tokens_in")[window].sum())
        r.tokens_out += int(col("tokens_out")[window].sum())

    def _requests(self, b) -> None:
        r = self.r

        def col(name):
            return numpy_column(b, name)

        window, cancelled = col("in_window"), col("cancelled")
        generated = col("generated_tokens")[window]
        r.requests += int(window.sum())
        r.prompt_tokens += int(col("prompt_tokens")[window].sum())
        r.output_tokens += int(col("output_tokens")[window].sum())
        prefilled = int(col("prefilled_tokens")[window].sum())
        r.prefilled_tokens += prefilled
        r.model_tokens += prefilled + int(np.maximum(generated - 1, 0).sum())
        r.accelerator_s += _sum(col("accelerator_s")[window])
        cached = col("cached_tokens")[window]
        r.cached_tokens += int(cached.sum())
        r.cached_requests += int((cached > 0).sum())
        r.transfer_s += _sum(col("transfer_s")[window])
        r.cancelled += int((window & cancelled).sum())
        r.lost += int((window & col("lost")).sum())
        r.retried += int((window & (col("retries") > 0)).sum())
        served = window & ~cancelled
        r.ttft.append(col("ttft_s")[served])
        tpot = _finite(col("tpot_s")[served])
        r.tpot_sum += _sum(tpot)
        r.tpot_count += len(tpot)

    def reduced(self) -> Reduced:
        """The totals; the repeat count from the keys in arrival order."""
        out = Reduced(**{f.name: getattr(self.r, f.name) for f in fields(Reduced)})
        if self._keys:
            keys = np.concatenate(self._keys)
            _, first = np.unique(keys, return_index=True)
            repeat = np.ones(len(keys), dtype=bool)
            repeat[first] = False
            out.repeats = int((repeat & np.concatenate(self._window)).sum())
        return out
