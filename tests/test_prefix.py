"""Passages and prefix caching (issue 22): exact against hand computation and an independent
block-LRU replay; passages are fixed functions of the query key; off by default."""

import json

import numpy as np
import pytest

from sim.model import catalog
from sim.model.decoderun import DecodeRun
from sim.model.perf import pairs_of_chunk
from sim.runner import fleet
from sim.runner.api import run
from sim.scenario import loading
from sim.serving.passages import Corpus, prefix_chain
from sim.serving.prefixcache import PrefixCache

BLOCK = 16


def scenario(**over):
    """Two-stage, one summary per query, one replica, sparse arrivals: an idle system in
    which each request runs alone."""
    raw = {
        "run": {"duration_s": 600.0, "warmup_s": 0.0, "drain_s": 60.0, "seed": 3},
        "workload": {"rate_qps": 0.05, "distinct_queries": 1000, "instruction_tokens": 40,
                     "query_tokens": {"dist": "fixed", "value": 30},
                     "response_tokens": {"dist": "fixed", "value": 20}},
        "cache": {"policy": "none"},
        "retrieval": {"servers": 2, "passage_tokens": {"dist": "fixed", "value": 200},
                      "corpus_passages": 1},
        "architecture": {"kind": "two_stage", "k": 1},
        "llm": {"model": "llama3_8b", "hardware": "h100", "tp": 1, "replicas": 1,
                "engine": "vllm-v1", "step_model": "roofline",
                "prefix_cache": {"memory_fraction": 0.25, "block_tokens": BLOCK}},
        "economics": {"price": "on-demand"},
    }
    for path, value in over.items():
        section, key = path.split("__")
        raw[section][key] = value
    return loading.from_dict(raw)


def idle(r):
    """Each request started when submitted and finished before the next was submitted."""
    r = r.sort_values("request_id")
    assert (r.started == r.submitted).all()
    assert (r.finished.to_numpy()[:-1] <= r.submitted.to_numpy()[1:]).all()
    return r


def test_a_hit_removes_exactly_the_cached_tokens_from_the_prefill():
    """One passage for every query: the first request prefills its 270-token prompt; every
    later one reads the 15 whole blocks of instruction + passage (240 tokens) and prefills
    the 30 left, attending over the 240: its first token comes after exactly that
    iteration."""
    s = scenario()
    res = run(s)
    r = idle(res.requests.to_pandas())
    assert len(r) > 10 and (r.prompt_tokens == 270).all()
    assert r.cached_tokens.iloc[0] == 0 and r.prefilled_tokens.iloc[0] == 270
    later = r.iloc[1:]
    assert (later.cached_tokens == 240).all() and (later.prefilled_tokens == 30).all()
    step = fleet.replica_groups(s, catalog.model(s.llm.model))[0].step
    one = float(step.iteration_time(30, pairs_of_chunk(30, 240), 0, 0))
    assert (later.first_token - later.started).to_numpy() == pytest.approx(one, rel=1e-12)
    full = float(step.iteration_time(270, pairs_of_chunk(270, 0), 0, 0))
    assert r.first_token.iloc[0] - r.started.iloc[0] == pytest.approx(full, rel=1e-12)
    # the 19 decode steps attend over the whole context, the cached 240 tokens included
    decode = DecodeRun(step, 1, 271, 19).total
    assert (later.finished - later.first_token).to_numpy() == pytest.approx(decode, rel=1e-9)
    x = res.summary
    assert x["prefix_hit_tokens"] == 240 * (len(r) - 1)
    assert x["prefix_hit_rate_tokens"] == pytest.approx(240 * (len(r) - 1) / (270 * len(r)))
    assert x["prefix_hit_rate_requests"] == pytest.approx((len(r) - 1) / len(r))


