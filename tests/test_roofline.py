"""The roofline step model: the published FasterTransformer point and the roofline's shape."""

import json

import pytest

from cli.main import app
from sim.model import catalog
from sim.model.perf import ArticleStep, RooflineStep, prefill_pairs

M13, A100 = catalog.model("gpt_13b"), catalog.accelerator("a100_40gb")


def test_fastertransformer_13b_within_15_percent():
    step = RooflineStep(M13, A100, 1)
    prefill = float(step.iteration_time(512, prefill_pairs(512), 0, 0))
    decode = float(step.iteration_time(0, 0, 1, 512))
    assert prefill == pytest.approx(63.2e-3, rel=0.15)
    assert decode == pytest.approx(22.0e-3, rel=0.15)
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
    assert float(four.communication_time(8)) > 0 and float(one.communication_time(8)) == 0


def test_article_model_is_proportional_to_tokens():
    step = ArticleStep(M13, A100, 2, 0.25)
    assert float(step.iteration_time(100, 0, 28, 999)) == pytest.approx(
        128 * 2 * M13.params / (2 * A100.peak_flops * 0.25))


def test_step_command(runner):
    res = runner.invoke(app, ["step", "--json"])
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
