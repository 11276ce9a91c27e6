"""Retrieval timeouts and retries, and cache flushes: hand-computed cases, theory, exact
invariants."""

import math

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from sim.model.distributions import Buffered, Fixed
from sim.runner.api import run
from sim.scenario import loading
from sim.serving.stages.retrieval import RetrievalPool
from tests.conftest import SCENARIOS


def _calls(service: float, timeout: float, retries: int):
    env = simpy.Environment()
    pool = RetrievalPool(env, 1, Buffered(Fixed(service), np.random.default_rng(0)),
                         timeout_s=timeout, retries=retries)
    out = []

    def query():
        out.append((yield from pool.call()))
        out.append(env.now)

    env.process(query())
    env.run()
    return out, pool


def test_a_call_longer_than_its_timeout_is_retried_then_given_up():
    """Service 0.2 s against a 0.15 s timeout, 2 retries: three calls each cut at 0.15 s."""
    ((wait, service, calls, ok, timeouts), end), pool = _calls(0.2, 0.15, 2)
    assert (calls, ok) == (3, False) and pool.timeouts == timeouts == 3
    assert end == pytest.approx(0.45) and service == pytest.approx(0.45) and wait == 0.0


def test_a_call_within_its_timeout_succeeds_first_time():
    ((wait, service, calls, ok, timeouts), end), pool = _calls(0.1, 0.15, 2)
    assert (calls, ok, pool.timeouts) == (1, True, 0) and end == pytest.approx(0.1)


def test_failed_retrievals_match_the_exponential_tail():
    """Plenty of servers (no queueing), exponential service of mean 80 ms, timeout 100 ms,
    one retry: a query's retrieval fails with probability exp(-100/80)^2."""
    s = loading.load(SCENARIOS / "two_stage.toml",
                     ["run.duration_s=3000", "run.warmup_s=0", "workload.rate_qps=2",
                      "retrieval.servers=64", "retrieval.timeout_s=0.1", "retrieval.retries=1",
                      'retrieval.service_s={dist="exponential", mean=0.08, unit="seconds"}',
                      'cache.policy="none"', "llm.replicas=64"])
    summ = run(s, tables="discard").summary
    p = math.exp(-0.1 / 0.08) ** 2
    n = summ["measured_queries"]
    lo, hi = binom.ppf(0.0005, n, p) / n, binom.ppf(0.9995, n, p) / n
    assert lo <= summ["retrieval_failed_fraction"] <= hi, (summ["retrieval_failed_fraction"], p)
    assert summ["degraded_fraction"] == summ["retrieval_failed_fraction"]
    assert summ["slo_attainment"] <= 1 - summ["retrieval_failed_fraction"]


def test_a_failed_retrieval_fails_the_query_by_policy():
    s = loading.load(SCENARIOS / "two_stage.toml",
                     ["run.duration_s=600", "run.warmup_s=0", "retrieval.timeout_s=0.02",
                      'retrieval.on_failure="fail"'])
    res = run(s)
    q = res.queries.to_pandas()
    failed = q[q.retrieval_failed]
    assert len(failed) > 0 and (failed.deadline_outcome == "failed").all()
    assert (failed.requests == 0).all() and not failed.complete.any()
    assert res.summary["failed_fraction"] == pytest.approx(
        q[q.in_window].retrieval_failed.mean())


def test_after_a_full_flush_every_hit_was_inserted_after_it():
    """A flush at 300 s empties the cache: a query that hits after it must have a key some
    query answered between the flush and its arrival."""
    s = loading.load(SCENARIOS / "modern_two_stage.toml",
                     ["run.duration_s=600", "run.warmup_s=0", "cache.flush_at_s=[300.0]"])
    res = run(s)
    q = res.queries.to_pandas()
    after = q[(q.arrival >= 300.0) & q.cache_hit]
    assert len(after) > 50
    answered = q[~q.cache_hit & (q.deadline_outcome != "degraded")]
    for _, hit in after.iterrows():
        same = answered[(answered.key == hit.key) & (answered.done >= 300.0)
                        & (answered.done <= hit.arrival)]
        assert len(same) > 0, hit.query_id
    ts = res.timeseries.to_pandas()
    cache = ts[ts.pool == "cache"].set_index("interval_start").cache_hit_rate
    assert cache[300.0] < cache[240.0]  # the dip after the flush


def test_no_flush_and_a_flush_after_the_run_change_nothing():
    path = SCENARIOS / "modern_two_stage.toml"
    short = ["run.duration_s=300", "run.warmup_s=30", "run.drain_s=60"]
    a = run(loading.load(path, short)).summary
    b = run(loading.load(path, [*short, "cache.flush_at_s=[1e6]"])).summary
    assert a == b


def _failing_call(up: float, timeout: float | None = None, retries: int = 2):
    """One call at t = 0 of 1.0 s to a single server that fails every `up` seconds of
    service for 2.0 s; returns (call's result, end time, pool)."""
    env = simpy.Environment()
    rng = np.random.default_rng(0)
    pool = RetrievalPool(env, 1, Buffered(Fixed(1.0), rng), timeout_s=timeout,
                         retries=retries, failing=True)
    pool.start_failures(Buffered(Fixed(up), rng), Buffered(Fixed(2.0), rng),
                        Buffered(Fixed(0.0), rng))  # one server: the busy one fails
    out = []

    def query():
        out.append((yield from pool.call()))
        out.append(env.now)

    env.process(query())
    env.run(until=20.0)
    return out[0], out[1], pool


