"""Every figure of docs/modelling.md sections 1-4, from its inputs, at its printed precision."""

import pytest

from sim.model import paper


@pytest.fixture(scope="module")
def f():
    return paper.figures()


def test_api_estimate(f):
    assert round(f["chatgpt_equivalent_cost_per_query"], 4) == 0.0096
    assert round(f["two_stage_cost_per_query"], 4) == 0.0656
    assert round(f["revenue_per_query"], 3) == 0.048
    assert round(f["revenue_per_query_unrounded"], 4) == 0.0472
    assert round(f["two_stage_cost_to_revenue"], 2) == 1.38  # 1.3769: the article's ~1.37-1.4x
    assert round(f["optimized_cost_per_query"], 4) == 0.0082
    assert round(f["optimized_revenue_share"], 2) == 0.17


def test_annual_searches_from_penetration(f):
    assert f["annual_searches"] == pytest.approx(2.1176e12, rel=1e-4)


def test_inference_cost(f):
    assert round(f["a100_seconds_per_1k_tokens"], 3) == 5.267
    assert round(f["a100_cost_per_1k_tokens"], 4) == 0.0035
    assert round(f["a100_share_of_api_price"], 2) == 0.18
    # TPU v4 at its 1-year price gives a "similar" figure
    assert f["tpu_v4_cost_per_1k_tokens"] == pytest.approx(f["a100_cost_per_1k_tokens"], rel=0.1)


def test_training_cost(f):
    cost = f["training_cost_usd"]
    assert set(cost) == {"gpt3", "gopher", "mt_nlg", "chinchilla", "palm", "lamda", "jurassic_1"}
    assert round(cost["gpt3"] / 1e6, 1) == 1.4
    assert round(cost["palm"] / 1e6, 1) == 11.2


def test_training_memory(f):
    assert f["gpt3_training_memory_bytes"] == pytest.approx(3.5e12)
    assert f["bert_large_training_memory_bytes"] == pytest.approx(6.8e9)
    assert f["min_h100_for_gpt3_training"] == 44  # ceil(3.5 TB / 80 GB)


def test_hardware_trends_and_2020_run(f):
    assert round(f["flops_per_dollar_per_year"], 2) == 0.22
    assert round(f["flops_per_watt_per_year"], 2) == 0.34
    assert 0.15 < f["gpt3_2020_implied_mfu"] < 0.25


def test_chinchilla_claim(f):
    loss = f["chinchilla_loss"]
    assert round(f["params_term_1t"], 2) == 0.03
    assert round(f["data_term_300b"], 2) == 0.25
    assert loss["one_trillion_on_300b"] > loss["chinchilla"]
    assert set(loss) == {"gpt3", "gopher", "mt_nlg", "chinchilla", "palm", "lamda",
                         "jurassic_1", "one_trillion_on_300b"}


def test_jasper(f):
    assert f["jasper_usd_per_1k_tokens"] == pytest.approx(0.615)


def test_inputs_drive_the_figures():
    """Change an input, the figure moves: nothing is a printed constant."""
    a = paper.article_inputs()
    a["api"]["cache_hit_rate"] = 0.6
    changed = paper.figures(paper.reproduce(a))
    base = paper.figures()
    ratio = changed["two_stage_cost_per_query"] / base["two_stage_cost_per_query"]
    assert ratio == pytest.approx(0.4 / 0.7)


def test_the_article_mfu_default_is_the_articles_input():
    from sim.model.defaults import ARTICLE_MFU
    from sim.model.paper import article_inputs
    from sim.scenario.schema import LLM
    assert ARTICLE_MFU == article_inputs()["inference"]["mfu"] == LLM().mfu