def test_at_least_the_last_prompt_token_is_computed():
    """A prompt that is all whole cached blocks still prefills its last block's worth: the
    cache is read up to (prompt - 1) // block blocks."""
    s = scenario(workload__instruction_tokens=0, workload__query_tokens={
        "dist": "fixed", "value": 8}, retrieval__passage_tokens={"dist": "fixed", "value": 24})
    r = idle(run(s).requests.to_pandas())
    # prompt 32 = two blocks; the prefix [passage] of 24 tokens is one whole block
    assert (r.prompt_tokens == 32).all() and (r.cached_tokens.iloc[1:] == 16).all()
    s = scenario(workload__instruction_tokens=0, workload__query_tokens={
        "dist": "fixed", "value": 1}, retrieval__passage_tokens={"dist": "fixed", "value": 32})
    r = idle(run(s).requests.to_pandas())
    assert (r.prompt_tokens == 33).all() and (r.cached_tokens.iloc[1:] == 32).all()
    s = scenario(workload__instruction_tokens=0, workload__query_tokens={
        "dist": "fixed", "value": 1}, retrieval__passage_tokens={"dist": "fixed", "value": 31})
    r = idle(run(s).requests.to_pandas())  # a 31-token passage: one whole block, not two
    assert (r.cached_tokens.iloc[1:] == 16).all() and (r.prefilled_tokens.iloc[1:] == 16).all()


def independent_lru(chains, prompts, capacity):
    """A plain list-based block LRU, read-then-insert per request in order; a chain's blocks
    made recent from its tail to its head (the head most recent)."""
    lru, out = [], []

    def touch(blocks):
        for b in reversed(blocks):
            lru.remove(b)
            lru.append(b)

    for chain, prompt in zip(chains, prompts, strict=True):
        most = (prompt - 1) // BLOCK
        m = 0
        while m < min(len(chain), most) and chain[m] in lru:
            m += 1
        out.append(m * BLOCK)
        touch(list(chain[:m]))
        for b in chain:
            if b not in lru:
                if len(lru) >= capacity:
                    lru.pop(0)
                lru.append(b)
        touch(list(chain))
    return out


def test_passage_reuse_equals_an_independent_block_lru_replay():
    """Zipf-popular passages of varied lengths under a small cache that evicts: the tokens
    each request read equal an independent LRU's replay of the same block chains."""
    passages = {"dist": "lognormal", "mean": 200, "cv": 0.4}
    s = scenario(retrieval__corpus_passages=60, retrieval__passage_tokens=passages,
                 llm__kv_memory_fraction=0.01, workload__rate_qps=0.1,
                 run__duration_s=1500.0)
    res = run(s)
    r = idle(res.requests.to_pandas())
    q = res.queries.to_pandas().set_index("query_id")
    corpus = Corpus(60, s.retrieval.passage_zipf_alpha, s.retrieval.passage_tokens.build(),
                    s.run.seed)
    keys = q.loc[r.query_id, "key"].to_numpy()
    ids = corpus.passages(keys, 1)[:, 0]
    lengths = corpus.lengths(ids)
    assert (r.prompt_tokens.to_numpy() == 40 + lengths + 30).all()
    chains = [prefix_chain(int(p), 40, int(n), BLOCK) for p, n in zip(ids, lengths,
                                                                       strict=True)]
    total = fleet.replica_groups(s, catalog.model(s.llm.model))[0].kv_capacity_tokens
    capacity = int(total * 0.25) // BLOCK
    assert max(map(len, chains)) < capacity < len({b for c in chains for b in c})  # evicts
    expected = independent_lru(chains, r.prompt_tokens.tolist(), capacity)
    assert r.cached_tokens.tolist() == expected
    assert 0 < sum(expected) < sum(len(c) * BLOCK for c in chains)


