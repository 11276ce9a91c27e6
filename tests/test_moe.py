"""Mixture-of-experts serving: expert GEMM efficiency, DEP/EP layouts, the all-to-all, and
the weights and KV a data-parallel replica holds, each against hand computation."""

import dataclasses

import pytest

from sim.errors import SearchsimError
from sim.model import alltoall, catalog, perf
from sim.model.profile import FamilyFit, Profile
from sim.runner import userdata
from sim.scenario import loading

H200 = catalog.accelerator("h200")
DEEPSEEK = catalog.model("deepseek_v3")
# every MoE term away from its neutral value, so that each one shows in the totals
TERMS = Profile("moe-terms", moe_half_tokens=100.0, moe_half_width=1000.0,
                expert_imbalance=1.25, a2a_efficiency=0.8, a2a_latency_us=30.0,
                a2a_overlap=0.25, dispatch_bytes=1.0, combine_bytes=2.0,
                families={"hopper": FamilyFit(0.6, 0.9, 5.0, 100.0, moe_efficiency=0.4)})


def _dep8(profile: Profile = TERMS) -> perf.RooflineStep:
    return perf.RooflineStep(DEEPSEEK, H200, 1, profile, bytes_per_param=1.0,
                             kv_bytes_per_element=1.0, dp=8, ep=8)


def test_expert_widths_follow_from_the_parameter_counts():
    """A routed expert's three d_model x width matrices in each MoE layer: DeepSeek-V3's
    2,048 (58 MoE layers), Qwen3-30B-A3B's 768, Llama-4 Maverick's 8,192 (24 of 48)."""
    for key, width in (("deepseek_v3", 2048), ("qwen3_30b_a3b", 768),
                       ("llama4_maverick", 8192), ("gpt_oss_120b", 2880)):
        assert catalog.model(key).expert_width == pytest.approx(width, rel=0.01)
    assert catalog.model("llama4_maverick").moe_layers == 24
    assert DEEPSEEK.moe_layers == 58


def test_routed_expert_compute_by_hand():
    """DeepSeek DEP 8 on H200 at BF16's peak: 512 tokens x 8 pairs, plus 100 padding tokens
    for each touched expert, each pair 2 x one expert's parameters, at 0.6 x 0.4 of the peak
    times the width factor 2050 / (2050 + 1000), spread over 8 GPUs, the busiest 1.25x."""
    step = _dep8()
    touched = 256 * (1 - (1 - 8 / 256) ** 512)
    rate = H200.peak_flops * 0.6 * 0.4 * DEEPSEEK.expert_width / (DEEPSEEK.expert_width + 1000)
    expect = 1.25 * 2 * DEEPSEEK.expert_params * (512 * 8 + 100 * touched) / rate / 8
    assert step._expert_compute(512, touched) == pytest.approx(expect, rel=1e-12)
    # the rest of the compute: (active - 8 routed experts) per token, split over 8 ranks
    resident = DEEPSEEK.compute_params - 8 * DEEPSEEK.expert_params
    assert step._s_per_token * 512 / 8 == pytest.approx(
        2 * resident * 512 / (H200.peak_flops * 0.6) / 8, rel=1e-12)


def test_all_to_all_by_hand():
    """Dispatch (1 byte) and combine (2 bytes) of each token's 8 copies, 7 of 8 leaving the
    GPU, over 58 MoE layers, each GPU sending 1/8 of the batch, at 0.8 of NVLink's 450 GB/s;
    30 us latency each way each layer; a quarter hidden under computation."""
    fixed, per_token = _dep8()._all_to_all
    link = H200.interconnect.gb_s * 1e9 * 0.8
    assert per_token == pytest.approx(0.75 * 58 * 8 * 7 / 8 / 8 * 7168 * 3 / link, rel=1e-12)
    assert fixed == pytest.approx(0.75 * 58 * 2 * 30e-6, rel=1e-12)
    # no expert parallelism, no all-to-all, and no imbalance
    tp8 = perf.RooflineStep(DEEPSEEK, H200, 8, TERMS, bytes_per_param=1.0)
    assert tp8._all_to_all == (0.0, 0.0) and tp8._imbalance == 1.0


