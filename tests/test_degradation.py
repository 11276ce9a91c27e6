"""Retrieval timeouts and retries, and cache flushes: hand-computed cases, theory, exact
invariants."""

import math

import numpy as np
import pytest
import simpy
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
    ((wait, service, calls, ok), end), pool = _calls(0.2, 0.15, 2)
    assert (calls, ok) == (3, False) and pool.timeouts == 3
    assert end == pytest.approx(0.45) and service == pytest.approx(0.45) and wait == 0.0


def test_a_call_within_its_timeout_succeeds_first_time():
    ((wait, service, calls, ok), end), pool = _calls(0.1, 0.15, 2)
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
