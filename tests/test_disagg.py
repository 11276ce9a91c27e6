"""Prefill/decode disaggregation (issue 22): on an idle system, time to first token is the
prefill iteration plus the KV transfer, by hand; the decode pool decodes what arrived
without prefilling it again; capacity is the scarcer pool's."""

import pytest

from sim.model import catalog
from sim.model.decoderun import DecodeRun
from sim.model.perf import pairs_of_chunk
from sim.runner import fleet
from sim.runner.api import run
from sim.scenario import loading


def scenario(layerwise: bool, gbps: float = 400.0, rate: float = 0.05, decode_tp: int = 2,
             **llm):
    return loading.from_dict({
        "run": {"duration_s": 600.0, "warmup_s": 0.0, "drain_s": 60.0, "seed": 4},
        "workload": {"rate_qps": rate, "query_tokens": {"dist": "fixed", "value": 30},
                     "response_tokens": {"dist": "fixed", "value": 20}},
        "retrieval": {"servers": 2, "passage_tokens": {"dist": "fixed", "value": 1000}},
        "architecture": {"kind": "two_stage", "k": 1},
        "llm": {"model": "llama3_70b", "engine": "vllm-v1", "step_model": "roofline",
                "disaggregated": {"prefill": {"hardware": "h100", "tp": 4, "replicas": 1},
                                  "decode": {"hardware": "h100", "tp": decode_tp,
                                             "replicas": 1},
                                  "kv_link_gbps": gbps, "kv_latency_s": 0.002,
                                  "layerwise": layerwise}, **llm},
        "economics": {"price": "on-demand"}})


def idle(r):
    r = r.sort_values("request_id")
    assert (r.started == r.submitted).all()
    assert (r.finished.to_numpy()[:-1] <= r.submitted.to_numpy()[1:]).all()
    return r


def steps(s):
    groups = fleet.replica_groups(s, catalog.model(s.llm.model))
    return groups[0].step, groups[1].step


@pytest.mark.parametrize("layerwise", [False, True])
def test_first_token_is_prefill_plus_transfer_and_decode_follows(layerwise):
    """A 1,030-token prompt: prefilled in one iteration on the tp-4 pool, its 1,031 tokens of
    KV (the first token's included) sent over 400 Gb/s (or 5 Gb/s, layer by layer, so the
    layers sent under the prefill do not wait), then 19 decode steps on the tp-2 pool."""
    gbps = 400.0 if not layerwise else 5.0
    s = scenario(layerwise, gbps)
    res = run(s)
    r = idle(res.requests.to_pandas())
    assert (r.prompt_tokens == 1030).all() and (r.prefilled_tokens == 1030).all()
    prefill_step, decode_step = steps(s)
    prefill = float(prefill_step.iteration_time(1030, pairs_of_chunk(1030, 0), 0, 0))
    model = catalog.model(s.llm.model)
    wire = 1031 * model.kv_bytes_per_token(s.llm.kv_bytes) / (gbps * 1e9 / 8)
    if layerwise:
        last = wire / model.layers
        wire = last + max(0.0, wire - last - prefill)
        assert wire > wire / 10 + last  # the slow link: most of it still waits
    transfer = wire + 0.002
    ttft = (r.first_token - r.started).to_numpy()
    assert ttft == pytest.approx(prefill + transfer, rel=1e-9)
    assert r.transfer_s.to_numpy() == pytest.approx(transfer, rel=1e-12)
    decode = DecodeRun(decode_step, 1, 1031, 19).total
    assert (r.finished - r.first_token).to_numpy() == pytest.approx(decode, rel=1e-9)
    assert (r.replica == 1).all()  # decoded on the decode pool's replica
    x = res.summary
    assert x["kv_transfer_s_mean"] == pytest.approx(transfer, rel=1e-9)
    assert x["fleet"] == "prefill 1 x h100 (tp 4) + decode 1 x h100 (tp 2)"
    assert x["accelerators"] == 6


def test_chip_seconds_add_up_across_the_pools_under_load():
    s = scenario(True, rate=3.0, decode_tp=4)  # at tp 2 the KV holds one request
    res = run(s)
    r = res.requests.to_pandas()
    snap = res.snapshot
    assert res.summary["llm_requests_unfinished"] == 0
    busy = snap.busy_chips.integral(0.0, snap.end)
    assert float(r.accelerator_s.sum()) == pytest.approx(busy, rel=1e-9)
    done = r[r.preemptions == 0]
    assert (done.prefilled_tokens == done.prompt_tokens).all()  # no prefill at decode
    x = res.summary
    assert 0 < x["prefill_busy_share"] < 1 and 0 < x["decode_busy_share"] < 1


def test_only_the_prefill_pool_keeps_a_prefix_cache():
    """Prefix caching with disaggregation: the prefill replicas keep prefixes (and read
    them); the decode replicas, which prefill nothing, give none of their memory to it."""
    raw = loading.to_dict(scenario(True, rate=0.5, prefix_cache={"memory_fraction": 0.25,
                                                                  "block_tokens": 16}))
    raw["workload"]["instruction_tokens"] = 64  # a shared prefix of four blocks
    s = loading.from_dict(raw)
    res = run(s)
    caps = {r.role: r.capacity for r in res.snapshot.replicas}
    groups = fleet.replica_groups(s, catalog.model(s.llm.model))
    assert caps["decode"] == groups[1].kv_capacity_tokens  # the whole budget
    assert caps["prefill"] < groups[0].kv_capacity_tokens
    r = res.requests.to_pandas()
    assert (r.cached_tokens > 0).sum() > 0 and (r.replica == 1).all()


