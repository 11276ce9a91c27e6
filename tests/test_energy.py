"""Energy: the power level integrates the catalog's watts over each replica's states
(hand-computed traces), stays between idle and full power, and prices an owned fleet."""

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.model import catalog
from sim.runner.api import run
from sim.scenario import loading
from sim.scenario.schema import LLM
from sim.serving.records import Recorder
from sim.serving.stages.pool import LLMPool
from tests.conftest import SCENARIOS

H100 = catalog.accelerator("h100").power  # 75 W idle, 700 W prefill, 380 W decode


class PerToken:
    """0.1 s per token; no memory term, so prompt iterations count as compute-bound."""

    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        return 0.1 * (np.asarray(prefill_tokens) + np.asarray(decode_seqs))


@pytest.mark.parametrize("batching", ["continuous", "static"])
def test_energy_is_the_integral_of_state_power(batching):
    """One request (1 prompt token, 10 output tokens) at t = 1 on a 2-chip replica: idle
    until 1.0, a 0.1 s prefill iteration, 9 decode iterations (0.9 s), idle to t = 5."""
    env, rec = simpy.Environment(), Recorder()
    cfg = LLM(model="llama2_7b", hardware="h100", tp=2, replicas=1, max_batch=4,
              batching=batching)
    pool = LLMPool(env, cfg, PerToken(), rec, kv_capacity_tokens=10**6, power=H100)

    def one():
        yield env.timeout(1.0)
        pool.submit(0, 1, 10)

    env.process(one())
    env.run(until=5.0)
    level = pool.levels.power_w
    expect = 2 * (H100.idle_w * 4.0 + H100.prefill_w * 0.1 + H100.decode_w * 0.9)
    assert level.integral(0.0, 5.0) == pytest.approx(expect, rel=1e-12)
    assert level.integral(0.0, 1.0) == pytest.approx(2 * H100.idle_w, rel=1e-12)
    assert level.integral(1.0, 1.1) == pytest.approx(2 * H100.prefill_w * 0.1, rel=1e-9)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.floats(0.0, 6.0), batching=st.sampled_from(["static", "continuous"]),
       seed=st.integers(0, 100))
def test_mean_power_lies_between_idle_and_full_power(rate, batching, seed):
    raw = {"run": {"duration_s": 100.0, "warmup_s": 10.0, "drain_s": 60.0, "seed": seed},
           "workload": {"rate_qps": max(rate, 1e-3)},
           "llm": {"model": "llama2_7b", "hardware": "a100_80gb", "tp": 1, "replicas": 2,
                   "batching": batching, "max_batch": 16, "step_model": "roofline"},
           "architecture": {"kind": "chatgpt_equivalent", "samples": 2},
           "economics": {"price": "on-demand"}}
    s = run(loading.from_dict(raw)).summary
    power, chips = catalog.accelerator("a100_80gb").power, 2
    assert chips * power.idle_w - 1e-6 <= s["llm_power_w_mean"] <= chips * power.prefill_w
    assert s["llm_energy_kwh"] * 3.6e6 == pytest.approx(s["llm_power_w_mean"] * 90.0)
    if s["completed"]:
        assert s["energy_per_query_j"] * s["completed"] == pytest.approx(
            s["llm_power_w_mean"] * 90.0)
    if s["accelerator_utilization"] == 0:  # nothing ran: the fleet idled throughout
        assert s["llm_power_w_mean"] == pytest.approx(chips * power.idle_w)


def test_an_owned_fleet_costs_its_capital_plus_the_energy_it_drew():
    base = loading.load(SCENARIOS / "modern_two_stage.toml",
                        ["run.duration_s=300", "run.warmup_s=60", "limits.deadline_s=25",
                         "limits.slo_s=25", "llm.replicas=12",
                         "economics.owned.server_usd=120000", "economics.owned.pue=1.3",
                         "economics.owned.usd_per_kwh=0.1"])
    rented = run(base).summary
    hours, chips, n = 240 / 3600, 48, rented["completed"]
    capex = chips * (30000 + 120000 / 8) / (4 * 8766) * hours
    energy = rented["llm_energy_kwh"] * 1.3 * 0.1
    retrieval = 16 * 0.40 * hours
    assert rented["price_basis"] == "rented" and rented["usd_per_chip_hour"] == 2.99
    assert rented["owned_capex_usd_per_query"] == pytest.approx(capex / n, rel=1e-12)
    assert rented["owned_energy_usd_per_query"] == pytest.approx(energy / n, rel=1e-12)
    assert rented["owned_cost_per_query"] == pytest.approx((capex + energy + retrieval) / n,
                                                          rel=1e-12)
    owned = run(base.model_copy(update={"economics": base.economics.model_copy(
        update={"price": "owned"})})).summary
    assert owned["price_basis"] == "owned"
    assert owned["cost_per_query_provisioned"] == pytest.approx(rented["owned_cost_per_query"],
                                                                rel=1e-12)
    assert owned["revenue_share"] == pytest.approx(rented["owned_revenue_share"], rel=1e-12)
    # the simulation itself does not depend on how the fleet is paid for
    assert owned["latency_p99_s"] == rented["latency_p99_s"]


def test_hosts_add_their_constant_draw_to_the_owned_energy():
    """2 kW per 8-chip server on 48 chips (6 servers) for the 240 s window: 0.8 kWh, at the
    PUE and price; the accelerators' own measured energy does not move."""
    sets = ["run.duration_s=300", "run.warmup_s=60", "llm.replicas=12",
            "economics.owned.pue=1.3", "economics.owned.usd_per_kwh=0.1"]
    path = SCENARIOS / "modern_two_stage.toml"
    without = run(loading.load(path, sets), tables="discard").summary
    with_hosts = run(loading.load(path, [*sets, "economics.owned.server_w=2000"]),
                     tables="discard").summary
    assert without["host_energy_kwh"] == 0.0
    assert with_hosts["host_energy_kwh"] == pytest.approx(2.0 * 6 * 240 / 3600, rel=1e-12)
    assert with_hosts["llm_energy_kwh"] == without["llm_energy_kwh"]
    n = with_hosts["completed"]
    assert with_hosts["owned_energy_usd_per_query"] - without["owned_energy_usd_per_query"] \
        == pytest.approx(0.8 * 1.3 * 0.1 / n, rel=1e-9)
