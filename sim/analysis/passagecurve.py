"""The memory a passage KV cache needs for a hit rate: the LRU curve of the passages a
scenario's queries retrieve, for every capacity at once.

The scenario's query keys (its Zipf law and one-off share) pass its LRU result cache (by
count, without TTLs); each miss retrieves its K passages from the corpus, and LRU stack
distances over passage ids give the hit rate at every capacity (a hit: the passage's prefix
is cached). A capacity of C passages holds C x the mean cached prefix (instruction and
passage, whole blocks) of KV: that is its memory. One cache sees every request here; with
`prefix_affinity` routing over R replicas each holds about a 1/R share of the passages.
"""

from __future__ import annotations

import numpy as np

from sim.model import catalog
from sim.scenario.schema import Scenario
from sim.serving.arrivals import QueryKeys
from sim.serving.cache import LRU
from sim.serving.passages import Corpus
from sim.serving.rng import streams
from sim.traces.stats import StackDistances

CHUNK = 8192


def _misses(s: Scenario, n: int) -> np.ndarray:
    """Keys of `n` queries that miss the result cache, in arrival order."""
    w = s.workload
    keys = QueryKeys(w.distinct_queries, w.zipf_alpha, w.one_off_share,
                     streams(s.run.seed)["query_ids"]).sample(n)
    if s.cache.policy != "lru":
        return keys
    cache, out = LRU(s.cache.capacity), []
    for k in keys.tolist():
        if not cache.lookup(k, 0.0):
            out.append(k)
            cache.insert(k, 0.0)
    return np.asarray(out, dtype=np.int64)


def curve(s: Scenario, queries: int = 100_000, points: int = 16) -> dict:
    """Hit rate and memory at capacities from one passage to every distinct one."""
    r = s.retrieval
    if r.corpus_passages is None or s.architecture.kind != "two_stage":
        raise ValueError("a two-stage scenario with retrieval.corpus_passages")
    corpus = Corpus(r.corpus_passages, r.passage_zipf_alpha, r.passage_tokens.build(),
                    s.run.seed)
    keys = _misses(s, queries)
    stack = StackDistances()
    k, block = s.architecture.k, s.llm.prefix_block_tokens
    instruction = s.workload.instruction_tokens
    cached_tokens = []
    for start in range(0, len(keys), CHUNK):
        ids = corpus.passages(keys[start:start + CHUNK], k)
        stack.add(ids.ravel().tolist())
        cached_tokens.append((instruction + corpus.lengths(ids.ravel())) // block * block)
    tokens = float(np.concatenate(cached_tokens).mean()) if cached_tokens else 0.0
    per_token = catalog.model(s.llm.model).kv_bytes_per_token(s.llm.kv_bytes)
    distinct = len(stack.last)
    caps = np.unique(np.round(np.logspace(0, np.log10(max(distinct, 1)), points)).astype(int))
    rates = stack.hit_rate(caps)
    return {"queries": queries, "llm_queries": int(len(keys)), "references": stack.pos,
            "distinct_passages": distinct, "cached_tokens_mean": tokens,
            "infinite_cache_hit_bound": 1 - distinct / max(stack.pos, 1),
            "curve": [{"passages": int(c), "gb": c * tokens * per_token / 1e9,
                       "hit_rate": float(h)} for c, h in zip(caps, rates, strict=True)]}
