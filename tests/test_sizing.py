"""Fleet sizing: the smallest passing fleet really is the smallest, and ranking is by cost."""

import json
from dataclasses import asdict

import pytest

from cli.main import app
from sim.errors import SearchsimError
from sim.runner import sizing
from sim.scenario import loading
from tests.conftest import SCENARIOS

BASE = {
    "run": {"duration_s": 300.0, "warmup_s": 30.0, "drain_s": 60.0},
    "workload": {"rate_qps": 6.0, "query_tokens": {"dist": "fixed", "value": 200},
                 "response_tokens": {"dist": "lognormal", "mean": 60, "cv": 0.5}},
    "llm": {"model": "llama2_7b", "hardware": "h100", "tp": 1, "replicas": 1,
            "batching": "continuous", "max_batch": 4, "step_model": "roofline"},
    "architecture": {"kind": "chatgpt_equivalent", "samples": 2},
    "limits": {"slo_s": 2.0},
    "economics": {"price": "lambda-on-demand"},
}


def test_smallest_fleet_is_the_boundary():
    s = loading.from_dict(BASE)
    cands = sizing.candidates(s, ["h100"], [4], [1])
    (row,) = sizing.size(s, cands, 1, 12, 0.95, replications=2)
    r = row["replicas"]
    assert r is not None and r > 1
    seeds = (s.run.seed, s.run.seed + 1)
    chosen = sizing.probe(s, cands[0], r, seeds)
    assert chosen.meets(0.95) and chosen.attainment_low <= chosen.slo_attainment
    assert len(chosen.attainments) == 2 and row["result"] == asdict(chosen)
    assert not sizing.probe(s, cands[0], r - 1, seeds).meets(0.95)
    assert row["accelerators"] == r
    assert [p["replicas"] for p in row["probes"]] == sorted(p["replicas"] for p in row["probes"])


def test_candidates_ranked_by_cost_and_tp_options():
    assert sizing.tp_options("llama3_70b", "h100", 2.0) == [2, 4, 8]
    assert sizing.smallest_tp("gpt3_175b", "a100_40gb", 2.0) == 16
    s = loading.from_dict(BASE)
    rows = sizing.size(s, sizing.candidates(s, ["h100", "l4"], [4], [1]), 1, 16, 0.9, jobs=2)
    costs = [r["result"]["cost_per_query_provisioned"] for r in rows if r["result"]]
    assert costs == sorted(costs) and len(rows) == 2


