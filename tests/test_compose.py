"""Features compose: scenarios drawn from the product of router x engine (schedulers,
blocks, swapping) x memory x faults (replicas, domains, retrieval) x deadline policy x
cache x mixed groups x shards / sampled shards x architecture x passages and prefix caching
(with affinity routing) x the semantic cache x prefill/decode disaggregation, each checked
for conservation and accounting (issues 20, 22), with the scheduler's invariants checked
before every iteration."""

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.io.rundir import summary_json
from sim.model import catalog, pricing
from sim.runner.api import run
from sim.scenario import loading
from sim.serving.stages.continuous import ContinuousReplica

ENGINES = ["vllm-v1", "vllm-v0", "sglang", "trtllm", "splitwise", "fastertransformer"]

features = st.fixed_dictionaries({
    "router": st.sampled_from(["least_outstanding", "round_robin"]),
    "engine": st.sampled_from(ENGINES),
    "swap": st.booleans(),
    "tight_memory": st.booleans(),
    "faults": st.sampled_from(["none", "replicas", "domains", "retrieval"]),
    "policy": st.sampled_from(["none", "partial", "degrade"]),
    "cache": st.sampled_from(["none", "lru", "semantic"]),
    "groups": st.booleans(),
    "shards": st.sampled_from(["one", "two", "sampled"]),
    "arch": st.sampled_from(["two_stage", "chatgpt_equivalent"]),
    "heavy": st.booleans(),
    "prefix": st.sampled_from(["none", "cache", "affinity"]),
    "corpus": st.booleans(),
    "disaggregated": st.booleans(),
    "price_date": st.sampled_from([None, "2025-06"]),
    "moe": st.booleans(),  # a mixture of experts on DEP 2 (attention DP, experts over EP)
    "seed": st.integers(0, 10_000),
})


def scenario_of(f: dict):
    llm = {"model": "llama3_8b", "hardware": "h100", "tp": 1, "replicas": 4,
           "router": f["router"], "engine": f["engine"], "step_model": "roofline"}
    if f["engine"] == "vllm-v0" and f["swap"]:
        llm["engine_options"] = {"preemption": "swap"}
    if f["tight_memory"] and f["engine"] != "fastertransformer":
        llm["kv_memory_fraction"] = 0.002  # ~1,000 tokens: preemptions under load
    dep = {"dp": 2, "ep": 2} if f["moe"] else {}
    if f["moe"]:
        llm.update(model="qwen3_30b_a3b", experimental_moe=True, **dep)
    if f["groups"]:
        llm["groups"] = [{"hardware": "a100_80gb", "tp": 1, "replicas": 4}]
    if f["disaggregated"] and f["engine"] != "fastertransformer" and not f["groups"]:
        llm["disaggregated"] = {"prefill": {"hardware": "h100", "tp": 1, "replicas": 4, **dep},
                                "decode": {"hardware": "a100_80gb", "tp": 1, "replicas": 4},
                                "kv_link_gbps": 100.0}
    if f["prefix"] != "none" and f["engine"] != "fastertransformer":  # continuous only
        llm["prefix_cache"] = {"memory_fraction": 0.3, "block_tokens": 16}
        if f["prefix"] == "affinity":  # with a host-memory tier too
            llm["router"] = "prefix_affinity"
            llm["prefix_cache"]["host_tokens"] = 4000
    raw = {"run": {"duration_s": 60.0, "warmup_s": 5.0, "drain_s": 120.0, "seed": f["seed"]},
           "workload": {"rate_qps": 8.0 if f["heavy"] else 1.5, "distinct_queries": 50,
                        "query_tokens": {"dist": "lognormal", "mean": 100, "cv": 1.0},
                        "response_tokens": {"dist": "lognormal", "mean": 60, "cv": 1.0},
                        "instruction_tokens": 40 if f["corpus"] else 0},
           "cache": {"policy": "none" if f["cache"] == "none" else "lru", "capacity": 20,
                     **({"semantic": {"threshold": 0.8, "cluster_size": {
                         "dist": "fixed", "value": 5}, "lookup_s": 0.01}}
                        if f["cache"] == "semantic" else {})},
           "retrieval": {"servers": 4, "passage_tokens": {"dist": "fixed", "value": 200},
                         "retries": 1, **({"corpus_passages": 30} if f["corpus"] else {})},
           "architecture": {"kind": f["arch"], "k": 3, "samples": 2},
           "limits": {"slo_s": 8.0, "policy": f["policy"], "deadline_s": 8.0},
           "economics": {"price": "on-demand",
                         **({"price_date": f["price_date"]} if f["price_date"] else {})},
           "llm": llm}
    if f["faults"] != "none":
        faults = {"mtbf_s": 20.0, "mttr_s": 5.0}
        if f["faults"] == "domains":
            faults.update(domain_replicas=2, domain_mtbf_s=30.0, domain_mttr_s=5.0)
        if f["faults"] == "retrieval":  # retrieval servers only: replicas never fail
            faults.update(mttr_s=0.0, retrieval_mtbf_s=15.0, retrieval_mttr_s=3.0)
        raw["faults"] = faults
    if f["shards"] == "two":
        raw["run"]["shards"] = 2
    elif f["shards"] == "sampled":
        raw["run"].update(shards=4, sample_shards=2)
    return loading.from_dict(raw)


