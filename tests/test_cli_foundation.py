"""The foundation commands through typer's CliRunner, bad arguments included."""

import json

from cli.main import app

KEYS = ["chatgpt_equivalent_cost_per_query", "two_stage_cost_per_query", "revenue_per_query",
        "two_stage_cost_to_revenue", "optimized_cost_per_query", "optimized_revenue_share",
        "a100_cost_per_1k_tokens", "tpu_v4_cost_per_1k_tokens", "training_cost_usd",
        "gpt3_training_memory_bytes", "min_h100_for_gpt3_training", "chinchilla_loss"]


def test_paper_json_has_stable_keys(runner):
    res = runner.invoke(app, ["paper", "--json"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    for k in KEYS:
        assert k in data
    assert round(data["two_stage_cost_per_query"], 4) == 0.0656


def test_paper_table(runner):
    res = runner.invoke(app, ["paper"])
    assert res.exit_code == 0
    assert "2-stage" in res.stdout and "$0.06557" in res.stdout


def test_catalog(runner):
    res = runner.invoke(app, ["catalog"])
    assert res.exit_code == 0 and "h200" in res.stdout and "llama3_70b" in res.stdout
    data = json.loads(runner.invoke(app, ["catalog", "--json"]).stdout)
    assert data["accelerators"]["a100_40gb"]["peak_tflops"] == 312.0


def test_cost_reproduces_the_article(runner):
    res = runner.invoke(app, ["cost", "--model", "gpt3_175b", "--hardware", "a100_40gb",
                              "--price", "aws-p4d-1y", "--mfu", "0.213", "--json"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert round(data["cost_per_1k_tokens"], 4) == 0.0035
    res = runner.invoke(app, ["cost", "--hardware", "tpu_v4", "--price", "2.03", "--mfu",
                              "0.462", "--json"])
    assert round(json.loads(res.stdout)["training_cost_usd"] / 1e6, 1) == 1.4


def test_cost_bad_arguments(runner):
    res = runner.invoke(app, ["cost", "--model", "gpt5"])
    assert res.exit_code == 2
    assert "model: got 'gpt5', expected one of: bloom_176b, chinchilla_70b" in res.stderr
    res = runner.invoke(app, ["cost", "--hardware", "a100", "--price", "x"])
    assert res.exit_code == 2 and "hardware: got 'a100'" in res.stderr
    res = runner.invoke(app, ["cost", "--price", "nope"])
    assert res.exit_code == 2 and "aws-p4d-1y" in res.stderr
    res = runner.invoke(app, ["cost", "--mfu", "1.5"])
    assert res.exit_code == 2 and "mfu: got 1.5, expected a fraction in (0, 1]" in res.stderr
    res = runner.invoke(app, ["cost", "--price", "-3"])
    assert res.exit_code == 2 and "price: got -3.0" in res.stderr


def test_debug_keeps_the_traceback(runner):
    from sim.errors import SearchsimError
    res = runner.invoke(app, ["--debug", "cost", "--model", "gpt5"])
    assert res.exit_code != 0 and isinstance(res.exception, SearchsimError)
    res = runner.invoke(app, ["cost", "--model", "gpt5"])
    assert res.exit_code == 2 and not isinstance(res.exception, SearchsimError)


def test_help_loads_no_simulator():
    """`searchsim --help` stays instant: commands import the library when they run."""
    import subprocess
    import sys
    code = ("import sys; from cli.main import app; "
            "print(sorted(m for m in ('numpy', 'pyarrow', 'pandas', 'simpy', 'pydantic', "
            "'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
