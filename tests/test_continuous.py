"""Continuous batching: processor sharing under the article model, memory and batch bounds."""

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.model import catalog, queueing
from sim.model.distributions import Empirical, Fixed
from sim.model.perf import ArticleStep
from sim.runner.api import run
from sim.scenario import loading
from sim.serving.stages.continuous import ContinuousReplica
from sim.serving.stages.replica import PoolLevels
from tests.helpers import confidence_interval

MODEL, HW = catalog.model("llama2_7b"), catalog.accelerator("h100")


def _ps_sojourn(lengths, rho: float, seed: int, services: float = 15000, warm: float = 1000):
    """Mean time in system of requests with no prompt on one unbounded continuous replica,
    over a horizon of `services` mean service times (the first `warm` of them deleted)."""
    step = ArticleStep(MODEL, HW, 1, 0.5)
    mean_s = lengths.mean * step.seconds_per_token
    horizon, warmup = services * mean_s, warm * mean_s
    lam = rho / mean_s
    theory = queueing.mg1_ps_mean_sojourn(lam, mean_s)
    env, done = simpy.Environment(), []
    rep = ContinuousReplica(env, 0, step, 1, 10**9, PoolLevels(), done.append,
                            kv_capacity_tokens=10**12)
    env.process(rep.loop())
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / lam, int(lam * horizon * 1.2))
    outs = lengths.sample(rng, len(gaps)).astype(int)

    def source():
        from sim.serving.stages.request import Request
        for i, (gap, out) in enumerate(zip(gaps, outs, strict=True)):
            yield env.timeout(gap)
            if env.now > horizon:
                return
            rep.submit(Request(env, i, i, 0, int(out)))

    env.process(source())
    env.run(until=horizon * 1.5)
    soj = np.array([r.finished - r.submitted for r in done if r.submitted >= warmup
                    and r.submitted < horizon])
    return soj.mean(), theory


def test_continuous_batching_is_processor_sharing():
    """M/G/1-PS: E[T] = E[S]/(1 - rho) whatever the length distribution (two of them)."""
    for lengths in (Fixed(200.0), Empirical((20.0, 200.0, 980.0), (0.5, 0.3, 0.2))):
        # 20 replications: the per-replication means vary by about 2% at this length
        sims, theory = zip(*[_ps_sojourn(lengths, 0.6, seed) for seed in range(20)],
                           strict=True)
        mean, lo, hi = confidence_interval(sims)
        assert lo <= theory[0] <= hi, (lengths, theory[0], mean, lo, hi)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.integers(1, 48), replicas=st.integers(1, 2), rate=st.floats(0.5, 4.0),
       chunk=st.sampled_from([None, 256, 2048]), seed=st.integers(0, 10_000),
       prompt_mean=st.sampled_from([200.0, 2000.0]), mem=st.sampled_from([0.02, 0.3]))
def test_memory_and_batch_bounds_hold(batch, replicas, rate, chunk, seed, prompt_mean, mem):
    raw = {
        "run": {"duration_s": 40.0, "warmup_s": 1.0, "drain_s": 200.0, "seed": seed},
        "workload": {"rate_qps": rate,
                     "query_tokens": {"dist": "lognormal", "mean": prompt_mean, "cv": 1.0},
                     "response_tokens": {"dist": "lognormal", "mean": 150, "cv": 1.0}},
        "llm": {"model": "llama2_7b", "hardware": "l4", "tp": 1, "replicas": replicas,
                "batching": "continuous", "max_batch": batch, "step_model": "roofline",
                "kv_memory_fraction": mem},
        "architecture": {"kind": "chatgpt_equivalent", "samples": 4},
        "economics": {"price": "gcp-g2-on-demand"}}
    if chunk:
        raw["llm"]["chunk_tokens"] = chunk
    ContinuousReplica.check_invariants = True  # checked before every iteration
    try:
        res = run(loading.from_dict(raw))
    finally:
        ContinuousReplica.check_invariants = False
    summ, r = res.summary, res.requests.to_pandas()
    assert summ["kv_peak_fraction"] <= 1.0
    assert summ["max_batch_seen"] <= batch
    assert r.request_id.is_unique  # none served twice
    # none lost: every sample of every query is a row, finished, cancelled, refused or
    # still queued or running at the end
    assert summ["llm_requests_submitted"] == 4 * summ["queries"] == len(r)
    assert r.unfinished.sum() == summ["llm_requests_unfinished"]
    assert (r.unfinished == r.finished.isna()).all()
    served = r[~r.cancelled & ~r.unfinished]
    assert (served.generated_tokens == served.output_tokens).all()
    assert (served.prefilled_tokens >= served.prompt_tokens).all()
    refused = r[r.refused]
    cap = summ["kv_capacity_tokens"]
    assert ((refused.prompt_tokens + refused.output_tokens) > cap).all()
    assert summ["refusals"] == len(refused)


class _PerToken:
    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        return 0.01 * (np.asarray(prefill_tokens) + np.asarray(decode_seqs))


def _replica_run(capacity: int, requests: list[tuple[int, int]]):
    """Requests (prompt, output) all submitted at t = 0 to one continuous replica."""
    from sim.serving.stages.request import Request
    env, done = simpy.Environment(), []
    rep = ContinuousReplica(env, 0, _PerToken(), 1, 8, PoolLevels(), done.append,
                            kv_capacity_tokens=capacity)
    rep.check_invariants = True
    env.process(rep.loop())
    reqs = [Request(env, i, i, p, o) for i, (p, o) in enumerate(requests)]
    for r in reqs:
        rep.submit(r)
    env.run(until=100)
    return reqs


def test_admission_keeps_one_token_of_headroom():
    """Capacity 100: A (40 + 10) is admitted; B's 60-token prompt would fill memory exactly,
    leaving no room for the token its prefill samples, so B waits until A leaves."""
    a, b = _replica_run(100, [(40, 10), (60, 5)])
    assert a.started == 0.0 and b.started == pytest.approx(a.finished)
    assert a.preemptions == b.preemptions == 0


def test_preemption_takes_the_newest_request():
    """Capacity 30, two requests of 10 + 15 tokens: both start; when decoding outgrows memory
    the later-admitted B is preempted and recomputed after A, which runs undisturbed."""
    a, b = _replica_run(30, [(10, 15), (10, 15)])
    assert (a.preemptions, b.preemptions) == (0, 1)
    assert a.finished < b.finished and b.prefilled > b.prompt  # B's work was recomputed


def test_empty_prompts_first_token_after_one_iteration(monkeypatch):
    """A request with no prompt decodes from its admission: its first token comes at the end
    of the first iteration, with the decode fast path as when stepping one at a time."""
    runs = {}
    for steps in (None, 1):
        monkeypatch.setattr(ContinuousReplica, "max_run_steps", steps)
        runs[steps] = [(r.first_token, r.finished) for r in _replica_run(1000, [(0, 10),
                                                                                  (0, 5)])]
    assert runs[None] == runs[1]
    assert runs[1][0][0] == pytest.approx(0.02)  # one iteration of two decodes
