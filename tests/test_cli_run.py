"""`searchsim run` and `searchsim compare` through typer's CliRunner."""

import json
import os

import pytest

from cli.main import app
from tests.conftest import SCENARIOS

SHORT = ["--set", "run.duration_s=600", "--set", "run.warmup_s=60"]


def test_run_writes_a_complete_run_directory(runner, tmp_path):
    out = tmp_path / "run1"
    res = runner.invoke(app, ["run", str(SCENARIOS / "chatgpt_equivalent.toml"), "--out",
                              str(out), *SHORT, "--set", "cache.hit_rate=0.5"])
    assert res.exit_code == 0, res.output
    assert "cost/query, provisioned" in res.stdout
    for name in ("summary.json", "queries.parquet", "requests.parquet", "timeseries.parquet",
                 "scenario.toml"):
        assert (out / name).is_file()
    summary = json.loads((out / "summary.json").read_text())
    for key in ("queries", "completed", "offered_qps", "cache_hit_rate", "latency_p50_s",
                "latency_p95_s", "latency_p99_s", "slo_attainment", "degraded_fraction",
                "llm_requests", "accelerator_utilization", "mfu", "cost_per_query_provisioned",
                "cost_per_query_busy", "revenue_per_query", "revenue_share", "tokens_in",
                "tokens_out", "stable"):
        assert key in summary
    assert 0.45 < summary["cache_hit_rate"] < 0.55  # the --set took effect
    assert "hit_rate = 0.5" in (out / "scenario.toml").read_text()
    # the resolved scenario reruns to the same summary
    again = tmp_path / "run2"
    res = runner.invoke(app, ["run", str(out / "scenario.toml"), "--out", str(again)])
    assert res.exit_code == 0, res.output
    assert (again / "summary.json").read_bytes() == (out / "summary.json").read_bytes()


def test_run_refuses_to_overwrite_without_force(runner, tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    res = runner.invoke(app, ["run", str(SCENARIOS / "two_stage.toml"), "--out", str(out),
                              *SHORT])
    assert res.exit_code == 2
    assert "--out: got" in res.stderr and "--force" in res.stderr
    res = runner.invoke(app, ["run", str(SCENARIOS / "chatgpt_equivalent.toml"), "--out",
                              str(out), *SHORT, "--force"])
    assert res.exit_code == 0 and (out / "summary.json").is_file()


def test_compare_side_by_side(runner):
    res = runner.invoke(app, ["compare", str(SCENARIOS / "chatgpt_equivalent.toml"),
                              str(SCENARIOS / "two_stage.toml"), *SHORT])
    assert res.exit_code == 0, res.output
    assert "two_stage / chatgpt_equivalent" in res.stdout
    assert "cost/query, busy" in res.stdout


def test_run_bad_override(runner):
    res = runner.invoke(app, ["run", str(SCENARIOS / "two_stage.toml"), "--set",
                              "llm.replicas=0"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: llm.replicas: got 0, expected a number >= 1"


def test_overload_is_reported_not_summarised(runner, tmp_path):
    out = tmp_path / "over"
    res = runner.invoke(app, ["run", str(SCENARIOS / "two_stage.toml"), "--out", str(out),
                              "--set", "workload.rate_qps=6", "--set", "run.duration_s=900",
                              "--set", "run.warmup_s=100", "--set", "run.drain_s=60"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stable"] is False and summary["latency_percentiles_valid"] is False
    assert summary["offered_qps"] > summary["sustainable_qps"]
    assert "NO (overloaded)" in res.stdout and "(unstable)" in res.stdout
    assert "is overloaded: offered" in res.stderr


def test_requests_table_has_serving_latencies(tmp_path, runner):
    import pyarrow.parquet as pq
    out = tmp_path / "r"
    res = runner.invoke(app, ["run", str(SCENARIOS / "modern_chatgpt_equivalent.toml"), "--out",
                              str(out), "--set", "run.duration_s=120", "--set",
                              "run.warmup_s=10"])
    assert res.exit_code == 0, res.output
    r = pq.read_table(out / "requests.parquet").to_pandas()
    served = r[~r.cancelled]
    assert (served.ttft_s > 0).all() and (served.queue_wait_s >= 0).all()
    multi = served[served.generated_tokens > 1]
    assert (multi.tpot_s > 0).all()


def test_report_of_a_run_directory(runner, tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    out = tmp_path / "r"
    res = runner.invoke(app, ["run", str(SCENARIOS / "two_stage.toml"), "--out", str(out),
                              *SHORT])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    text = (out / "report.html").read_text()
    # latency CDF, utilization, queue and power plots; the cost-and-energy table
    assert text.count("data:image/png;base64,") == 4 and "cost_per_query_busy" in text
    assert "Cost, energy and availability" in text and "energy per query (J)" in text
    # an existing report is replaced only with --force; files get the user's umask
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 2 and "a new file (or pass --force)" in res.stderr
    assert runner.invoke(app, ["report", str(out), "--force"]).exit_code == 0
    mask = os.umask(0)
    os.umask(mask)
    assert (out / "report.html").stat().st_mode & 0o777 == 0o666 & ~mask
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "expected a finished run (missing summary.json" in res.stderr


def test_run_and_compare_print_json(runner, tmp_path):
    res = runner.invoke(app, ["run", str(SCENARIOS / "two_stage.toml"), "--out",
                              str(tmp_path / "r"), *SHORT, "--json"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    assert printed == json.loads((tmp_path / "r" / "summary.json").read_text())
    res = runner.invoke(app, ["compare", str(SCENARIOS / "chatgpt_equivalent.toml"),
                              str(SCENARIOS / "two_stage.toml"), *SHORT, "--json"])
    assert res.exit_code == 0, res.output
    both = json.loads(res.stdout)
    assert list(both) == ["chatgpt_equivalent", "two_stage"]
    assert both["two_stage"]["cost_per_query_provisioned"] == printed[
        "cost_per_query_provisioned"]


def test_compare_report_is_a_self_contained_page(runner, tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    page = tmp_path / "c.html"
    args = ["compare", str(SCENARIOS / "chatgpt_equivalent.toml"),
            str(SCENARIOS / "two_stage.toml"), *SHORT, "--report", str(page), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    text = page.read_text()
    assert text.count("class='plot' alt='plot' src='data:image/png;base64,") == 3
    assert "two_stage / chatgpt_equivalent" in text and "assumes" in text
    res = runner.invoke(app, args)  # an existing page needs --force
    assert res.exit_code == 2 and "a new file (or pass --force)" in res.stderr
