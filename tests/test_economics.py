"""Properties of the cost framework (hypothesis) and the catalog's integrity."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.model import catalog
from sim.model import economics as ec

pos = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
params = st.floats(min_value=1e6, max_value=1e13)
mfu = st.floats(min_value=0.01, max_value=1.0)


@given(params, pos, mfu, pos)
def test_cost_linear_in_params_and_price_inverse_in_mfu(n, price, u, k):
    peak = 312e12
    base = ec.cost_per_token(n, peak, u, price)
    assert ec.cost_per_token(2 * n, peak, u, price) == pytest.approx(2 * base)
    assert ec.cost_per_token(n, peak, u, k * price) == pytest.approx(k * base)
    assert ec.cost_per_token(n, peak, u / 2, price) == pytest.approx(2 * base)


@given(params, st.floats(min_value=1e9, max_value=1e14), st.floats(1.01, 10))
def test_chinchilla_loss_decreases_in_n_and_d(n, d, k):
    fit = ec.ChinchillaFit()
    assert fit.loss(n * k, d) < fit.loss(n, d)
    assert fit.loss(n, d * k) < fit.loss(n, d)
    assert fit.loss(n, d) > fit.E


@given(params, st.floats(min_value=1e9, max_value=1e14), mfu, pos)
def test_training_is_three_times_inference_per_token(n, d, u, price):
    per_token = ec.cost_per_token(n, 275e12, u, price)
    assert ec.training_cost(n, d, 275e12, u, price) == pytest.approx(3 * per_token * d)


def test_reductions_and_cache():
    assert ec.apply_reductions(1.0, [0.25, 0.5]) == 0.125
    assert ec.apply_reductions(3.0, []) == 3.0
    assert ec.cost_after_cache_and_margin(1.0, 0.3, 0.75) == pytest.approx(0.175)


def test_billed_tokens_shapes():
    assert ec.billed_tokens(50, 400, 5) == 2050
    assert ec.billed_tokens(50, 400, 10, 1000) == 14050


def test_in_house_price():
    # $30,000 over 4 years plus 700 W at PUE 1.2 and $0.10/kWh
    usd_h = ec.in_house_usd_per_hour(30000, 4, 700, 1.2, 0.10)
    assert usd_h == pytest.approx(30000 / (4 * 8766) + 0.084)


def test_min_processors_rounds_up():
    assert ec.min_processors(80e9, 80e9) == 1
    assert ec.min_processors(80e9 + 1, 80e9) == 2


def test_mfu_out_of_range():
    with pytest.raises(ValueError):
        ec.processor_seconds(1.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        ec.processor_seconds(1.0, 1.0, 1.5)


def test_catalog_has_the_required_entries():
    accs = catalog.accelerators()
    for key in ["v100", "a100_40gb", "a100_80gb", "h100", "h200", "tpu_v4", "l4"]:
        assert key in accs and accs[key].prices
    assert accs["h100"].peak_tflops == 989.0  # dense, never the sparse 1,979
    for p in (p for a in accs.values() for p in a.prices):
        assert p.date and p.source and p.provider
    models = catalog.models()
    for key in ["gpt3_175b", "gopher_280b", "mt_nlg_530b", "chinchilla_70b", "palm_540b",
                "lamda_137b", "jurassic1_178b", "llama2_7b", "llama2_13b", "llama2_70b",
                "llama3_8b", "llama3_70b"]:
        assert key in models and models[key].source


def test_catalog_param_counts_match_their_shapes():
    """12 * layers * d_model^2 approximates N for the classic GPT shapes (within 10%)."""
    for key in ["gpt3_175b", "gopher_280b", "chinchilla_70b", "jurassic1_178b"]:
        m = catalog.model(key)
        approx = 12 * m.layers * m.d_model**2
        assert math.isclose(approx, m.params, rel_tol=0.1), key


def test_kv_bytes_per_token():
    m = catalog.model("llama2_70b")  # GQA with 8 KV heads
    assert m.kv_bytes_per_token() == 2 * 80 * 8 * 128 * 2


def test_an_owned_chip_hour_is_its_capital_plus_its_energy():
    from sim.model.economics import HOURS_PER_YEAR, OwnedCost
    c = OwnedCost.of(10000.0, 2000.0, 4.0, 1.2, 0.08)
    assert c.usd_per_chip_hour_at(400.0) == pytest.approx(
        12000.0 / (4 * HOURS_PER_YEAR) + 0.4 * 1.2 * 0.08, rel=1e-15)
    assert c.usd_per_chip_hour_at(0.0) == c.capex_usd_per_chip_hour


def test_splitwise_power_is_in_the_catalog_and_the_paper_prices_an_owned_a100():
    from sim.model import catalog, paper
    a100, h100 = catalog.accelerator("a100_80gb").power, catalog.accelerator("h100").power
    assert (a100.idle_w, a100.prefill_w, a100.decode_w) == (63, 400, 250)
    assert (h100.idle_w, h100.prefill_w, h100.decode_w) == (75, 700, 380)
    for hw in catalog.accelerators().values():  # idle < token phase <= prompt phase
        assert hw.power.idle_w < hw.power.decode_w <= hw.power.prefill_w <= hw.board_power_w
    own, a100_40 = catalog.ownership(), catalog.accelerator("a100_40gb")
    owned_h = (a100_40.purchase_usd / (own.years * 8766.0)
               + a100_40.power.prefill_w / 1000 * own.pue * own.usd_per_kwh)
    fig = paper.figures(paper.reproduce())
    assert fig["a100_in_house_usd_per_chip_hour"] == pytest.approx(owned_h, rel=1e-12)
    assert fig["in_house_to_cloud"] == pytest.approx(
        owned_h / a100_40.price("aws-p4d-1y").usd_per_chip_hour, rel=1e-12)


def test_an_owned_chip_hour_includes_its_share_of_the_host():
    """One home for the owned chip-hour at full power: the chip's 700 W plus 8 kW / 8 chips
    of host, at the PUE and price; pre-run prices and sizing rankings both use it."""
    from sim.runner.sizing import _priced
    from sim.scenario import loading
    base = {"llm": {"model": "llama3_70b", "hardware": "h100", "tp": 4},
            "economics": {"price": "owned", "owned": {"pue": 1.25, "usd_per_kwh": 0.1}}}
    plain = loading.from_dict(base)
    hosts = loading.from_dict({**base, "economics": {"price": "owned", "owned": {
        "pue": 1.25, "usd_per_kwh": 0.1, "server_w": 8000.0}}})
    extra = 1.0 * 1.25 * 0.1  # 1 kW a chip for an hour
    assert hosts.usd_per_chip_hour - plain.usd_per_chip_hour == pytest.approx(extra)
    assert _priced(hosts, "h100", "owned").usd_per_chip_hour == pytest.approx(
        hosts.usd_per_chip_hour)
