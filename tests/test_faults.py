"""Replica failures: no effect when off, availability as theory says, hand-computed
restarts and losses, and no request ever lost silently."""

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import t as student_t

from sim.runner.api import run
from sim.scenario import loading
from sim.scenario.schema import LLM, Faults
from sim.serving.records import Recorder
from sim.serving.stages.continuous import ContinuousReplica
from sim.serving.stages.pool import LLMPool
from tests.conftest import SCENARIOS

SHORT = ["run.duration_s=300", "run.warmup_s=30", "run.drain_s=120"]


def _same_run(a, b) -> bool:
    return (a.summary == b.summary and a.requests.to_pandas().equals(b.requests.to_pandas())
            and a.queries.to_pandas().equals(b.queries.to_pandas()))


@pytest.mark.parametrize("faults", ["{mttr_s=0.0, mtbf_s=5.0}",
                                    "{mtbf_s=5.0, mttr_s=30.0, enabled=false}"])
def test_faults_off_or_instant_repairs_change_nothing(faults):
    path = SCENARIOS / "modern_two_stage.toml"
    plain = run(loading.load(path, SHORT))
    assert _same_run(run(loading.load(path, [*SHORT, f"faults={faults}"])), plain)


class PerToken:
    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        return 0.1 * (np.asarray(prefill_tokens) + np.asarray(decode_seqs))


def _one_request(policy: str, replicas: int, fail_at: float, repair_after: float):
    """A request (1 prompt token, 10 output tokens: 1.0 s of service) at t = 0 on replica 0,
    which fails at `fail_at` and is repaired `repair_after` later (once: the next failure is
    far away)."""
    env, rec = simpy.Environment(), Recorder()
    cfg = LLM(model="llama2_7b", hardware="h100", tp=1, replicas=replicas, max_batch=4,
              batching="continuous")
    pool = LLMPool(env, cfg, PerToken(), rec, kv_capacity_tokens=10**6)
    pool.start_failures(Faults(mtbf_s=1e9, policy=policy), np.random.default_rng(0))
    req = pool.submit(0, 1, 10)  # the router's tie goes to replica 0
    assert req.replica == 0

    def outage():
        yield env.timeout(fail_at)
        pool.failures.fail(pool.replicas[0])
        yield env.timeout(repair_after)
        pool.failures.repair(pool.replicas[0])

    env.process(outage())
    env.run(until=50.0)
    rec.close()
    return req, pool


def test_a_failure_restarts_the_request_on_another_replica():
    """Replica 0 fails at 0.45 s (the prefill and 3 decode iterations done, the 4th lost):
    the request starts over on replica 1 and takes its full 1.0 s from there."""
    req, pool = _one_request("retry", 2, 0.45, 10.0)
    assert req.retries == 1 and not req.lost and not req.cancelled
    assert req.replica == 1
    assert req.finished == pytest.approx(1.45)
    assert req.generated == 10 and req.prefilled == 2  # the prompt token, computed twice
    # chip-seconds: 0.4 s settled on replica 0 (the iteration in progress is lost), then 1.0 s
    assert req.accel_s == pytest.approx(1.4)


def test_with_no_replica_up_the_request_waits_for_the_repair():
    req, _ = _one_request("retry", 1, 0.45, 2.0)
    assert req.finished == pytest.approx(0.45 + 2.0 + 1.0)


def test_a_lost_request_ends_at_the_failure():
    req, _ = _one_request("lose", 2, 0.45, 10.0)
    assert req.lost and req.cancelled and req.finished == pytest.approx(0.45)
    assert req.generated == 4  # the prefill's token and 3 decoded before the failure


def test_availability_is_mtbf_over_mtbf_plus_mttr():
    """Exponential up (mean 40 s) and down (mean 10 s) times on 24 replicas over 4,000 s:
    each replica's up share is one sample; theory 0.8 lies in their 99.9% interval."""
    s = loading.load(SCENARIOS / "two_stage.toml",
                     ["run.duration_s=4000", "run.warmup_s=0", "run.drain_s=0",
                      "llm.replicas=24", "workload.rate_qps=0.01",
                      "faults={mtbf_s=40.0, mttr_s=10.0}"])
    res = run(s)
    assert 0.75 < res.summary["availability"] < 0.85
    shares = _up_shares(s)
    half = student_t.ppf(0.9995, len(shares) - 1) * shares.std(ddof=1) / len(shares) ** 0.5
    assert shares.mean() - half <= 0.8 <= shares.mean() + half, (shares.mean(), half)
    assert res.summary["availability"] == pytest.approx(shares.mean(), abs=1e-9)


