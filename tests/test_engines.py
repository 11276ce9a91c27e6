"""Engines as data: the default, resolution key by key, clear refusals, the CLI."""

import json
import tomllib

import pytest
from typer.testing import CliRunner

from cli.main import app
from sim.errors import SearchsimError
from sim.model import catalog, perf
from sim.model import engine as engines
from sim.scenario import loading
from sim.scenario.schema import LLM

runner = CliRunner()


def test_every_shipped_engine_loads_with_sources():
    names = engines.shipped()
    assert {"vllm-v0", "vllm-v1", "sglang", "trtllm", "fastertransformer", "splitwise"} <= \
        set(names)
    for name in names:
        e = engines.load(name)
        assert e.sources and e.date and e.description, name
        assert e.batching in ("continuous", "static")


def test_a_scenario_without_an_engine_gets_the_default_and_says_so():
    s = loading.from_dict({"llm": {"model": "llama3_8b", "hardware": "h100", "tp": 1}})
    assert s.llm.engine == engines.DEFAULT == "vllm-v1"
    resolved = tomllib.loads(loading.dumps(s))["llm"]
    assert resolved["engine"] == "vllm-v1"
    assert resolved["engine_options"]["max_num_seqs"] == 1024
    assert resolved["engine_options"]["block_size"] == 16
    assert (s.llm.batching, s.llm.max_batch, s.llm.chunk_tokens, s.llm.profile) == (
        "continuous", 1024, 8192, "vllm-v1")
    assert loading.from_dict(tomllib.loads(loading.dumps(s))) == s  # it reads back the same


def test_older_keys_and_engine_options_override_the_engine():
    llm = LLM(engine="vllm-v0", max_batch=64, engine_options={"block_size": 32})
    assert llm.engine_spec.get("max_num_seqs") == 64  # the older key, under its engine name
    assert llm.engine_spec.block_size == 32
    assert llm.chunk_tokens is None  # prompt-first: whole prompts, no chunks
    assert LLM(engine="sglang", chunk_tokens=512).engine_spec.get(
        "max_num_batched_tokens") == 512


@pytest.mark.parametrize("llm, message", [
    ({"engine": "vllm"}, "llm.engine: got 'vllm', expected one of: fastertransformer"),
    ({"engine": "fastertransformer", "engine_options": {"block_size": 16}},
     "llm.engine_options.block_size: got 'block_size', expected a key engine "
     "'fastertransformer' has"),
    ({"engine_options": {"block_size": 0}},
     "llm.engine_options.block_size: got 0, expected an integer >= 1"),
    ({"engine_options": {"policy": "lifo"}},
     "llm.engine_options.policy: got 'lifo', expected 'mixed' or 'prompt_first'"),
])
def test_bad_engines_are_refused_in_one_line(llm, message):
    with pytest.raises(SearchsimError) as exc:
        loading.from_dict({"llm": llm})
    assert len(exc.value.lines) == 1 and exc.value.lines[0].startswith(message)


def test_the_cli_refuses_an_unknown_engine_with_exit_2(tmp_path):
    res = runner.invoke(app, ["run", "scenarios/modern_two_stage.toml", "--set",
                              "llm.engine='vllm'", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "did you mean 'vllm-v1'?" in res.output
    assert not (tmp_path / "r").exists()


def test_kv_cache_sized_as_vllm_sizes_it():
    """vLLM 0.19 on an RTX 4090 with Llama-3.1-8B at 0.9 utilization reported 2,588 blocks
    of 16 tokens: 25.25 GB x 0.9 less 16.06 GB of weights and the 1.24 GB reserve, at
    128 KiB a token, rounded down to whole blocks."""
    e = engines.resolve("vllm-v1", {"block_size": 16, "gpu_memory_utilization": 0.9})
    kv = perf.kv_capacity(catalog.model("llama31_8b"), catalog.accelerator("rtx_4090"), 1,
                          2.0, None, e)
    assert kv % 16 == 0
    assert kv == pytest.approx(41_408, rel=0.01)


def test_mixture_of_experts_is_refused_on_an_engine_without_expert_terms():
    """vLLM V1's profile has no fitted grouped-expert efficiency for the RTX PRO 6000 at
    BF16: refused, the way out named."""
    with pytest.raises(SearchsimError, match="blackwell_rtx:bf16.*experimental_moe"):
        loading.from_dict({"llm": {"model": "qwen3_30b_a3b", "hardware": "rtx_pro_6000",
                                   "tp": 1, "step_model": "roofline"},
                           "economics": {"price": 1.0}})


def test_engines_command_lists_every_engine():
    res = runner.invoke(app, ["engines", "--json"])
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert data["default"] == "vllm-v1"
    assert {e["name"] for e in data["engines"]} == set(engines.shipped())
    text = runner.invoke(app, ["engines", "vllm-v0"]).output
    assert "prompt_first" in text and "watermark" in text


def test_an_engine_changes_the_answer():
    """The same fleet under the 2023 stack and vLLM V1: V1's smaller per-layer cost gives a
    faster time per output token."""
    base = ["run.duration_s=120", "run.warmup_s=10", "workload.rate_qps=2"]
    old = loading.load("scenarios/modern_chatgpt_equivalent.toml", base)
    new = loading.load("scenarios/modern_chatgpt_equivalent.toml",
                       [*base, "llm.engine='vllm-v1'"])
    from sim.runner.api import run
    a, b = run(old).summary, run(new).summary
    assert b["tpot_mean_s"] < 0.8 * a["tpot_mean_s"]
