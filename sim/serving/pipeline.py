"""The two architectures as compositions of stages, and the query source.

One SimPy process per query (cache -> [retrieval] -> LLM fan-out -> selection); LLM requests
are not processes, they are events the replicas' scheduler loops complete.
"""

from __future__ import annotations

import numpy as np
from simpy.events import Timeout

from sim.serving.arrivals import token_counts
from sim.serving.limits import no_deadline, wait_for_responses
from sim.serving.query import Query
from sim.serving.sharding import shard_of
from sim.serving.stages.request import Callback, Countdown

# The clock is read as `env._now`, SimPy's own attribute behind its `now` property: this
# module reads it millions of times a run, and the property call costs 3% of the run
# (simpy is pinned below 5 in pyproject.toml for this and `Process._resume`).


class Pipeline:
    """Holds the stages and runs queries through them; calls `on_query` when each ends."""

    def __init__(self, env, arch, cache, hit_latency_s: float, limits, pool, retrieval,
                 records, shard=(0, 1), direct: bool = False, corpus=None,
                 prefix_block: int | None = None, semantic=None, lookup_s: float = 0.0):
        """`records` is told of each query's arrival and end (a `Recorder`). `shard`: this
        pipeline's (index, count): it keeps the stream's queries that hash to it, or, `direct`,
        its stream holds only its own (query ids then interleave: index + count x arrival).
        `corpus`: the passages retrieval returns (None: anonymous draws); `prefix_block`:
        tokens per block of the replicas' prefix caches (None: no prefix caching).
        `semantic`: a semantic cache an exact miss consults, `lookup_s` after it arrives."""
        self.env, self.arch, self.cache = env, arch, cache
        self.hit_latency_s, self.limits = hit_latency_s, limits
        self.pool, self.retrieval, self.records = pool, retrieval, records
        self.shard, self.shards = shard
        self.direct = direct
        self.corpus, self.prefix_block = corpus, prefix_block
        self.semantic, self.lookup_s = semantic, lookup_s
        self.pending: dict[int, Query] = {}
        self.arrived = 0
        self.source_done = False

    def _columns(self, chunk: dict, keys, dists, rngs):
        """A chunk's keys and lengths: from the trace where it has them, else drawn in bulk
        (common random numbers across architectures)."""
        n, fan = len(chunk["time"]), self.arch.fanout
        key = chunk["key"] if "key" in chunk else keys.sample(n)
        qtok = chunk["prompt"] if "prompt" in chunk else token_counts(dists["query"],
                                                                 rngs["query_tokens"], n)
        if self.arch.recorded_outputs:
            out = chunk["output"].reshape(n, 1)
        else:
            out = token_counts(dists["response"], rngs["response_tokens"], n * fan).reshape(n, fan)
        ids = None
        if not self.arch.retrieves:
            psg = None
        elif self.corpus is not None:  # a fixed function of the key: no draw
            ids = self.corpus.passages(np.asarray(key), fan)
            psg = self.corpus.lengths(ids)
        else:
            psg = token_counts(dists["passage"], rngs["passage_tokens"], n * fan).reshape(n, fan)
        return key, qtok, out, psg, ids

    def source(self, arrivals, keys, dists, rngs):
        env = self.env
        # a query that needs no process: no retrieval to wait for, no deadline to watch
        plain = not self.arch.retrieves and not self.limits.watches
        stride, offset = (self.shards, self.shard) if self.direct else (1, 0)
        for chunk in arrivals:
            key, qtok, out, psg, ids = self._columns(chunk, keys, dists, rngs)
            chains = chunk.get("chain")
            mine = (shard_of(key, self.shards) == self.shard).tolist() \
                if self.shards > 1 and not self.direct else None
            # plain Python numbers from here on: numpy scalars would slow every event after
            times, key, qtok, out = (chunk["time"].tolist(), key.tolist(), qtok.tolist(),
                                     out.tolist())
            psg = None if psg is None else psg.tolist()
            ids = None if ids is None else ids.tolist()
            for i, t in enumerate(times):
                qid = self.arrived * stride + offset  # the arrival's index in the stream
                self.arrived += 1
                if mine is not None and not mine[i]:
                    continue
                yield Timeout(env, t - env._now)
                q = Query(qid, t, key[i], qtok[i], out[i], None if psg is None else psg[i],
                          None if ids is None else ids[i],
                          None if chains is None else chains[i])
                self.pending[qid] = q
                self.records.query_arrived(q)
                if self.arch.caches and self.cache.lookup(q.key, env._now):
                    self._hit(q)
                elif self.semantic is not None and self.arch.caches:
                    env.process(self._near_duplicate(q, plain))
                elif plain:
                    self._submit_direct(q)
                else:
                    env.process(self.serve(q))
        self.source_done = True

    def _near_duplicate(self, q: Query, plain: bool):
        """An exact miss asks the semantic cache (it takes `lookup_s`): answered from a
        near-duplicate's result, or on its way."""
        yield Timeout(self.env, self.lookup_s)
        served, false = self.semantic.near(q.key, self.env._now)
        if served:
            q.semantic = 2 if false else 1
            self._hit(q)
        elif plain:
            self._submit_direct(q)
        else:
            yield from self.serve(q)

    def _submit(self, q: Query, waiter: Countdown | Callback | None = None
                ) -> tuple[list, Countdown | Callback]:
        q.llm_submitted = self.env._now
        everything = waiter if waiter is not None else Countdown(self.env, self.arch.fanout)
        # the prompts' cacheable blocks, only where a replica has a prefix cache to read
        chains = self.arch.chains(q, self.prefix_block) if self.prefix_block else \
            [()] * self.arch.fanout
        q.reqs = [self.pool.submit(q.qid, p, o, everything, q.arrival, c)
                  for p, o, c in zip(self.arch.prompts(q), q.outputs, chains, strict=True)]
        return q.reqs, everything

    def _submit_direct(self, q: Query) -> None:
        """Straight to the LLM pool, answered the moment its last response is in."""
        self._submit(q, Callback(self.arch.fanout, lambda: self._answered(
            q, no_deadline(self.env, q.arrival, self.limits), q.reqs)))

    def _answered(self, q: Query, outcome: str, done: list) -> None:
        for r in done:
            if r.lost:  # a replica failure lost responses: not complete
                done = [r for r in done if not r.lost]
                outcome = "partial" if done else "degraded"
                break
        q.outcome, q.responses = outcome, len(done)
        if outcome != "degraded" and self.arch.caches:
            self.cache.insert(q.key, self.env._now)
        self._end(q)

    def serve(self, q: Query):
        env = self.env
        if self.arch.retrieves:
            q.retrieval_wait, q.retrieval_service, q.retrieval_calls, found, \
                q.retrieval_timeouts = \
                yield from self.retrieval.call()
            if not found:  # every call timed out: plain results, or an error
                q.outcome = "degraded" if self.retrieval.on_failure == "degrade" else "failed"
                return self._end(q)
        reqs, everything = self._submit(q)
        outcome, done = yield from wait_for_responses(env, self.pool, reqs, everything,
                                                      q.arrival, self.limits)
        self._answered(q, outcome, done)

    def _hit(self, q: Query) -> None:
        """A cache hit is answered after the hit latency: a timed callback, not a process."""
        q.hit = True
        Timeout(self.env, self.hit_latency_s).callbacks.append(lambda _: self._end(q))

    def _end(self, q: Query) -> None:
        q.done = self.env._now
        del self.pending[q.qid]
        self.records.query_ended(q)

    @property
    def drained(self) -> bool:
        return self.source_done and not self.pending and self.pool.idle
