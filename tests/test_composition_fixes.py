"""Bugs found where features meet (issue 20), each with a test that failed before its fix."""

import json
import math

import pytest

from sim.io.rundir import summary_json
from sim.runner.api import run
from sim.runner.sampling import estimate
from sim.scenario import loading
from sim.serving.stages.router import RoundRobin
from tests.conftest import SCENARIOS


def test_round_robin_wraps_when_replicas_go_down():
    """The list the router sees shrinks while replicas are down: its turn wraps to it."""
    r = RoundRobin()
    assert [r.pick([0, 1, 2, 3]) for _ in range(4)] == [0, 1, 2, 3]
    assert r.pick([0, 1, 2, 3]) == 0 and r.pick([0, 1, 2, 3]) == 1
    assert r.pick([0, 1]) in (0, 1)  # was IndexError: its turn pointed at replica 2
    r._next = 3
    assert r.pick([0, 1]) == 1


def test_round_robin_with_failures_runs_and_accounts_every_query():
    s = loading.load(SCENARIOS / "modern_two_stage_faults.toml",
                     ["run.duration_s=900", "run.warmup_s=60", "llm.router='round_robin'",
                      "faults.mtbf_s=300", "faults.mttr_s=60"])
    res = run(s)
    q = res.queries.to_pandas()
    assert res.summary["requests_retried"] > 0
    assert len(q) == res.summary["queries"]


def test_sampled_estimates_keep_maxima_identities_and_the_whole_fleet():
    shards = [{"max_batch_seen": b, "kv_peak_fraction": f, "seed": 7, "completed": c}
              for b, f, c in ((40, 0.2, 10), (64, 0.5, 12))]
    est = estimate(shards, 10, [1, 4])
    assert est["max_batch_seen"] == 64 and est["kv_peak_fraction"] == 0.5
    assert est["seed"] == 7 and isinstance(est["seed"], int)
    assert est["completed"] == 110


def test_one_sampled_shard_writes_no_bare_nan():
    s = loading.load(SCENARIOS / "modern_two_stage.toml",
                     ["run.duration_s=200", "run.warmup_s=20", "llm.replicas=8",
                      "run.shards=8", "run.sample_shards=1"])
    res = run(s, tables="discard")
    text = summary_json(res.summary)
    assert "NaN" not in text
    data = json.loads(text)
    assert data["fleet"] == "8 x h100 (tp 4)"  # the whole fleet, not one shard's replica


def test_hosts_draw_their_share_in_a_sampled_run():
    """8 replicas of 4 chips on 8 shards: one replica (half a server) a shard. Whole servers
    per shard would bill 8 servers; the fleet has 4."""
    sets = ["run.duration_s=200", "run.warmup_s=20", "llm.replicas=8", "run.shards=8",
            "run.sample_shards=2", "economics.owned.server_w=1000"]
    est = run(loading.load(SCENARIOS / "modern_two_stage.toml", sets), tables="discard").summary
    hours = 180 / 3600
    assert est["host_energy_kwh"] == pytest.approx(1.0 * 4 * hours, rel=1e-9)
    assert math.isfinite(est["host_energy_kwh"])


def test_failure_times_do_not_depend_on_the_bulk_draw_size(monkeypatch):
    """Up and down times on one generator interleave by block: 1,024 up times then 1,024
    down times differ from alternating blocks of 2. Each on its own stream, they cannot."""
    from sim.model import distributions
    from sim.serving.stages import faults

    def availability(block):
        monkeypatch.setattr(faults, "Buffered",
                            lambda d, rng: distributions.Buffered(d, rng, size=block))
        s = loading.load(SCENARIOS / "modern_two_stage_faults.toml",
                         ["run.duration_s=3600", "run.warmup_s=60", "faults.mtbf_s=600",
                          "faults.mttr_s=120", "workload.rate_qps=2"])
        return run(s, tables="discard").summary["availability"]

    assert availability(2) == availability(4096)


class _LinearStep:
    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        return 1.0 + 0.01 * (prefill_tokens + decode_seqs)


def test_a_static_batch_cut_by_a_failure_bills_exactly_its_busy_time():
    """A (10 + 2 tokens) and B (10 + 5) in one static batch: prefill 1.2 s, then decode
    iterations of 1.02 s; A finishes at 2.22, the batch would end at 5.28. A pays its share
    (12/27 of 5.28) for the 2.22 s it held its slot: 0.98667; the replica fails at 3.0, so
    B pays the rest of the 3.0 chip-seconds, 2.01333. Retried and run alone (1.1 + 4 x 1.01
    = 5.14 s), B's bill adds up to 7.15333 and nothing is overwritten."""
    import simpy

    from sim.serving.stages.replica import PoolLevels
    from sim.serving.stages.request import Request
    from sim.serving.stages.static import StaticReplica

    env = simpy.Environment()
    rep = StaticReplica(env, 0, _LinearStep(), 1, 2, PoolLevels(), lambda r: None)
    env.process(rep.loop())
    a, b = Request(env, 0, 0, 10, 2), Request(env, 1, 1, 10, 5)
    rep.submit(a)
    rep.submit(b)

    def failure():
        yield env.timeout(3.0)
        held = rep.fail()
        assert held == [b]
        yield env.timeout(1.0)
        rep.repair()
        rep.submit(b)

    env.process(failure())
    env.run(until=50)
    assert a.accel_s == pytest.approx(5.28 * 12 / 27 * 2.22 / 5.28)
    assert a.accel_s + (b.accel_s - 5.14) == pytest.approx(3.0)
    assert b.finished == pytest.approx(4.0 + 5.14)
    assert b.prefilled == 20  # its prompt prefilled twice

