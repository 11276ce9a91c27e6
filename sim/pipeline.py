"""The two architectures as compositions of stages, and the query source.

One SimPy process per query (cache -> [retrieval] -> LLM fan-out -> selection); LLM requests
are not processes, they are events the replicas' scheduler loops complete.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.limits import wait_for_responses


class Query:
    __slots__ = ("qid", "arrival", "key", "query_tokens", "outputs", "passages", "hit",
                 "retrieval_wait", "retrieval_service", "llm_submitted", "done", "responses",
                 "outcome")

    def __init__(self, qid, arrival, key, query_tokens, outputs, passages):
        self.qid, self.arrival, self.key = qid, arrival, key
        self.query_tokens, self.outputs, self.passages = query_tokens, outputs, passages
        self.hit = False
        self.retrieval_wait = self.retrieval_service = math.nan
        self.llm_submitted = self.done = math.nan
        self.responses = 0
        self.outcome = "none"


@dataclass(frozen=True)
class ChatGPTEquivalent:
    """n samples of a response to the prompt alone; the best is kept when all n finish."""

    samples: int
    retrieves = False
    caches = True
    name = "chatgpt_equivalent"

    @property
    def fanout(self) -> int:
        return self.samples

    def prompts(self, q: Query) -> list[int]:
        return [q.query_tokens] * self.samples


@dataclass(frozen=True)
class TwoStage:
    """Retrieve top K, summarize each (query + passage as the prompt), keep the best."""

    k: int
    retrieves = True
    caches = True
    name = "two_stage"

    @property
    def fanout(self) -> int:
        return self.k

    def prompts(self, q: Query) -> list[int]:
        return [q.query_tokens + p for p in q.passages]


@dataclass(frozen=True)
class DirectLLM:
    """An LLM request trace replayed as recorded: each row is one request with its own
    prompt and output lengths, straight to the LLM pool (no cache, no retrieval)."""

    fanout = 1
    retrieves = False
    caches = False
    name = "llm_trace"

    def prompts(self, q: Query) -> list[int]:
        return [q.query_tokens]


def architecture(cfg, workload=None):
    if workload is not None and workload.arrival == "trace" and _llm_trace(workload.trace):
        return DirectLLM()
    if cfg.kind == "chatgpt_equivalent":
        return ChatGPTEquivalent(cfg.samples)
    return TwoStage(cfg.k)


def _llm_trace(trace) -> bool:
    from pathlib import Path

    from sim.traces.formats import resolve
    return resolve(Path(trace.path), trace.format, trace.mapping, trace.time_unit).kind == "llm"


def shard_of(keys: np.ndarray, shards: int) -> np.ndarray:
    """A query's shard from its key: a fixed 64-bit mix (splitmix64's finalizer), so the
    same query always lands on the same shard and its cache, in every run and process."""
    with np.errstate(over="ignore"):
        z = np.asarray(keys).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(shards)).astype(np.int64)


def _tokens(dist, rng, n: int) -> np.ndarray:
    return np.maximum(1, np.rint(dist.sample(rng, n))).astype(np.int64)


class Pipeline:
    """Holds the stages and runs queries through them; calls `on_query` when each ends."""

    def __init__(self, env, arch, cache, cfg, pool, retrieval, on_query, shard=(0, 1)):
        self.env, self.arch, self.cache, self.cfg = env, arch, cache, cfg
        self.pool, self.retrieval, self.on_query = pool, retrieval, on_query
        self.shard, self.shards = shard
        self.pending: dict[int, Query] = {}
        self.arrived = 0
        self.source_done = False

    def _columns(self, chunk: dict, keys, dists, rngs):
        """A chunk's keys and lengths: from the trace where it has them, else drawn in bulk
        (common random numbers across architectures)."""
        n, fan = len(chunk["time"]), self.arch.fanout
        key = chunk["key"] if "key" in chunk else keys.sample(n)
        qtok = chunk["prompt"] if "prompt" in chunk else _tokens(dists["query"],
                                                                 rngs["query_tokens"], n)
        if isinstance(self.arch, DirectLLM):
            out = chunk["output"].reshape(n, 1)
        else:
            out = _tokens(dists["response"], rngs["response_tokens"], n * fan).reshape(n, fan)
        psg = (_tokens(dists["passage"], rngs["passage_tokens"], n * fan).reshape(n, fan)
               if self.arch.retrieves else None)
        return key, qtok, out, psg

    def source(self, arrivals, keys, dists, rngs):
        env = self.env
        for chunk in arrivals:
            times = chunk["time"]
            key, qtok, out, psg = self._columns(chunk, keys, dists, rngs)
            mine = shard_of(key, self.shards) == self.shard if self.shards > 1 else None
            for i in range(len(times)):
                qid = self.arrived  # the arrival's index in the whole stream
                self.arrived += 1
                if mine is not None and not mine[i]:
                    continue
                yield env.timeout(times[i] - env.now)
                q = Query(qid, float(times[i]), int(key[i]), int(qtok[i]),
                          out[i].tolist(), None if psg is None else psg[i].tolist())
                self.pending[q.qid] = q
                env.process(self.serve(q))
        self.source_done = True

    def serve(self, q: Query):
        env = self.env
        if self.arch.caches and self.cache.lookup(q.key, env.now):
            q.hit = True
            yield env.timeout(self.cfg.cache.hit_latency_s)
            return self._end(q)
        if self.arch.retrieves:
            q.retrieval_wait, q.retrieval_service = yield from self.retrieval.serve()
        q.llm_submitted = env.now
        reqs = [self.pool.submit(q.qid, p, o)
                for p, o in zip(self.arch.prompts(q), q.outputs, strict=True)]
        q.outcome, done = yield from wait_for_responses(env, self.pool, reqs, q.arrival,
                                                        self.cfg.limits)
        q.responses = len(done)
        if q.outcome != "degraded" and self.arch.caches:
            self.cache.insert(q.key, env.now)
        self._end(q)

    def _end(self, q: Query) -> None:
        q.done = self.env.now
        del self.pending[q.qid]
        self.on_query(q)

    @property
    def drained(self) -> bool:
        return self.source_done and not self.pending and all(
            r.outstanding == 0 for r in self.pool.replicas)