def test_mooncake_hash_ids_replay_equals_an_independent_lru(tmp_path):
    """A trace in the Mooncake format: its hash_ids (512-token blocks) drive the cache, and
    the tokens each request read equal an independent LRU's replay of them."""
    global BLOCK
    rng = np.random.default_rng(5)
    rows, chains, prompts = [], [], []
    for i in range(60):
        shared = int(rng.integers(0, 4))  # a popular prefix of 0-3 blocks
        chain = list(range(100 * shared, 100 * shared + shared)) + \
            [10_000 + i * 10 + j for j in range(int(rng.integers(0, 3)))]
        # some prompts end exactly at a block's end: their last block is computed anyway
        prompt = 512 * len(chain) + (int(rng.integers(1, 400)) if i % 4 or not chain else 0)
        rows.append({"timestamp": i * 20_000, "input_length": prompt, "output_length": 8,
                     "hash_ids": chain})
        chains.append(tuple(chain))
        prompts.append(prompt)
    path = tmp_path / "mooncake_trace.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in rows) + "\n")
    s = loading.from_dict({
        "run": {"duration_s": 1300.0, "warmup_s": 0.0, "drain_s": 60.0},
        "workload": {"arrival": "trace", "trace": {"path": str(path), "format": "mooncake"}},
        "llm": {"model": "llama3_8b", "hardware": "h100", "tp": 1, "replicas": 1,
                "engine": "vllm-v1", "step_model": "roofline", "kv_memory_fraction": 0.06,
                "prefix_cache": {"memory_fraction": 0.25, "block_tokens": 512}},
        "economics": {"price": "on-demand"}})
    r = idle(run(s).requests.to_pandas())
    total = fleet.replica_groups(s, catalog.model(s.llm.model))[0].kv_capacity_tokens
    capacity = int(total * 0.25) // 512
    assert 5 <= capacity < len({b for c in chains for b in c})
    BLOCK, saved = 512, BLOCK
    try:
        expected = independent_lru(chains, prompts, capacity)
    finally:
        BLOCK = saved
    assert r.cached_tokens.tolist() == expected and sum(expected) > 0


def test_a_trace_of_other_blocks_is_refused(tmp_path):
    from sim.errors import SearchsimError
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"timestamp": 0, "input_length": 10, "output_length": 2,
                                "hash_ids": [1]}) + "\n")
    with pytest.raises(SearchsimError, match="block_tokens: got 16, expected 512"):
        loading.from_dict({
            "workload": {"arrival": "trace", "trace": {"path": str(path),
                                                       "format": "mooncake"}},
            "llm": {"model": "llama3_8b", "hardware": "h100", "tp": 1, "engine": "vllm-v1",
                    "prefix_cache": {}}})


def test_passages_are_a_fixed_function_of_the_key():
    c = Corpus(1000, 0.9, loading.from_dict({}).retrieval.passage_tokens.build(), 1)
    keys = np.array([5, 7, 5, -3, 7], dtype=np.int64)
    ids = c.passages(keys, 10)
    assert (ids[0] == ids[2]).all() and (ids[1] == ids[4]).all()
    assert all(len(set(row)) == 10 for row in ids.tolist())  # distinct within a query
    assert (c.lengths(ids[0]) == c.lengths(ids[2])).all()
    # popular passages come back across queries: the most common is far above 1/1000
    many = c.passages(np.arange(2000, dtype=np.int64), 10).ravel()
    assert np.bincount(many).max() / len(many) > 0.02


def test_the_block_cache_evicts_the_least_recent_unpinned_block():
    cache = PrefixCache(3, 16)
    assert cache.insert((1, 2, 3)) == 3
    assert list(cache._blocks) == [3, 2, 1]  # the head most recent: the tail goes first
    assert cache.insert((4,)) == 1 and 3 not in cache and cache.match((1, 2, 3)) == 2
    cache.acquire((1, 2), 2)  # pinned
    assert cache.insert((5,)) == 1 and 4 not in cache  # the one unpinned block went
    cache.acquire((5,), 1)
    assert cache.insert((6,)) == 0  # everything pinned: nothing evicted, nothing added
    cache.release((1, 2), 2)
    assert cache.insert((6,)) == 1 and 2 not in cache and 1 in cache  # 2 was least recent
    assert cache.match((1, 9)) == 1 and cache.match((9, 1)) == 0