def test_bad_sizing_arguments(runner, tmp_path):
    s = loading.from_dict(BASE)
    with pytest.raises(SearchsimError):
        sizing.size(s, sizing.candidates(s, ["h100"], [4], [1]), 5, 2, 0.9)
    with pytest.raises(SearchsimError):
        sizing.size(s, sizing.candidates(s, ["h100"], [4], [1]), 1, 2, 1.5)
    path = tmp_path / "s.toml"
    path.write_text(loading.dumps(s))
    res = runner.invoke(app, ["size", str(path), "--replicas", "x"])
    assert res.exit_code == 2 and res.stderr == "error: --replicas: got 'x', expected " \
                                                "LOW:HIGH, e.g. 1:32\n"
    res = runner.invoke(app, ["size", str(path), "--replicas", "1:4", "--jobs", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["candidate"]["hardware"] == "h100"


def test_candidates_share_one_price_basis():
    """H100 and H200 are priced on the same kind of price, each its latest of that kind (or
    the latest by economics.price_date), shown with its source; the scenario's Lambda key
    only holds when its own hardware is sized alone."""
    s = loading.load(SCENARIOS / "modern_two_stage.toml")
    both = {c.hardware: c for c in sizing.candidates(s, ["h100", "h200"], [64], [4])}
    assert {c.price for c in both.values()} == {"on-demand"}
    assert (both["h100"].price_date, both["h100"].usd_per_chip_hour) == ("2026-03", 2.69)
    assert (both["h200"].price_date, both["h200"].usd_per_chip_hour) == ("2026-06", 2.25)
    assert both["h200"].price_source == "packet.ai, 1 x H200 SXM, on-demand, 2026-06"
    dated = loading.load(SCENARIOS / "modern_two_stage.toml", ["economics.price_date=2025-06"])
    then = {c.hardware: c for c in sizing.candidates(dated, ["h100", "h200"], [64], [4])}
    assert then["h100"].price_source.startswith("Lambda") and then["h100"].price_date == "2024-10"
    assert then["h200"].usd_per_chip_hour == pytest.approx(84.80 / 8)  # AWS, June 2025
    alone = sizing.candidates(s, ["h100"], [64], [4])
    assert alone[0].price == "lambda-on-demand" and alone[0].usd_per_chip_hour == 2.99
    with pytest.raises(SearchsimError, match="1-year"):  # no 1-year H200 price in the catalog
        sizing.candidates(s, ["h100", "h200"], [64], [8], price_kind="1-year")
    with pytest.raises(SearchsimError, match="--price-kind: got 'cheap'"):
        sizing.candidates(s, ["h100"], [64], [8], price_kind="cheap")


def test_an_owned_fleet_is_sized_on_its_owned_chip_hour():
    """price = "owned" prices every candidate at capital + energy at full power, the same
    basis for each accelerator."""
    from sim.model import catalog
    from sim.runner import sizing
    from sim.scenario import loading
    from tests.conftest import SCENARIOS
    s = loading.load(SCENARIOS / "modern_two_stage.toml", ['economics.price="owned"'])
    cands = sizing.candidates(s, ["h100", "a100_80gb"], [128], [4])
    for c in cands:
        chip = catalog.accelerator(c.hardware)
        assert c.price == "owned"
        assert c.usd_per_chip_hour == s.economics.owned.cost(c.hardware).usd_per_chip_hour_at(
            chip.power.prefill_w)
    mixes = sizing.mix_candidates(s, cands[:1], ["a100_80gb"], [4])
    assert mixes[0].mix_usd_per_chip_hour == cands[1].usd_per_chip_hour


def test_prices_far_apart_are_flagged():
    """By May 2025 H100's latest on-demand price is from 2024-10 and the A100's from 2023-06:
    16 months; at the latest prices H100 and H200 are 3 months apart."""
    from sim.runner.sizing import Candidate, candidates, price_spread
    s = loading.load(SCENARIOS / "modern_two_stage.toml", ["economics.price_date=2025-05"])
    assert price_spread(candidates(s, ["h100", "a100_80gb"], [128], [4], "on-demand")) == (
        16, "2023-06", "2024-10")
    s = loading.load(SCENARIOS / "modern_two_stage.toml")
    assert price_spread(candidates(s, ["h100", "h200"], [128], [4], "on-demand")) is None
    assert price_spread(candidates(s, ["h100"], [128], [4])) is None
    close = [Candidate("a", 1, 1, "x", 1.0, "", "2025-01"),
             Candidate("b", 1, 1, "x", 1.0, "", "2025-07")]
    assert price_spread(close) is None  # six months: not flagged


def test_one_candidate_reports_progress_within_each_probe():
    """The share of the search done rises within each probe's runs (simulated time), never
    falls, and reaches the whole at the end."""
    from sim.runner.sizing import candidates, size
    s = loading.load(SCENARIOS / "modern_two_stage.toml",
                     ["run.duration_s=120", "run.warmup_s=10", "limits.slo_s=25",
                      "limits.deadline_s=25"])
    seen = []
    rows = size(s, candidates(s, ["h100"], [128], [4]), 6, 12, 0.9, replications=2,
                progress=lambda done, total: seen.append((done, total)))
    assert {total for _, total in seen} == {1} and seen[-1] == (1, 1)
    done = [d for d, _ in seen]
    assert done == sorted(done) and 0 < done[0] < 0.05
    inside = [d for d in done if 0 < d < 1]
    assert len(inside) > 20 * len(rows[0]["probes"])  # many ticks inside each probe


def test_parallel_jobs_report_their_share_as_they_run():
    """On a process pool the parent sees running jobs' shares (fractions between whole
    jobs), and the results come back in job order."""
    from sim.runner.parallel import map_jobs
    seen = []
    out = map_jobs(_slow_job, [3, 1, 2], workers=2,
                   progress=lambda done, total: seen.append(done))
    assert out == [3, 1, 2] and seen[-1] == 3
    assert any(d != int(d) for d in seen)
    assert seen == sorted(seen)


def _slow_job(n: int) -> int:
    import time

    from sim.runner.parallel import report
    for i in range(10):
        time.sleep(0.1)
        report((i + 1) / 10)
    return n


def test_size_report_is_a_self_contained_page(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    from typer.testing import CliRunner
    page = tmp_path / "size.html"
    args = ["size", str(SCENARIOS / "two_stage_2026.toml"), "--replicas", "8:9",
            "--replications", "1", "--set", "run.duration_s=120", "--set", "run.warmup_s=10",
            "--report", str(page)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    text = page.read_text()
    assert text.count("class='plot' alt='plot' src='data:image/png;base64,") == 3
    assert "<h2>Ranking</h2>" in text and "engine vllm-v1" in text and "misses from" in text
    assert "missed time spent waiting" in text
    assert "<script src" not in text and "<link" not in text  # nothing fetched
    again = CliRunner().invoke(app, args)  # an existing report needs --force
    assert again.exit_code == 2 and "a new file (or pass --force)" in again.stderr


def test_the_answer_reads_at_80_columns():
    """The ranking and every probe fit an 80-column terminal without folding a cell: the
    candidate labels and figures appear whole, intervals and price sources under the table."""
    import io

    from rich.console import Console

    import cli.size_cmd as size_cmd
    s = loading.from_dict(BASE)
    cands = sizing.candidates(s, ["h100", "a100_80gb"], [4], [1], price_kind="on-demand")
    rows = sizing.size(s, cands, 1, 3, 0.95, replications=2)
    out = io.StringIO()
    real = size_cmd.console
    size_cmd.console = Console(width=80, file=out)
    try:
        size_cmd._show(s, rows, 0.95, 3)
    finally:
        size_cmd.console = real
    lines = out.getvalue().splitlines()
    assert max(map(len, lines)) <= 80
    for r in rows:
        label = size_cmd._label(r["candidate"])
        assert sum(label in line for line in lines) >= 3  # ranking, note, probe table
    assert any(line.startswith("[1] ") for line in lines)
    assert any("95% lower bound" in line for line in lines)


def test_unmeasured_chip_families_are_named():
    """H200 (Hopper) and RTX 4090 (AD102) have fits in vLLM V1's profile; B200 and MI300X do
    not, so their efficiencies are assumed: said before a ranking uses them."""
    s = loading.load(SCENARIOS / "two_stage_2026.toml")
    cands = sizing.candidates(s, ["h200", "b200", "mi300x", "rtx_4090"], [64], [1])
    assert sizing.unmeasured(s, cands) == ["b200", "mi300x"]
    article = loading.load(SCENARIOS / "two_stage.toml")
    assert sizing.unmeasured(article, sizing.candidates(article, ["mi300x"], [8], [8],
                                                        "on-demand")) == []  # article model