def test_capacity_is_the_scarcer_pools():
    from sim.model import perf
    from sim.scenario import capacity
    s = scenario(True)
    model = catalog.model(s.llm.model)
    pf, dc = s.llm.fleet
    parts = [perf.full_batch_parts(perf.build(s.llm, model, catalog.accelerator(g.hardware),
                                              g.tp), s.llm.batch_size,
                                   capacity.kv_tokens(s, model, catalog.accelerator(
                                       g.hardware), g.tp), 1030, 20) for g in (pf, dc)]
    expected = min(1 / parts[0][1], 1 / parts[1][2])
    assert capacity.requests_per_s(s, 1030, 20) == pytest.approx(expected)


def test_disaggregation_refused_where_it_cannot_run():
    from sim.errors import SearchsimError
    with pytest.raises(SearchsimError, match="llm.disaggregated.*continuous batching"):
        scenario(True, engine="fastertransformer")
    with pytest.raises(SearchsimError, match="groups"):
        scenario(True, groups=[{"hardware": "a100_80gb", "tp": 1, "replicas": 1}])


def test_sizing_counts_units_of_the_ratio_and_compares_with_co_location():
    from sim.runner import sizing
    s = scenario(True)
    cands = sizing.disaggregated_candidates(s, [(1, 1), (2, 1)])
    labels = [c.label for c in cands]
    assert labels == ["1:1 h100 tp4 / h100 tp2", "2:1 h100 tp4 / h100 tp2", "h100 tp4",
                      "h100 tp2"]
    three = sizing.candidate_scenario(s, cands[1], 3)
    assert [(g.hardware, g.tp, g.replicas) for g in three.llm.fleet] == [
        ("h100", 4, 6), ("h100", 2, 3)]
    assert three.llm.disaggregated.prefill.replicas == 6 and three.llm.chips == 30
    alone = sizing.candidate_scenario(s, cands[2], 3)
    assert alone.llm.disaggregated is None and alone.llm.chips == 12
    assert sizing.disaggregated_candidates(s)[0].ratio == (1, 1)  # the scenario's own

    def row(c, cost):
        from dataclasses import asdict
        return {"candidate": asdict(c), "result": None if cost is None else {
            "cost_per_query_provisioned": cost}}

    rows = [row(cands[0], 2.0), row(cands[1], 1.5), row(cands[2], 2.0), row(cands[3], None)]
    assert sizing.disaggregated_verdict(rows) == \
        "disaggregation (2:1) beats the best co-located fleet by 25.0% per query"
    rows[2]["result"]["cost_per_query_provisioned"] = 1.2
    assert "does not beat" in sizing.disaggregated_verdict(rows) and "25.0% more" in \
        sizing.disaggregated_verdict(rows)
    rows[2]["result"].update(cost_per_query_provisioned=1.5, latency_p99_s=9.0)
    rows[1]["result"]["latency_p99_s"] = 4.0
    assert sizing.disaggregated_verdict(rows) == (
        "disaggregation (2:1) costs the same per query as the best co-located fleet (the same "
        "accelerators); p99 4 s against 9 s")


def test_bad_sizing_options_are_one_line_errors(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app
    path = tmp_path / "d.toml"
    path.write_text(loading.dumps(scenario(True)))
    runner = CliRunner()
    res = runner.invoke(app, ["size", str(path), "--ratios", "2-1"])
    assert res.exit_code == 2 and "--ratios: got '2-1', expected PREFILL:DECODE" in res.output
    res = runner.invoke(app, ["size", str(path), "--ratios", "0:1"])
    assert res.exit_code == 2 and "each at least 1" in res.output
    res = runner.invoke(app, ["size", str(path), "--hardware", "h200"])
    assert res.exit_code == 2 and "none with [llm.disaggregated]" in res.output
    res = runner.invoke(app, ["size", "scenarios/two_stage_2026.toml", "--ratios", "1:1"])
    assert res.exit_code == 2 and "a scenario with [llm.disaggregated]" in res.output
    res = runner.invoke(app, ["passages", "scenarios/two_stage_2026.toml"])
    assert res.exit_code == 2 and "retrieval.corpus_passages" in res.output
    assert "Traceback" not in res.output


def test_size_prints_the_disaggregation_verdict_in_json(tmp_path):
    import json

    from typer.testing import CliRunner

    from cli.main import app
    path = tmp_path / "d.toml"
    path.write_text(loading.dumps(scenario(True, rate=0.5)))
    res = CliRunner().invoke(app, ["size", str(path), "--replicas", "1:2", "--replications",
                                   "1", "--set", "run.duration_s=120", "--jobs", "1",
                                   "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["disaggregated_verdict"] is not None and out["mix_verdict"] is None
    assert [r["candidate"]["ratio"] for r in out["fleets"]].count(None) == 2  # co-located
    assert {r["candidate"]["price"] for r in out["fleets"]} == {"on-demand"}