def check(f: dict) -> None:
    s = scenario_of(f)
    ContinuousReplica.check_invariants = True
    try:
        res = run(s)
    finally:
        ContinuousReplica.check_invariants = False
    x = res.summary
    # the summary is finite JSON: no NaN or infinity written
    text = summary_json(x)
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)
    q, r = res.queries.to_pandas(), res.requests.to_pandas()
    sampled = f["shards"] == "sampled"
    # every query accounted for once
    assert q.query_id.is_unique and r.request_id.is_unique or len(r) == 0
    if not sampled:
        assert len(q) == x["queries"]
        window = q[q.in_window]
        assert len(window) == x["measured_queries"]
        outcomes = set(window.deadline_outcome)
        assert outcomes <= {"none", "met", "late", "partial", "degraded", "failed",
                            "in_flight"}
        # every request belongs to a query, and a query's requests are all in the table
        assert set(r.query_id) <= set(q.query_id)
        assert (r.groupby("query_id").size().reindex(q.query_id, fill_value=0).to_numpy()
                == q.requests.fillna(0).to_numpy()).all()
        # chip-seconds billed to requests never exceed the pool's busy chip-seconds, and
        # equal them when nothing fails and the run drained (a failure loses the iteration
        # it cuts short; so does the end of a run that did not drain)
        snap = res.snapshot
        busy = snap.busy_chips.integral(0.0, snap.end)
        billed = float(r.accelerator_s.sum())
        assert billed <= busy * (1 + 1e-9) + 1e-9
        if f["faults"] in ("none", "retrieval") and x["llm_requests_unfinished"] == 0:
            assert billed == pytest.approx(busy, rel=1e-6, abs=1e-9)
    # every prompt token of a finished request was prefilled or read from a prefix cache
    # (exactly once unless preempted or retried), and a read leaves a token to compute
    done = r[~r.cancelled & r.finished.notna()]
    assert (done.prefilled_tokens + done.cached_tokens >= done.prompt_tokens).all()
    once = done[(done.preemptions == 0) & (done.retries == 0)]
    assert (once.prefilled_tokens + once.cached_tokens == once.prompt_tokens).all()
    assert (once.cached_tokens < once.prompt_tokens).all()
    if f["cache"] == "semantic" and not sampled:
        window = q[q.in_window]
        assert (window.semantic_hit <= window.cache_hit).all()  # a semantic hit is a hit
        assert x["answers_from_other_queries"] == int(window.semantic_hit.sum())
        assert (window.semantic_false_hit <= window.semantic_hit).all()
    if s.llm.prefix_cache is None:
        assert (r.cached_tokens == 0).all() and "prefix_hit_tokens" not in x
    else:
        assert x["prefix_hit_rate_tokens"] is None or 0 <= x["prefix_hit_rate_tokens"] <= 1
    # energy between every chip idle and every chip at full power over the run
    chips = sum(g.chips for g in s.llm.fleet)
    hw = [catalog.accelerator(g.hardware) for g in s.llm.fleet]
    hours = (s.run.duration_s - s.run.warmup_s) / 3600
    lo = sum(g.chips * h.power.idle_w for g, h in zip(s.llm.fleet, hw, strict=True))
    hi = sum(g.chips * h.power.prefill_w for g, h in zip(s.llm.fleet, hw, strict=True))
    kwh = x["llm_energy_kwh"]
    assert lo * hours / 1000 * (1 - 1e-9) <= kwh <= hi * hours / 1000 * (1 + 1e-9), \
        (kwh, lo, hi, chips)
    # priced at the date's prices: each group's chip-hour is its kind's latest by then
    expected = sum(g.chips * pricing.chip_hour(g.hardware, "on-demand",
                                               s.economics.price_date) for g in s.llm.fleet)
    assert x["usd_per_chip_hour"] == pytest.approx(expected / chips)
    for key, value in x.items():
        if isinstance(value, float):
            assert math.isfinite(value), key
    assert np.isfinite(q.arrival).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=features)
def test_features_compose(f):
    check(f)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=features)
def test_features_compose_long(f):
    check(f)
