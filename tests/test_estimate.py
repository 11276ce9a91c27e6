"""Estimates before long work: simulated LLM requests by hand, and a line only past a minute."""

import pytest

from sim.runner import estimate
from sim.scenario import loading
from tests.conftest import SCENARIOS


def test_requests_of_a_run_by_hand():
    s = loading.load(SCENARIOS / "modern_two_stage.toml")
    assert estimate.run_requests(s) == pytest.approx(
        s.workload.rate_qps * s.run.duration_s * s.architecture.k)
    g = loading.load(SCENARIOS / "google_scale_two_stage.toml")
    peak = max(g.workload.profile)
    assert estimate.run_requests(g) == pytest.approx(
        158500 * peak * 1800 * 10 * 4 / 7925)  # 4 sampled shards of 7,925
    assert estimate.run_requests(loading.load(SCENARIOS / "azure_conv_replay.toml")) is None
    cached = loading.load(SCENARIOS / "modern_two_stage.toml", ["llm.prefix_cache={}"])
    assert estimate.run_requests(cached) == pytest.approx(
        estimate.run_requests(loading.load(SCENARIOS / "modern_two_stage.toml"))
        / estimate.PREFIX_CACHE_SPEED)


def test_sizing_counts_every_probe_and_seed():
    s = loading.load(SCENARIOS / "modern_two_stage.toml")
    one = estimate.run_requests(s)
    # [4, 16]: the top, ceil(log2 13) = 4 bisection steps, one below the top
    assert estimate.sizing_requests(s, 3, 4, 16, 2) == pytest.approx(one * 3 * 6 * 2)


def test_a_line_only_for_work_over_a_minute():
    fast = estimate.REQUESTS_PER_WALL_S * 60
    assert estimate.say(fast, 1) is None
    assert estimate.say(None, 1) is None
    line = estimate.say(fast * 10, 2)
    assert line is not None and "about 5 min on 2 processes" in line