def _up_shares(s) -> np.ndarray:
    """Each replica's up share over the run, from its logged failures and repairs."""
    log = _fault_log(s)  # replicas fail on their own here: every cause changes the state
    horizon = s.run.duration_s
    down = np.zeros(s.llm.replicas)
    for index, t, change in log:  # down time: - fail time + repair time (or the horizon)
        down[index] += t if change > 0 else -t
    down += horizon * np.array([sum(-c for i, _, c in log if i == r)
                                for r in range(s.llm.replicas)])
    return 1 - down / horizon


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=st.sampled_from(["retry", "lose"]), mtbf=st.floats(5.0, 60.0),
       mttr=st.floats(0.5, 20.0), batching=st.sampled_from(["static", "continuous"]),
       deadline=st.sampled_from([None, 4.0]), seed=st.integers(0, 1000))
def test_no_request_is_ever_lost_silently(policy, mtbf, mttr, batching, deadline, seed):
    raw = {"run": {"duration_s": 60.0, "warmup_s": 5.0, "drain_s": 60.0, "seed": seed},
           "workload": {"rate_qps": 2.0,
                        "query_tokens": {"dist": "lognormal", "mean": 200, "cv": 1.0},
                        "response_tokens": {"dist": "lognormal", "mean": 60, "cv": 1.0}},
           "llm": {"model": "llama2_7b", "hardware": "l4", "tp": 1, "replicas": 2,
                   "batching": batching, "max_batch": 8, "step_model": "roofline",
                   "kv_memory_fraction": 0.3},
           "architecture": {"kind": "chatgpt_equivalent", "samples": 3},
           "limits": {"deadline_s": deadline, "policy": "partial" if deadline else "none"},
           "faults": {"mtbf_s": mtbf, "mttr_s": mttr, "policy": policy},
           "economics": {"price": "gcp-g2-on-demand"}}
    ContinuousReplica.check_invariants = True
    try:
        res = run(loading.from_dict(raw))
    finally:
        ContinuousReplica.check_invariants = False
    summ, r = res.summary, res.requests.to_pandas()
    assert len(r) == summ["llm_requests_submitted"] == 3 * summ["queries"]
    assert r.request_id.is_unique
    served = ~r.cancelled & ~r.unfinished
    # every request: served, cancelled (by its deadline, refused, or lost) or unfinished
    assert (served | r.cancelled | r.unfinished).all()
    assert (r.generated_tokens[served] == r.output_tokens[served]).all()
    assert (r.lost <= r.cancelled).all()
    if policy == "retry":
        assert not r.lost.any()
    else:
        assert (r.retries == 0).all()
    q = res.queries.to_pandas()
    hit = q.query_id.isin(r.query_id[r.lost | (r.retries > 0)])
    assert (q.failed_requests > 0).equals(hit)
    lost_q = q.query_id.isin(r.query_id[r.lost])
    assert not q.complete[lost_q].any()  # a lost response is never a complete answer
    assert summ["requests_lost"] == int((r.lost & r.in_window).sum())
    assert 0.0 <= summ["availability"] <= 1.0


def _domain_run(extra: str):
    """two_stage's 24 replicas, almost no load, 900 s, domains of 4 replicas that are up
    100 s and down 50 s (fixed): six whole cycles."""
    s = loading.load(SCENARIOS / "two_stage.toml",
                     ["run.duration_s=900", "run.warmup_s=0", "run.drain_s=0",
                      "llm.replicas=24", "workload.rate_qps=0.01",
                      "faults={mttr_s=0.0, domain_replicas=4, "
                      "domain_time_to_failure_s={dist='fixed', value=100.0}, "
                      "domain_time_to_repair_s={dist='fixed', value=50.0}" + extra + "}"])
    return s, run(s)


def test_a_failure_domain_takes_its_replicas_down_together():
    """Domain failures alone: every replica is up 100 of every 150 s, so availability is
    exactly 2/3, and the 4 replicas of a domain fail and return at the same instants."""
    s, res = _domain_run("")
    assert res.summary["availability"] == pytest.approx(2 / 3, abs=1e-12)
    log = _fault_log(s)
    by_replica = {r: [(t, c) for i, t, c in log if i == r] for r in range(24)}
    cycles = [(100.0 + 150 * k + d, c) for k in range(6) for d, c in ((0, -1), (50, +1))]
    assert by_replica[0] == by_replica[3] == cycles[:-1]  # the run ends as the last repairs
    assert by_replica[4][0] == (100.0, -1)  # the next domain, on its own clock (same times)