def test_a_server_failure_cuts_the_call_which_is_retried_after_the_repair():
    """Down over [0.5, 2.5), [3, 5), [5.5, 7.5): the call is cut at 0.5, waits for the
    repair, is cut again at 3.0 and at 5.5: three calls, 1.5 s served, 4 s waited."""
    (wait, service, calls, ok, timeouts), end, pool = _failing_call(0.5)
    assert (calls, ok, pool.cut, pool.timeouts) == (3, False, 3, 0)
    assert wait == pytest.approx(4.0) and service == pytest.approx(1.5)
    assert end == pytest.approx(5.5)
    pool.up.close(20.0)  # down 2.0 s of every 2.5 s
    assert pool.up.integral(0.0, 10.0) == pytest.approx(2.0)
    pool.queue.close(20.0)  # the call queued through two repairs; the failures are no calls
    assert pool.queue.integral(0.0, 20.0) == pytest.approx(4.0)


def test_a_call_done_before_the_failure_is_untouched():
    (wait, service, calls, ok, timeouts), end, pool = _failing_call(1.5)
    assert (calls, ok, pool.cut) == (1, True, 0) and end == pytest.approx(1.0)


def test_a_cut_call_is_a_failure_not_a_timeout():
    """With a 3 s timeout the first call is cut at 0.5 (a failure); the second waits for the
    repair at 2.5 and is cut at 3.0 (a failure, inside its timeout)."""
    (wait, service, calls, ok, timeouts), end, pool = _failing_call(0.5, timeout=3.0, retries=1)
    assert (calls, ok, pool.cut, pool.timeouts, timeouts) == (2, False, 2, 0, 0)
    assert end == pytest.approx(3.0)


def test_retrieval_server_failures_degrade_answers_and_availability_is_theory():
    """Exponential up (mean 60 s) and down (20 s) times on 16 servers over 3,000 s: the
    servers' up share near 0.75; calls cut with no retry budget degrade their queries."""
    base = ["run.duration_s=3000", "run.warmup_s=0", "workload.rate_qps=2",
            "retrieval.servers=16", 'cache.policy="none"', "llm.replicas=64"]
    s = loading.load(SCENARIOS / "two_stage.toml",
                     [*base, "faults={mttr_s=0.0, retrieval_mtbf_s=60.0, "
                             "retrieval_mttr_s=20.0}"])
    summ = run(s, tables="discard").summary
    assert 0.70 < summ["retrieval_availability"] < 0.80
    assert summ["availability"] == 1.0  # the LLM replicas do not fail
    assert summ["retrieval_failed_fraction"] > 0
    assert summ["degraded_fraction"] == summ["retrieval_failed_fraction"]
    # no call has a timeout: every failed call was cut by its server, none timed out
    assert summ["retrieval_timeouts"] == 0 and summ["retrieval_cut_calls"] > 0
    plain = run(loading.load(SCENARIOS / "two_stage.toml", base), tables="discard").summary
    assert plain["retrieval_availability"] == 1.0 and plain["retrieval_failed_fraction"] == 0
    # an architecture without retrieval has no retrieval servers to lose
    alone = run(loading.load(SCENARIOS / "chatgpt_equivalent.toml",
                             ["run.duration_s=300", "run.warmup_s=30",
                              "faults={mttr_s=0.0, retrieval_mtbf_s=60.0}"]),
                tables="discard").summary
    assert alone["retrieval_availability"] == 1.0


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mtbf=st.floats(2.0, 30.0), mttr=st.floats(0.5, 10.0), retries=st.integers(0, 2),
       timeout=st.sampled_from([None, 0.3]), on_failure=st.sampled_from(["degrade", "fail"]),
       seed=st.integers(0, 1000))
def test_every_query_accounted_for_under_retrieval_failures(mtbf, mttr, retries, timeout,
                                                            on_failure, seed):
    s = loading.load(SCENARIOS / "two_stage.toml",
                     ["run.duration_s=120", "run.warmup_s=10", "run.drain_s=300",
                      f"run.seed={seed}", "workload.rate_qps=3", "retrieval.servers=3",
                      f"retrieval.retries={retries}", f"retrieval.on_failure='{on_failure}'",
                      *([f"retrieval.timeout_s={timeout}"] if timeout else []),
                      'retrieval.service_s={dist="exponential", mean=0.5, unit="seconds"}',
                      f"faults={{mttr_s=0.0, retrieval_mtbf_s={mtbf}, "
                      f"retrieval_mttr_s={mttr}}}"])
    res = run(s)
    q, summ = res.queries.to_pandas(), res.summary
    assert q.done.notna().all()  # the drain lets every query end
    asked = ~q.cache_hit
    assert (q.retrieval_calls[asked] >= 1).all() and (q.retrieval_calls <= retries + 1).all()
    gave_up = q.retrieval_failed
    assert (q.requests[gave_up] == 0).all() and (q.retrieval_calls[gave_up] == retries + 1).all()
    expected = "degraded" if on_failure == "degrade" else "failed"
    assert (q.deadline_outcome[gave_up] == expected).all()
    assert (q.requests[asked & ~gave_up] == 10).all()  # the others went on to summarize
    assert 0.0 <= summ["retrieval_availability"] < 1.0