def test_affinity_routes_to_the_longest_cached_prefix_within_the_slack():
    from types import SimpleNamespace

    from sim.serving.stages.router import PrefixAffinity

    def replica(outstanding, blocks):
        cache = PrefixCache(10, BLOCK)
        cache.insert(blocks)
        return SimpleNamespace(outstanding=outstanding, speed=1.0, prefix=cache)

    req = SimpleNamespace(chain=(1, 2, 3))
    reps = [replica(0, ()), replica(2, (1,)), replica(3, (1, 2)), replica(9, (1, 2, 3))]
    assert PrefixAffinity(4).pick(reps, req) == 2  # 3 blocks is 9 above the least loaded
    assert PrefixAffinity(9).pick(reps, req) == 3
    assert PrefixAffinity(0).pick(reps, req) == 0  # no slack: the least loaded
    assert PrefixAffinity(4).pick(reps, SimpleNamespace(chain=(7,))) == 0  # nothing cached


def test_prefix_caching_is_off_by_default_and_refused_where_it_cannot_run():
    from sim.errors import SearchsimError
    s = loading.from_dict({})
    assert s.llm.prefix_cache is None and s.retrieval.corpus_passages is None
    with pytest.raises(SearchsimError, match="llm.prefix_cache.*continuous batching"):
        loading.from_dict({"llm": {"engine": "fastertransformer", "prefix_cache": {}}})
    with pytest.raises(SearchsimError, match="llm.router: got 'prefix_affinity'"):
        loading.from_dict({"llm": {"router": "prefix_affinity"}})
    with pytest.raises(SearchsimError, match="corpus_passages: got 3"):
        loading.from_dict({"retrieval": {"corpus_passages": 3}, "architecture": {"k": 5}})


def test_the_passage_curve_is_an_lru_over_the_retrieved_passages():
    """At every capacity the curve's hit rate equals an LRU of that many passages replaying
    the passages of the queries that miss the result cache; memory is capacity x the mean
    cached prefix x KV bytes per token."""
    from collections import OrderedDict

    from sim.analysis import passagecurve
    s = loading.load("scenarios/two_stage_2026_passages.toml",
                     ["retrieval.corpus_passages=5000", "workload.distinct_queries=3000",
                      "cache.capacity=200"])
    c = passagecurve.curve(s, queries=3000, points=8)
    keys = passagecurve._misses(s, 3000)
    corpus = Corpus(5000, 0.9, s.retrieval.passage_tokens.build(), s.run.seed)
    refs = corpus.passages(keys, 10).ravel().tolist()
    assert c["references"] == len(refs) and c["llm_queries"] == len(keys) < 3000
    for point in c["curve"]:
        lru, hits = OrderedDict(), 0
        for p in refs:
            if p in lru:
                hits += 1
                lru.move_to_end(p)
            else:
                lru[p] = True
                if len(lru) > point["passages"]:
                    lru.popitem(last=False)
        assert point["hit_rate"] == pytest.approx(hits / len(refs))
    per_token = catalog.model(s.llm.model).kv_bytes_per_token(s.llm.kv_bytes)
    first = c["curve"][0]
    assert first["gb"] == pytest.approx(first["passages"] * c["cached_tokens_mean"]
                                        * per_token / 1e9)
    rates = [p["hit_rate"] for p in c["curve"]]
    assert rates == sorted(rates) and rates[-1] == pytest.approx(c["infinite_cache_hit_bound"])