def test_attention_data_parallel_ranks_split_the_batch_not_the_weights():
    """DEP 8: each rank reads the resident weights whole and its own 1/8 of the KV; the
    routed experts are read once over the 8 GPUs."""
    step, bare = _dep8(), perf.RooflineStep(DEEPSEEK, H200, 1, TERMS, bytes_per_param=1.0,
                                            kv_bytes_per_element=1.0)
    rate = H200.hbm_bytes_per_s * 0.9
    memory = step.memory_time(0, 256, 256 * 2000)
    touched = DEEPSEEK.experts_touched(256)
    expect = (DEEPSEEK.resident_params() + touched * DEEPSEEK.expert_params / 8) / rate + \
        DEEPSEEK.kv_bytes_per_token(1.0) * (256 * 2000 + 256) / 8 / rate
    assert memory == pytest.approx(expect, rel=1e-12)
    assert memory < bare.memory_time(0, 256, 256 * 2000)


def test_a_dep_replica_holds_the_resident_weights_once_per_rank():
    """DeepSeek FP8 on DEP 8: 671 GB once, plus 7 more copies of what every token uses."""
    held = perf.weights_held(DEEPSEEK, 1.0, dp=8)
    assert held == pytest.approx(DEEPSEEK.params + 7 * DEEPSEEK.resident_params(), rel=1e-12)
    free = perf.kv_bytes_free(DEEPSEEK, H200, 1, 1.0, None, 0.9, 0.0, dp=8)
    assert free == pytest.approx(H200.hbm_bytes * 0.9 * 8 - held, rel=1e-12)


def test_mxfp4_experts_keep_their_bytes_and_run_at_the_activation_peak():
    """gpt-oss ships MXFP4 experts: 4.25 bits a weight whatever the scenario's precision;
    Blackwell multiplies them at the FP8 rate (MXFP8 activations), Hopper at BF16's."""
    m = catalog.model("gpt_oss_120b")
    routed = m.experts * m.expert_params
    assert perf.weights_held(m, 1.0) == pytest.approx(
        (m.params - routed) * 1.0 + routed * 4.25 / 8, rel=1e-12)
    b200, h100 = catalog.accelerator("b200"), catalog.accelerator("h100")
    on_b200 = perf.make("roofline", m, b200, 1, bytes_per_param=0.5, precision="fp4")
    on_h100 = perf.make("roofline", m, h100, 1, bytes_per_param=1.0, precision="fp8")
    assert on_b200.expert_peak == b200.peak_tflops_fp8 * 1e12
    assert on_h100.expert_peak == h100.peak_flops
    assert on_b200.compute_peak == b200.peak_tflops_fp4 * 1e12  # the rest at FP4


def test_step_terms_name_the_bound():
    step = _dep8()
    terms = step.terms(0, 0, 2048, 2048 * 1500)
    assert set(terms) == {"compute", "memory", "all-reduce", "all-to-all", "overhead"}
    assert terms["all-to-all"] > 0 and terms["all-reduce"] == 0
    assert step.bound(0, 0, 2048, 2048 * 1500) == max(terms, key=lambda k: terms[k])
    slow_link = _dep8(dataclasses.replace(TERMS, a2a_efficiency=1e-4))
    assert slow_link.bound(0, 0, 2048, 2048 * 1500) == "all-to-all"


def test_deepep_kernels_fit_a_physical_all_to_all():
    """DeepEP's low-latency kernels on H800: one latency, NVLink near its 200 GB/s within
    the node, the 400 Gb/s network card beyond it; every row within 20%."""
    kernels = alltoall.read()
    f = alltoall.fit(kernels)
    assert 20 < f.latency_us < 60
    assert 0.8 < f.link_efficiency <= 1.0
    assert 40 < f.network_gb_s < 50  # of the card's 50 GB/s
    assert max(abs(e) for e in alltoall.errors(f, kernels)) < 0.2


@pytest.mark.parametrize("text, layout", [("DEP4", (1, 4, 4)), ("TP2", (2, 1, 1)),
                                          ("TP1,PP1", (1, 1, 1)), ("TP4,EP4", (4, 1, 4)),
                                          ("dep8", (1, 8, 8)), ("TP1,PP2", None),
                                          ("DEP2,PP2", None), ("DEP4,EP2", None)])
