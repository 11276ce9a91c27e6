"""Every bundled scenario loads, resolves and runs (briefly) end to end."""

import tomllib

import pytest

from sim import config, engine, tomlwrite
from tests.conftest import SCENARIOS, SHARED_TRACES

FILES = sorted(SCENARIOS.glob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bundled_scenario_runs(path):
    if "trace" in path.read_text() and not SHARED_TRACES.is_dir():
        pytest.skip("../shared/traces is absent (CI always has it)")
    s = config.load(path, ["run.duration_s=400", "run.warmup_s=50", "run.drain_s=200"])
    res = engine.run(s)
    summ = res.summary
    assert summ["completed"] > 0 and summ["stable"]
    assert summ["cost_per_query_provisioned"] > 0
    # the resolved scenario round-trips through TOML to the same object
    assert config.from_dict(tomllib.loads(tomlwrite.dumps(config.to_dict(s)))) == s


def test_article_scenarios_are_the_articles_assumptions():
    for name in ("chatgpt_equivalent", "two_stage"):
        s = config.load(SCENARIOS / f"{name}.toml")
        assert (s.llm.model, s.llm.hardware, s.llm.step_model, s.llm.mfu) == (
            "gpt3_175b", "a100_40gb", "article", 0.213)
        assert (s.cache.policy, s.cache.hit_rate, s.economics.price) == (
            "bernoulli", 0.30, "aws-p4d-1y")
    assert config.load(SCENARIOS / "chatgpt_equivalent.toml").architecture.samples == 5
    assert config.load(SCENARIOS / "two_stage.toml").architecture.k == 10
