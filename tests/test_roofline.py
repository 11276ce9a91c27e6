"""The roofline step model: the published FasterTransformer point and the roofline's shape."""

import json

import pytest

from cli.main import app
from sim.model import catalog
from sim.model import profile as profiles
from sim.model.perf import ArticleStep, RooflineStep, prefill_pairs
from sim.model.profile import FamilyFit, Profile

M13, A100 = catalog.model("gpt_13b"), catalog.accelerator("a100_40gb")
M70 = catalog.model("llama2_70b")


def test_bare_roofline_is_the_textbook_formula():
    """No profile: catalog efficiencies (0.69 compute, 0.78 memory), no overheads."""
    step = RooflineStep(M13, A100, 1)
    kv = 2 * 40 * 40 * 128 * 2
    decode = (M13.params * 2 + kv * (512 + 1)) / (A100.hbm_bytes_per_s * 0.78)
    assert float(step.iteration_time(0, 0, 1, 512)) == pytest.approx(decode, rel=1e-12)
    pairs = 512 * 513 / 2
    prefill = (2 * M13.params * 512 + 4 * 40 * 40 * 128 * pairs) / (A100.peak_flops * 0.69)
    assert float(step.iteration_time(512, pairs, 0, 0)) == pytest.approx(prefill, rel=1e-12)


def test_every_profile_term_exactly():
    fit = FamilyFit(flops_efficiency=0.5, memory_efficiency=0.8, allreduce_latency_us=10.0,
                    allreduce_gb_s=100.0)
    p = Profile("t", layer_overhead_us=100.0, iteration_overhead_ms=2.0, gemm_half_tokens=64.0,
                attention_efficiency=0.25, families={"a100": fit})
    hw = catalog.accelerator("a100_80gb")
    step = RooflineStep(M70, hw, 4, p)
    s_tok = 2 * M70.params / (4 * hw.peak_flops * 0.5)
    fixed = 80 * 100e-6 + 2e-3 + 64 * s_tok + 2 * 80 * 2 * 3 * 10e-6
    per_token_comm = 2 * 80 * 8192 * 2 * (2 * 3 / 4) / 100e9
    pairs = 4096 * 4097 / 2
    compute = s_tok * 4096 + 4 * 80 * 64 * 128 * pairs / (4 * hw.peak_flops * 0.25)
    got = float(step.iteration_time(4096, pairs, 0, 0))
    assert got == pytest.approx(compute + fixed + per_token_comm * 4096, rel=1e-12)
    memory = (2 * M70.params + 2 * 80 * 8 * 128 * 2 * (1000 + 1)) / (4 * hw.hbm_bytes_per_s * 0.8)
    got = float(step.iteration_time(0, 0, 1, 1000))
    assert got == pytest.approx(memory + fixed + per_token_comm, rel=1e-12)


def test_fastertransformer_13b_within_12_percent():
    """The published FasterTransformer point (in the fastertransformer profile's fit)."""
    step = RooflineStep(M13, A100, 1, profiles.load("fastertransformer"))
    prefill = float(step.iteration_time(512, prefill_pairs(512), 0, 0))
    decode = float(step.iteration_time(0, 0, 1, 512))
    assert prefill == pytest.approx(63.2e-3, rel=0.12)
    assert decode == pytest.approx(22.0e-3, rel=0.12)
    assert step.bound(512, prefill_pairs(512), 0, 0) == "compute"
    assert step.bound(0, 0, 1, 512) == "memory"


def test_decode_slow_while_memory_bound_then_linear_past_the_ridge():
    step = RooflineStep(M13, A100, 1)

    def t(b):
        return float(step.iteration_time(0, 0, b, b * 1))

    assert t(64) / t(1) < 1.2  # weights dominate: 64x the work for < 20% more time
    assert step.bound(0, 0, 64, 64) == "memory"
    assert step.bound(0, 0, 1024, 1024) == "compute"
    assert t(2048) / t(1024) == pytest.approx(2.0, rel=0.02)  # linear after the ridge


def test_tensor_parallel_speeds_up_but_pays_communication():
    one = RooflineStep(M13, A100, 1)
    four = RooflineStep(M13, A100, 4)
    t1, t4 = (float(s.iteration_time(0, 0, 8, 8 * 512)) for s in (one, four))
    assert t1 / 4 < t4 < t1
    comm4 = four.iteration_time(0, 0, 8, 8 * 512) - max(
        four.compute_time(0, 0, 8, 8 * 512), four.memory_time(0, 8, 8 * 512))
    assert comm4 > 0 and t1 == max(one.compute_time(0, 0, 8, 8 * 512),
                                   one.memory_time(0, 8, 8 * 512))


def test_article_model_is_proportional_to_tokens():
    step = ArticleStep(M13, A100, 2, 0.25)
    assert float(step.iteration_time(100, 0, 28, 999)) == pytest.approx(
        128 * 2 * M13.params / (2 * A100.peak_flops * 0.25))


def test_step_command(runner):
    res = runner.invoke(app, ["step", "--json", "--profile", "fastertransformer"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert data["prefill_s"] == pytest.approx(0.0632, rel=0.15)
    assert data["decode_step_s"] == pytest.approx(0.022, rel=0.15)
    assert data["decode_bound"] == "memory"
    res = runner.invoke(app, ["step", "--batch", "1,8,64"])
    assert res.exit_code == 0 and "decode step (ms)" in res.stdout
    res = runner.invoke(app, ["step", "--batch", "0"])
    assert res.exit_code == 2 and "--batch: got '0'" in res.stderr
    res = runner.invoke(app, ["step", "--model", "gpt9"])
    assert res.exit_code == 2 and "model: got 'gpt9'" in res.stderr
    # the engine's profile by default, and precision: FP8 weights read at one byte each
    args = ["step", "--json", "--model", "llama31_70b", "--hardware", "h200"]
    bf16 = json.loads(runner.invoke(app, args).stdout)
    fp8 = json.loads(runner.invoke(app, [*args, "--precision", "fp8"]).stdout)
    old = json.loads(runner.invoke(app, [*args, "--engine", "splitwise"]).stdout)
    assert (bf16["engine"], bf16["profile"], old["profile"]) == ("vllm-v1", "vllm-v1",
                                                                 "splitwise")
    assert fp8["decode_step_s"] < 0.6 * bf16["decode_step_s"] < old["decode_step_s"]
    res = runner.invoke(app, ["step", "--precision", "fp6"])
    assert res.exit_code == 2 and "--precision: got 'fp6'" in res.stderr
