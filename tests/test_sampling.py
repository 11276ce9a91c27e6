"""Sampled shards: k of S shards estimate the fleet, with intervals that cover the full run
and shrink like 1/sqrt(k)."""

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from sim.errors import SearchsimError
from sim.runner.api import run
from sim.runner.sampling import chosen_shards, estimate, interval
from sim.scenario import loading
from tests.conftest import SCENARIOS

BASE = ["run.duration_s=600", "run.warmup_s=100", "limits.deadline_s=25", "limits.slo_s=25",
        "llm.replicas=8", "run.shards=8", "run.jobs=2"]


def test_extensive_figures_scale_and_intensive_ones_average():
    shards = [{"offered_qps": q, "accelerator_utilization": u, "stable": True, "model": "m"}
              for q, u in ((2.0, 0.5), (4.0, 0.7), (3.0, 0.6))]
    est = estimate(shards, 12, [0, 5, 9])
    assert est["offered_qps"] == pytest.approx(12 * 3.0)
    assert est["accelerator_utilization"] == pytest.approx(0.6)
    half = student_t.ppf(0.975, 2) * 1.0 / math.sqrt(3) * math.sqrt(1 - 3 / 12)
    assert est["offered_qps_ci95"] == pytest.approx([12 * (3 - half), 12 * (3 + half)])
    assert est["sampled_shards"] == {"shards": 12, "sampled": 3, "indices": [0, 5, 9]}
    assert est["stable"] is True and est["model"] == "m"


def test_the_interval_shrinks_like_one_over_root_k_and_closes_at_k_equals_s():
    rng = np.random.default_rng(3)
    population = rng.normal(10.0, 2.0, 4096)
    widths = {}
    for k in (16, 64, 256):
        halves = []
        for _ in range(200):
            lo, hi = interval(rng.choice(population, k, replace=False), len(population))
            halves.append((hi - lo) / 2)
        widths[k] = np.mean(halves)
    # quartering k halves the width (t quantiles and the finite-population factor aside)
    for small, big in ((16, 64), (64, 256)):
        expect = (student_t.ppf(0.975, small - 1) / student_t.ppf(0.975, big - 1) * 2
                  * math.sqrt((1 - small / 4096) / (1 - big / 4096)))
        assert widths[small] / widths[big] == pytest.approx(expect, rel=0.1)
    lo, hi = interval(population[:64], 64)
    assert lo == hi == pytest.approx(population[:64].mean())


def test_the_sample_is_chosen_by_the_seed():
    s = loading.load(SCENARIOS / "modern_two_stage.toml", [*BASE, "run.sample_shards=3"])
    a, b = chosen_shards(s), chosen_shards(s.model_copy(update={"run": s.run.model_copy(
        update={"sample_seed": 9})}))
    assert len(a) == len(set(a)) == 3 and a == sorted(a) and a != b
    assert chosen_shards(s) == a


@pytest.fixture(scope="module")
def full():
    return run(loading.load(SCENARIOS / "modern_two_stage.toml", BASE), tables="discard").summary


def test_sampled_intervals_cover_the_full_run(full):
    """4 of 8 shards, 10 different samples of the same system: the 95% interval of each
    additive figure covers the full run's value in at least 7 of them (for independent
    samples at 95% coverage fewer has probability 1e-3; these overlap, being 4 of 8), and
    every estimate is within a quarter of it."""
    covered = {key: 0 for key in ("offered_qps", "llm_power_w_mean", "completed")}
    for seed in range(10):
        est = run(loading.load(SCENARIOS / "modern_two_stage.toml",
                               [*BASE, "run.sample_shards=4", f"run.sample_seed={seed}"]),
                  tables="discard").summary
        for key in covered:
            lo, hi = est[f"{key}_ci95"]
            covered[key] += lo - 1e-9 <= full[key] <= hi + 1e-9
            assert est[key] == pytest.approx(full[key], rel=0.25)
    assert all(n >= 7 for n in covered.values()), covered


def test_all_shards_sampled_close_the_interval_and_agree_with_the_full_run(full):
    """k = S: the interval closes; each shard drew its own queries (its own streams, at
    1/S of the rate), so the fleet figures agree with the full run's to sampling noise."""
    from sim.runner.sampling import run_sampled
    s = loading.load(SCENARIOS / "modern_two_stage.toml", [*BASE, "run.sample_shards=8"])
    est = run_sampled(s, tables="discard").summary
    for key in ("offered_qps", "llm_power_w_mean", "completed"):
        lo, hi = est[f"{key}_ci95"]
        assert lo == pytest.approx(est[key]) and hi == pytest.approx(est[key])
        assert est[key] == pytest.approx(full[key], rel=0.03), key


def test_a_shard_drawing_its_own_queries_draws_its_share_of_the_key_space():
    from sim.serving.arrivals import QueryKeys
    from sim.serving.sharding import shard_of
    whole = QueryKeys(100_000, 0.9, 0.0, np.random.default_rng(1)).sample(400_000)
    own = QueryKeys(100_000, 0.9, 0.0, np.random.default_rng(2), shard=(3, 8)).sample(50_000)
    assert (shard_of(own, 8) == 3).all()
    kept = whole[shard_of(whole, 8) == 3]  # what filtering the whole stream keeps
    top = np.bincount(kept).argmax()
    assert np.mean(own == top) == pytest.approx(np.mean(kept == top), rel=0.1)


def test_shards_must_be_identical_to_be_sampled():
    s = loading.load(SCENARIOS / "modern_two_stage.toml",
                     [*BASE, "llm.replicas=10", "run.sample_shards=2"])
    with pytest.raises(SearchsimError, match="a multiple of run.shards"):
        run(s)


def test_sampled_percentiles_are_those_of_the_pooled_values():
    """The sampled shards' tables hold every value the summary pools: the completed window
    queries' latencies and the served window requests' times to first token."""
    s = loading.load(SCENARIOS / "modern_two_stage.toml",
                     [*BASE, "run.sample_shards=3", "retrieval.servers=16"])
    res = run(s)
    q, r = res.queries.to_pandas(), res.requests.to_pandas()
    latency = q.latency_s[q.in_window & q.done.notna()].to_numpy()
    served = r.in_window & ~r.cancelled & ~r.unfinished
    ttft = r.ttft_s[served].dropna().to_numpy()
    summ = res.summary
    got = [summ[k] for k in ("latency_p50_s", "latency_p95_s", "latency_p99_s")]
    assert got == pytest.approx(np.percentile(latency, [50, 95, 99]), rel=1e-12)
    assert summ["latency_mean_s"] == pytest.approx(latency.mean(), rel=1e-12)
    assert [summ["ttft_p50_s"], summ["ttft_p99_s"]] == pytest.approx(
        np.percentile(ttft, [50, 99]), rel=1e-12)
    assert summ["latency_p99_s_ci95"][0] <= summ["latency_p99_s"] <= \
        summ["latency_p99_s_ci95"][1]
