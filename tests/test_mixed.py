"""Mixed fleets: replica groups of different hardware in one pool, a router that weighs each
replica by its speed, costs and capacity summed over groups, and sizing over mixes."""

import pytest

from sim.model import catalog, pricing
from sim.runner import sizing
from sim.runner.api import run
from sim.scenario import loading
from tests.conftest import SCENARIOS

SHORT = ["run.duration_s=400", "run.warmup_s=60", "run.drain_s=200", "limits.slo_s=25",
         "limits.deadline_s=25"]
PATH = SCENARIOS / "modern_two_stage.toml"


def test_a_fleet_split_into_identical_groups_is_the_same_fleet():
    one = run(loading.load(PATH, [*SHORT, "llm.replicas=8"]))
    two = run(loading.load(PATH, [*SHORT, "llm.replicas=5",
                                  'llm.groups=[{hardware="h100", tp=4, replicas=3}]']))
    assert two.requests.to_pandas().equals(one.requests.to_pandas())
    assert two.queries.to_pandas().equals(one.queries.to_pandas())
    for key, value in one.summary.items():
        if key == "fleet":
            continue
        assert two.summary[key] == (pytest.approx(value, rel=1e-12)
                                    if isinstance(value, float) else value), key


def test_the_router_sends_a_faster_replica_proportionally_more():
    s = loading.load(PATH, [*SHORT, "llm.replicas=4",
                            'llm.groups=[{hardware="a100_80gb", tp=4, replicas=4}]'])
    res = run(s)
    per = res.requests.to_pandas().groupby("replica").size()
    fast, slow = per[per.index < 4].mean(), per[per.index >= 4].mean()
    from sim.runner.fleet import replica_groups
    groups = replica_groups(s, catalog.model(s.llm.model))
    assert groups[0].speed == 1.0 and groups[1].speed < 1.0
    assert fast / slow == pytest.approx(1 / groups[1].speed, rel=0.25)
    summ = res.summary
    assert summ["accelerators"] == 32 and summ["fleet"] == \
        "4 x h100 (tp 4) + 4 x a100_80gb (tp 4)"
    h100 = catalog.accelerator("h100").price("lambda-on-demand").usd_per_chip_hour
    a100 = pricing.chip_hour("a100_80gb", "on-demand")  # the key's kind
    retrieval = 16 * 0.40
    assert summ["fleet_usd_per_hour"] == pytest.approx(16 * h100 + 16 * a100 + retrieval)
    assert summ["usd_per_chip_hour"] == pytest.approx((16 * h100 + 16 * a100) / 32)


def test_capacity_and_owned_capital_sum_over_groups():
    mixed = loading.load(PATH, [*SHORT, "llm.replicas=4",
                                'llm.groups=[{hardware="a100_80gb", tp=4, replicas=4}]'])
    summ = run(mixed).summary
    alone = {hw: run(loading.load(PATH, [*SHORT, "llm.replicas=4", f'llm.hardware="{hw}"',
                                         'economics.price="on-demand"'])).summary
             for hw in ("h100", "a100_80gb")}
    # capacity at full batches is additive (the mean lengths differ a little between runs)
    assert summ["sustainable_qps"] == pytest.approx(
        alone["h100"]["sustainable_qps"] + alone["a100_80gb"]["sustainable_qps"], rel=0.03)
    hours, n = 340 / 3600, summ["completed"]
    capex = 16 * (30000 / (4 * 8766)) + 16 * (15000 / (4 * 8766))
    assert summ["owned_capex_usd_per_query"] == pytest.approx(capex * hours / n, rel=1e-12)


def test_a_mixed_candidate_splits_its_replicas_by_the_share():
    s = loading.load(PATH, SHORT)
    single = sizing.candidates(s, ["h100"], [128], [4])
    mixes = sizing.mix_candidates(s, single, ["l4"], [8])
    assert [m.mix for m in mixes] == [("l4", 8, share) for share in sizing.MIX_SHARES]
    at10 = sizing.candidate_scenario(s, mixes[0], 10).llm  # a quarter on L4
    assert (at10.replicas, at10.groups[0].replicas, at10.chips) == (8, 2, 8 * 4 + 2 * 8)
    at2 = sizing.candidate_scenario(s, mixes[2], 2).llm  # one of each at least
    assert (at2.replicas, at2.groups[0].replicas) == (1, 1)


def _row(mix, cost):
    return {"candidate": {"mix": mix}, "result": None if cost is None else
            {"cost_per_query_provisioned": cost}}


def test_the_verdict_says_whether_a_mix_beats_the_best_single_fleet():
    assert sizing.mix_verdict([_row(None, 2.0), _row(("l4", 8, 0.25), 1.5)]) == \
        "a mixed fleet beats the best single-type fleet by 25.0% per query"
    assert sizing.mix_verdict([_row(None, 1.0), _row(("l4", 8, 0.25), 1.1)]).startswith(
        "no mix beats the best single-type fleet (the best mix costs 10.0% more")
    assert sizing.mix_verdict([_row(None, 1.0), _row(("l4", 8, 0.25), None)]) == \
        "no mixed fleet met the target"


def test_shards_share_out_every_group():
    from sim.runner.shards import shard_scenario
    s = loading.load(PATH, [*SHORT, "llm.replicas=4",
                            'llm.groups=[{hardware="a100_80gb", tp=4, replicas=6}]'])
    parts = [shard_scenario(s, i, 2).llm for i in range(2)]
    assert [p.replicas for p in parts] == [2, 2]
    assert [p.groups[0].replicas for p in parts] == [3, 3]
