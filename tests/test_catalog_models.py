"""The model catalog's newer entries: every model through its own description."""

import pytest

from sim.errors import SearchsimError
from sim.model import catalog
from sim.scenario import loading

MOE = ["qwen3_30b_a3b", "qwen3_235b_a22b", "deepseek_v3", "gpt_oss_120b", "gpt_oss_20b",
       "llama4_maverick", "mixtral_8x7b"]


def test_deepseeks_latent_cache_is_70272_bytes_a_token():
    """61 layers x (512 latent + 64 rotary key) x 2 bytes, not 2 x 61 x 128 x 128 x 2."""
    m = catalog.model("deepseek_v3")
    assert m.kv_bytes_per_token() == 61 * 576 * 2 == 70_272
    assert m.kv_bytes_per_token(1.0) == 35_136  # an FP8 cache


@pytest.mark.parametrize("tokens, touched", [(1, 8.0), (2, 128 * (1 - (120 / 128) ** 2)),
                                              (64, 125.94)])
def test_experts_touched_by_a_batch(tokens, touched):
    """E (1 - (1 - k/E)^B): one token reads its k experts; 64 tokens nearly all 128."""
    assert catalog.model("qwen3_30b_a3b").experts_touched(tokens) == pytest.approx(
        touched, abs=0.01)
    assert round(catalog.model("qwen3_30b_a3b").experts_touched(64)) == 126


def test_a_dense_model_has_no_experts():
    with pytest.raises(ValueError, match="not a mixture-of-experts"):
        catalog.model("llama31_8b").experts_touched(8)


@pytest.mark.parametrize("key", MOE)
def test_every_moe_model_needs_fitted_expert_terms(key):
    """On the default engine (vLLM V1: no mixture-of-experts fit) a roofline scenario is
    refused, not priced as dense; TensorRT-LLM's profile has Hopper's fits."""
    m = catalog.model(key)
    assert m.is_moe and m.active_params_b < m.params_b
    llm = {"model": key, "hardware": "h200", "tp": 8, "step_model": "roofline",
           "precision": "fp8"}
    with pytest.raises(SearchsimError, match="mixture-of-experts terms fitted for hopper"):
        loading.from_dict({"llm": llm, "economics": {"price": 1.0}})
    s = loading.from_dict({"llm": {**llm, "engine": "trtllm"}, "economics": {"price": 1.0}})
    assert s.llm.model == key


def test_the_article_framework_prices_a_mixture_of_experts_by_its_active_parameters():
    from sim.model import perf
    m, hw = catalog.model("deepseek_v3"), catalog.accelerator("h200")
    step = perf.make("article", m, hw, 8, mfu=0.5)
    assert step.seconds_per_token == pytest.approx(2 * 37e9 / (hw.peak_flops * 8 * 0.5))


def test_hugging_face_ids_find_their_models():
    for alias, key in (("deepseek-ai/DeepSeek-R1", "deepseek_v3"),
                       ("meta-llama/Llama-3.3-70B-Instruct", "llama31_70b"),
                       ("openai/gpt-oss-120b", "gpt_oss_120b"), ("Qwen/Qwen3-8B", "qwen3_8b")):
        assert catalog.find(catalog.models(), alias).key == key


def test_moe_step_terms_by_hand():
    """Qwen3-30B-A3B on one H100 (bare profile: catalog efficiencies 0.69 / 0.78): a token
    computes with the 3.35B active parameters; a decode step of 64 sequences reads the
    resident weights and the 125.94 experts its tokens touch, not all 30.5B or 3.35B."""
    from sim.model.perf import RooflineStep
    m, hw = catalog.model("qwen3_30b_a3b"), catalog.accelerator("h100")
    step = RooflineStep(m, hw, 1)
    rate = hw.hbm_bytes_per_s * 0.78
    touched = 128 * (1 - (1 - 8 / 128) ** 64)
    weights = (m.resident_params() + touched * m.expert_params) * 2.0 / rate
    kv = m.kv_bytes_per_token() / rate * (64 * 1000 + 64)
    assert step.memory_time(0, 64, 64 * 1000) == pytest.approx(weights + kv, rel=1e-12)
    assert step.compute_time(64, 0.0, 0, 0) == pytest.approx(
        2 * 3.35e9 * 64 / (hw.peak_flops * 0.69), rel=1e-12)
    # the closed form of a decode run still equals iteration-by-iteration pricing
    lines = step.decode_lines(64, 64_000)
    assert lines[2] == pytest.approx(step.memory_time(0, 64, 64_000), rel=1e-12)


def test_experimental_moe_is_opt_in():
    from sim.runner.api import run
    s = loading.from_dict({"llm": {"model": "qwen3_30b_a3b", "hardware": "h100", "tp": 1,
                                   "experimental_moe": True},
                           "run": {"duration_s": 30.0, "warmup_s": 1.0},
                           "economics": {"price": 2.0}})
    assert run(s, tables="discard").summary["completed"] > 0


def test_sliding_window_layers_keep_no_growing_cache():
    """gpt-oss alternates full and 128-token windowed attention: only the 18 full layers'
    KV grows with the context (8 KV heads x 64 x 2 x 2 bytes each)."""
    m = catalog.model("gpt_oss_120b")
    assert m.full_attention_layers == 18
    assert m.kv_bytes_per_token() == 2 * 18 * 8 * 64 * 2
