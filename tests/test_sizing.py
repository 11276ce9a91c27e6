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
    """H100 and H200 are priced on the same kind of price, shown with its source; the
    scenario's Lambda key only holds when its own hardware is sized alone."""
    s = loading.load(SCENARIOS / "modern_two_stage.toml")
    both = sizing.candidates(s, ["h100", "h200"], [64], [4])
    assert {c.price for c in both} == {"on-demand"}
    by_hw = {c.hardware: c for c in both}
    assert by_hw["h100"].price_source.startswith("AWS") and by_hw["h200"].price_source.startswith(
        "AWS")
    assert by_hw["h200"].usd_per_chip_hour == pytest.approx(84.80 / 8)
    alone = sizing.candidates(s, ["h100"], [64], [4])
    assert alone[0].price == "lambda-on-demand" and alone[0].usd_per_chip_hour == 2.99
    with pytest.raises(SearchsimError, match="1-year"):  # no 1-year H100 price in the catalog
        sizing.candidates(s, ["h100", "a100_40gb"], [64], [8], price_kind="1-year")
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
    """H100's first on-demand price is from 2023-07, H200's from 2025-06: 23 months."""
    from sim.runner.sizing import Candidate, candidates, price_spread
    s = loading.load(SCENARIOS / "modern_two_stage.toml")
    assert price_spread(candidates(s, ["h100", "h200"], [128], [4], "on-demand")) == (
        23, "2023-07", "2025-06")
    assert price_spread(candidates(s, ["h100"], [128], [4])) is None
    close = [Candidate("a", 1, 1, "x", 1.0, "", "2025-01"),
             Candidate("b", 1, 1, "x", 1.0, "", "2025-07")]
    assert price_spread(close) is None  # six months: not flagged


def test_one_candidate_reports_progress_probe_by_probe():
    from sim.runner.sizing import candidates, expected_probes, size
    s = loading.load(SCENARIOS / "modern_two_stage.toml",
                     ["run.duration_s=120", "run.warmup_s=10", "limits.slo_s=25",
                      "limits.deadline_s=25"])
    seen = []
    rows = size(s, candidates(s, ["h100"], [128], [4]), 6, 12, 0.9, replications=1,
                progress=lambda done, total: seen.append((done, total)))
    total = expected_probes(6, 12)
    assert total == 4 and seen[-1] == (total, total)
    assert len(seen) == len(rows[0]["probes"]) + 1  # after each probe, then at the end
    assert all(done < total for done, _ in seen[:-1])


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
