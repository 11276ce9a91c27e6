"""Exact sample-path oracles: the Lindley recursion for a batch-1 replica, and the decode
skip-ahead equal to stepping one iteration at a time."""

import numpy as np
import pytest
import simpy

from sim.model import catalog
from sim.model.perf import ArticleStep
from sim.runner.api import run
from sim.scenario import loading
from sim.serving.stages.continuous import ContinuousReplica
from sim.serving.stages.replica import PoolLevels
from sim.serving.stages.request import Request
from sim.serving.stages.static import StaticReplica
from tests.conftest import SCENARIOS


def test_batch_one_static_replica_follows_lindley():
    """W[n+1] = max(0, W[n] + S[n] - A[n+1]), with S = (prompt + output - 1) tokens at the
    article model's seconds per token (the prefill samples the first output token)."""
    step = ArticleStep(catalog.model("llama2_7b"), catalog.accelerator("h100"), 1, 0.4)
    rng = np.random.default_rng(7)
    n = 400
    arrivals = np.cumsum(rng.exponential(0.01, n))
    prompts = rng.integers(1, 200, n)
    outputs = rng.integers(1, 300, n)
    service = (prompts + outputs - 1) * step.seconds_per_token
    wait = np.zeros(n)
    for i in range(1, n):
        wait[i] = max(0.0, wait[i - 1] + service[i - 1] - (arrivals[i] - arrivals[i - 1]))
    assert (wait > 0).mean() > 0.3  # a queue actually forms

    env, done = simpy.Environment(), []
    rep = StaticReplica(env, 0, step, 1, 1, PoolLevels(), done.append)
    env.process(rep.loop())

    def source():
        for i in range(n):
            yield env.timeout(arrivals[i] - env.now)
            rep.submit(Request(env, i, i, int(prompts[i]), int(outputs[i])))

    env.process(source())
    env.run()
    done.sort(key=lambda r: r.rid)
    waits = np.array([r.started - r.submitted for r in done])
    sojourn = np.array([r.finished - r.submitted for r in done])
    np.testing.assert_allclose(waits, wait, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sojourn, wait + service, rtol=0, atol=1e-9)


# every bundled scenario (the static ones under continuous batching, which is where the
# fast path lives), plus memory so tight that requests are preempted and recomputed
CASES = {
    "modern_two_stage": [],
    "modern_chatgpt_equivalent": [],
    "azure_conv_replay": [],
    "two_stage": ["llm.batching='continuous'", "llm.replicas=24"],
    "chatgpt_equivalent": ["llm.batching='continuous'"],
    "modern_two_stage preempting": ["llm.kv_memory_fraction=0.015"],
    # overloaded: runs cut off by the end of the simulation credit what they completed
    "chatgpt_equivalent overloaded": ["llm.batching='continuous'", "workload.rate_qps=20",
                                      "run.drain_s=30"],
    # every continuous engine: prompt-first iterations, blocks, a watermark, swapping
    "modern_two_stage vllm-v0": ["llm.engine='vllm-v0'"],
    "modern_two_stage vllm-v1": ["llm.engine='vllm-v1'", "llm.replicas=4"],
    "modern_two_stage sglang": ["llm.engine='sglang'", "llm.replicas=4"],
    "modern_two_stage trtllm": ["llm.engine='trtllm'", "llm.replicas=4"],
    # a mixture of experts, alone on its chip and on DEP 2 (experts over two B200s)
    "two_stage_2026_moe": [],
    "two_stage_2026_moe dep": ["llm.dp=2", "llm.ep=2", "llm.replicas=1"],
    "modern_two_stage vllm-v0 swap preempting": [
        "llm.engine='vllm-v0'", "llm.engine_options={preemption='swap'}",
        "llm.kv_memory_fraction=0.015"],
    "modern_two_stage vllm-v1 preempting": ["llm.engine='vllm-v1'",
                                            "llm.kv_memory_fraction=0.015"],
}


@pytest.mark.parametrize("case", CASES)
def test_decode_skip_ahead_equals_stepping_one_iteration_at_a_time(case, monkeypatch):
    path = SCENARIOS / (case.split()[0] + ".toml")
    s = loading.load(path, ["run.duration_s=200", "run.warmup_s=20", "run.drain_s=300",
                            *CASES[case]])
    fast = run(s)
    monkeypatch.setattr(ContinuousReplica, "max_run_steps", 1)
    slow = run(s)
    a, b = fast.requests, slow.requests
    assert a.num_rows == b.num_rows > 50
    if case.endswith("preempting"):
        assert fast.summary["preemptions"] > 0
    if "swap" in case:  # swapped requests come back with their KV: nothing recomputed
        q = fast.requests.to_pandas()
        assert (q.prefilled_tokens <= q.prompt_tokens).all()
    if case.endswith("overloaded"):
        assert fast.summary["llm_requests_unfinished"] > 100
    for a, b in ((fast.requests, slow.requests), (fast.queries, slow.queries)):
        for col in a.column_names:
            x = a[col].to_numpy(zero_copy_only=False)
            y = b[col].to_numpy(zero_copy_only=False)
            if x.dtype.kind == "f":
                np.testing.assert_allclose(x, y, rtol=0, atol=1e-9, err_msg=col)
            else:
                assert (x == y).all(), col