def test_capacity_at_full_batches_counts_the_measured_reuse():
    """The capacity estimate (and so sizing's bracket) prices a request's prefill without
    the tokens it read from the cache, as measured in the window."""
    from sim.scenario import capacity
    over = ["run.duration_s=90", "run.warmup_s=10", "llm.replicas=4", "workload.rate_qps=2"]
    plain = run(loading.load("scenarios/two_stage_2026_passages.toml", over))
    cached = run(loading.load("scenarios/two_stage_2026_passages.toml",
                              [*over, "llm.prefix_cache={memory_fraction=0.3}"]))
    x, t = cached.summary, cached
    assert x["prefix_hit_rate_tokens"] > 0.1
    assert x["sustainable_qps"] > plain.summary["sustainable_qps"] * 1.05
    r = t.requests.to_pandas()
    window = r[r.in_window]
    prompt, output = window.prompt_tokens.mean(), window.output_tokens.mean()
    reused = window.cached_tokens.mean()
    per_query = 10 * (1 - x["cache_hit_rate"])
    expected = capacity.requests_per_s(cached.scenario, prompt, output, reused) / per_query
    assert x["sustainable_qps"] == pytest.approx(expected, rel=1e-9)


def test_a_chain_longer_than_the_room_is_kept_up_to_its_first_block_without_room():
    cache = PrefixCache(4, 16)
    cache.insert((1, 2))
    cache.acquire((1, 2), 2)  # pinned: only 2 blocks of room left
    assert cache.insert((7, 8, 9)) == 2 and cache.match((7, 8, 9)) == 2 and 9 not in cache
    cache.release((1, 2), 2)
    assert cache.insert((7, 8, 9, 10)) == 2  # 1 and 2 evicted, never 7 or 8
    assert cache.match((7, 8, 9, 10)) == 4 and 1 not in cache


def test_a_host_tier_keeps_what_hbm_evicts_and_reads_it_back_for_room():
    cache = PrefixCache(2, 16, host_blocks=4)
    cache.insert((1, 2))
    cache.insert((3, 4))  # 1 and 2 move to host memory
    assert 1 not in cache and cache.match((1, 2)) == 2  # room: 3 and 4 can go to host
    assert cache.acquire((1, 2), 2) == 2 and cache.match((1, 2)) == 2 and 3 not in cache
    assert cache.match((3, 4)) == 0  # 1 and 2 pinned: no room to read 3 and 4 back
    cache.release((1, 2), 2)
    assert cache.match((3, 4)) == 2
    cache.clear()
    assert cache.match((1, 2)) == 0 and cache.match((3, 4)) == 0


def test_reading_from_host_memory_costs_the_copy_exactly():
    """Two passages of 20 blocks each and room in HBM for C < 40 blocks: the tail of the one
    read less recently waits in host memory (40 - C blocks). On an idle system a request
    whose passage is all in HBM prefills its 30 query tokens; one whose passage's tail is
    in host memory first copies those 40 - C blocks back over the host link (block x KV
    bytes per token / 25 GB/s), then prefills the same 30."""
    s = scenario(retrieval__corpus_passages=2, workload__instruction_tokens=0,
                 retrieval__passage_tokens={"dist": "fixed", "value": 320},
                 llm__kv_memory_fraction=0.01, workload__rate_qps=0.1,
                 llm__prefix_cache={"memory_fraction": 0.1, "block_tokens": BLOCK,
                                    "host_tokens": 1000})
    r = idle(run(s).requests.to_pandas())
    model = catalog.model(s.llm.model)
    groups = fleet.replica_groups(s, model)
    room = int(groups[0].kv_capacity_tokens * 0.1) // BLOCK
    assert 20 <= room < 40  # one chain and part of the other
    step = groups[0].step
    hit = float(step.iteration_time(30, pairs_of_chunk(30, 320), 0, 0))
    copy = (40 - room) * BLOCK * model.kv_bytes_per_token(s.llm.kv_bytes) / 25e9
    later = r[r.cached_tokens > 0]
    assert (later.cached_tokens == 320).all() and len(later) == len(r) - 2  # two cold misses
    ttft = (later.first_token - later.started).to_numpy()
    from_host = np.isclose(ttft, hit + copy, rtol=1e-9)
    assert (from_host | np.isclose(ttft, hit, rtol=1e-9)).all()
    assert 0 < from_host.sum() < len(later)  # both kinds of read happened