def test_a_replica_down_for_two_causes_returns_when_both_end():
    """Its own failure (up 120 s, down 60 s) inside its domain's outages: down while
    either keeps it down, so its availability is the share of time neither does."""
    s, res = _domain_run(", time_to_failure_s={dist='fixed', value=120.0}, "
                         "time_to_repair_s={dist='fixed', value=60.0}")
    t = np.arange(0.0, 900.0, 0.5) + 0.25  # midpoints of half-second steps: no ties
    own_down = (t % 180.0) >= 120.0
    domain_down = (t % 150.0) >= 100.0
    assert res.summary["availability"] == pytest.approx(1 - (own_down | domain_down).mean(),
                                                        abs=1e-12)


def test_a_domains_requests_move_once_to_a_replica_outside_it():
    """Replicas 0 and 1 share a domain that fails at 0.45 s: the request on replica 0 moves
    straight to replica 2 (one restart), never to replica 1 failing at the same moment, and
    takes its full 1.0 s from there."""
    env, rec = simpy.Environment(), Recorder()
    cfg = LLM(model="llama2_7b", hardware="h100", tp=1, replicas=3, max_batch=4,
              batching="continuous")
    pool = LLMPool(env, cfg, PerToken(), rec, kv_capacity_tokens=10**6)
    pool.start_failures(Faults(mtbf_s=1e9), np.random.default_rng(0))  # none of their own
    req = pool.submit(0, 1, 10)
    assert req.replica == 0

    def domain_outage():
        yield env.timeout(0.45)
        pool.failures.fail_all(pool.replicas[:2])

    env.process(domain_outage())
    env.run(until=50.0)
    assert (req.replica, req.retries) == (2, 1)
    assert req.finished == pytest.approx(1.45)


def test_requests_parked_through_a_domain_outage_spread_over_it_when_it_is_back():
    """Both replicas share one domain, down from 0.45 s to 2.45 s: the two requests wait,
    then go one to each replica (not both to the first one back)."""
    env, rec = simpy.Environment(), Recorder()
    cfg = LLM(model="llama2_7b", hardware="h100", tp=1, replicas=2, max_batch=4,
              batching="continuous")
    pool = LLMPool(env, cfg, PerToken(), rec, kv_capacity_tokens=10**6)
    pool.start_failures(Faults(mtbf_s=1e9), np.random.default_rng(0))
    reqs = [pool.submit(0, 1, 10), pool.submit(1, 1, 10)]

    def domain_outage():
        yield env.timeout(0.45)
        pool.failures.fail_all(pool.replicas)
        yield env.timeout(2.0)
        pool.failures.repair_all(pool.replicas)

    env.process(domain_outage())
    env.run(until=50.0)
    assert sorted(r.replica for r in reqs) == [0, 1]
    assert [r.finished for r in reqs] == pytest.approx([3.45, 3.45])


def test_domains_off_change_nothing():
    path = SCENARIOS / "modern_two_stage_faults.toml"
    plain = run(loading.load(path, SHORT))
    assert _same_run(run(loading.load(path, [*SHORT, "faults.domain_replicas=2",
                                             "faults.domain_mttr_s=0.0"])), plain)


def _fault_log(s) -> list[tuple[int, float, int]]:
    """(replica, time, -1 down / +1 up) of every change of a replica's state in a run."""
    from sim.serving.stages.faults import Failures
    log: list[tuple[int, float, int]] = []
    fail, repair = Failures.fail_all, Failures.repair_all

    def logged_fail(self, members):
        was = [rep.down for rep in members]
        fail(self, members)
        log.extend((rep.index, self.env.now, -1) for rep, w in zip(members, was, strict=True)
                   if rep.down and not w)

    def logged_repair(self, members):
        was = [rep.down for rep in members]
        repair(self, members)
        log.extend((rep.index, self.env.now, +1) for rep, w in zip(members, was, strict=True)
                   if w and not rep.down)

    Failures.fail_all, Failures.repair_all = logged_fail, logged_repair
    try:
        run(s)
    finally:
        Failures.fail_all, Failures.repair_all = fail, repair
    return log