def test_parallelism_as_tensorrt_llm_writes_it(text, layout):
    assert userdata.parallelism(text) == layout


def _moe(**llm):
    return loading.from_dict({"llm": {"model": "deepseek_v3", "hardware": "h200", "tp": 1,
                                      "precision": "fp8", "experimental_moe": True, **llm},
                              "economics": {"price": 2.0}})


@pytest.mark.parametrize("llm, field", [
    ({"model": "llama31_70b", "tp": 2, "dp": 2}, "llm.dp"),
    ({"model": "llama31_70b", "tp": 2, "ep": 2}, "llm.ep"),
    ({"dp": 8, "ep": 3}, "llm.ep"),
    ({"dp": 16, "ep": 16}, "llm.dp"),  # beyond the 8-GPU NVLink domain
])
def test_bad_layouts_are_refused_by_name(llm, field):
    with pytest.raises(SearchsimError, match=field.replace(".", r"\.")):
        _moe(**llm)


def test_a_dep_scenario_runs_and_accounts_every_chip():
    """DEP 8 on H200: 8 chips a replica in the fleet and its cost; every request answered."""
    from sim.runner.api import run
    s = loading.from_dict({
        "llm": {"model": "deepseek_v3", "hardware": "h200", "tp": 1, "dp": 8, "ep": 8,
                "precision": "fp8", "experimental_moe": True, "engine": "trtllm",
                "step_model": "roofline", "replicas": 2},
        "workload": {"rate_qps": 2.0}, "run": {"duration_s": 20.0, "warmup_s": 0.0},
        "architecture": {"kind": "chatgpt_equivalent", "samples": 1},
        "economics": {"price": 2.0}})
    assert s.llm.chips == 16
    summary = run(s, tables="discard").summary
    assert summary["accelerators"] == 16 and summary["fleet_usd_per_hour"] == 32.0
    assert summary["fleet"] == "2 x h200 (tp 1, dp 8, ep 8)"
    assert summary["completed"] + summary["in_flight"] == summary["queries"] > 0


def test_each_attention_rank_admits_the_engines_batch():
    """max_num_seqs is per rank: a DEP 2 replica runs up to twice it at once."""
    from sim.runner.api import run
    s = loading.from_dict({
        "llm": {"model": "qwen3_30b_a3b", "hardware": "h100", "tp": 1, "dp": 2, "ep": 2,
                "experimental_moe": True, "step_model": "roofline", "max_batch": 4},
        "workload": {"rate_qps": 20.0}, "run": {"duration_s": 10.0, "warmup_s": 0.0},
        "architecture": {"kind": "chatgpt_equivalent", "samples": 1},
        "economics": {"price": 2.0}})
    assert run(s, tables="discard").summary["max_batch_seen"] == 8


def test_step_command_prices_dep_and_names_the_bound():
    import json

    from typer.testing import CliRunner

    from cli.main import app
    runner = CliRunner()
    args = ["step", "--model", "deepseek_v3", "--hardware", "h200", "--precision", "fp8",
            "--engine", "trtllm", "--batch", "64,2048", "--context", "1500"]
    dep = runner.invoke(app, [*args, "--dp", "8", "--ep", "8", "--json"])
    assert dep.exit_code == 0, dep.output
    small, big = json.loads(dep.output)
    assert (small["dp"], small["ep"]) == (8, 8)
    terms = big["decode_terms_s"]
    assert terms["all-to-all"] > 0 and terms["all-reduce"] == 0
    assert big["decode_bound"] == max(terms, key=lambda k: terms[k])
    text = runner.invoke(app, [*args, "--dp", "8", "--ep", "8"]).output
    assert "DEP 8 x h200" in text and "all-to-all" in text
    tp8 = json.loads(runner.invoke(app, [*args, "--tp", "8", "--json"]).output)[1]
    assert tp8["decode_terms_s"]["all-to-all"] == 0 and tp8["decode_terms_s"]["all-reduce"] > 0
    bad = runner.invoke(app, [*args, "--dp", "8", "--ep", "3"])
    assert bad.exit_code == 2 and "--ep" in bad.output
    dense = runner.invoke(app, ["step", "--model", "llama31_70b", "--dp", "2"])
    assert dense.exit_code == 2 and "--dp" in dense.output
