"""Sweeps: the grid is the product of the varied values, each point equals its own run."""

import csv

from cli.main import app
from sim.runner import sweep
from sim.runner.api import run
from sim.scenario import loading
from tests.conftest import SCENARIOS

PATH = SCENARIOS / "chatgpt_equivalent.toml"
SHORT = ["run.duration_s=300", "run.warmup_s=30"]


def test_grid_is_the_product_and_points_equal_single_runs():
    varies = [sweep.parse_vary("workload.rate_qps=1,2.5"), sweep.parse_vary("llm.max_batch=1,8")]
    points = sweep.grid(PATH, SHORT, varies)
    assert [p for p, _ in points] == [
        {"workload.rate_qps": 1, "llm.max_batch": 1}, {"workload.rate_qps": 1, "llm.max_batch": 8},
        {"workload.rate_qps": 2.5, "llm.max_batch": 1},
        {"workload.rate_qps": 2.5, "llm.max_batch": 8}]
    rows = sweep.run(points, workers=2)
    single = run(loading.load(PATH, [*SHORT, "workload.rate_qps=2.5", "llm.max_batch=8"]))
    assert rows[3]["summary"] == single.summary
    assert rows[0]["summary"]["llm_requests"] < rows[2]["summary"]["llm_requests"]


def test_parse_vary_forms_and_errors(runner, tmp_path):
    assert sweep.parse_vary('llm.hardware=["h100", "h200"]') == ("llm.hardware", ["h100", "h200"])
    assert sweep.parse_vary("cache.policy=lru,none") == ("cache.policy", ["lru", "none"])
    res = runner.invoke(app, ["sweep", str(PATH), "--vary", "llm.mfu"])
    assert res.exit_code == 2 and res.stderr == "error: --vary: got 'llm.mfu', expected " \
                                                "section.key=v1,v2,...\n"
    res = runner.invoke(app, ["sweep", str(PATH), "--vary", "llm.mfu=0.5,2"])
    assert res.exit_code == 2
    assert res.stderr == "error: [llm.mfu=2] llm.mfu: got 2, expected a number <= 1\n"


def test_sweep_cli_writes_csv(runner, tmp_path):
    out = tmp_path / "sweep.csv"
    res = runner.invoke(app, ["sweep", str(PATH), "--vary", "workload.rate_qps=1,2", "--set",
                              SHORT[0], "--set", SHORT[1], "--jobs", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert [r["workload.rate_qps"] for r in rows] == ["1", "2"]
    assert "cost_per_query_provisioned" in rows[0]
