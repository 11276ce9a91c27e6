"""Every bundled scenario loads, resolves and runs (briefly) end to end."""

import tomllib

import pytest

from sim.runner.api import run
from sim.scenario import loading
from tests.conftest import SCENARIOS

FILES = sorted(SCENARIOS.glob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bundled_scenario_runs(path):
    s = loading.load(path, ["run.duration_s=400", "run.warmup_s=50", "run.drain_s=200"])
    res = run(s)
    summ = res.summary
    assert summ["completed"] > 0 and summ["stable"]
    assert summ["cost_per_query_provisioned"] > 0
    # the resolved scenario round-trips through TOML to the same object
    assert loading.from_dict(tomllib.loads(loading.dumps(s))) == s


def test_article_scenarios_are_the_articles_assumptions():
    for name in ("chatgpt_equivalent", "two_stage"):
        s = loading.load(SCENARIOS / f"{name}.toml")
        assert (s.llm.model, s.llm.hardware, s.llm.step_model, s.llm.mfu) == (
            "gpt3_175b", "a100_40gb", "article", 0.213)
        assert (s.cache.policy, s.cache.hit_rate, s.economics.price) == (
            "bernoulli", 0.30, "aws-p4d-1y")
    assert loading.load(SCENARIOS / "chatgpt_equivalent.toml").architecture.samples == 5
    assert loading.load(SCENARIOS / "two_stage.toml").architecture.k == 10
