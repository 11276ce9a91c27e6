"""Sizing advice from causes, not labels: the deadline cuts answers, it does not make them
late, and replicas are never dismissed while attainment still rises with them."""

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from sim.runner.sizing import Probe, _advice

runner = CliRunner()


def _probe(replicas, attainment, cause, capacity, stable=True):
    return Probe(replicas, (1, 2), stable, attainment, attainment - 0.01, (attainment,),
                 attainment, 20.0, 0.001, 0.02, cause, capacity_ratio=capacity)


@pytest.mark.parametrize("probes, helps", [
    ({7: _probe(7, 0.30, "queueing", 3.0)}, True),  # waiting dominates the missed time
    ({7: _probe(7, 0.30, "service", 0.92)}, True),  # over capacity: queues whatever the label
    ({7: _probe(7, 0.30, "unfinished", 2.0, stable=False)}, True),
    ({6: _probe(6, 0.20, "service", 2.0), 7: _probe(7, 0.30, "service", 2.0)}, True),  # rising
    ({6: _probe(6, 0.30, "service", 2.0), 7: _probe(7, 0.302, "service", 2.0)}, False),
    ({7: _probe(7, 0.30, "service", 2.0)}, False),
])
def test_advice_follows_causes_capacity_and_trend(probes, helps):
    text = _advice(probes, 7)
    assert ("add replicas" in text) == helps
    assert ("will not fix" in text) == (not helps)


def test_the_blocker_case_says_add_replicas_and_eight_are_found():
    """modern_two_stage with a 25 s SLO and deadline (partial answers): at 7 replicas every
    miss is a cut answer, but the cut queries spent most of their time queueing and the fleet
    runs over capacity, so the advice is to add replicas; with the range to 9, 8 are found."""
    base = ["size", "scenarios/modern_two_stage.toml", "--set", "limits.slo_s=25", "--set",
            "limits.deadline_s=25", "--set", "run.duration_s=600", "--replications", "2",
            "--json"]
    low = json.loads(runner.invoke(app, [*base, "--replicas", "4:7"]).stdout)[0]
    assert low["replicas"] is None
    assert "add replicas" in low["advice"] and "will not fix" not in low["advice"]
    assert low["probes"][-1]["slo_miss_cause"] == "queueing"
    wide = json.loads(runner.invoke(app, [*base, "--replicas", "4:9"]).stdout)[0]
    assert wide["replicas"] == 8


def test_misses_are_split_by_kind_with_shares():
    from sim.runner.api import run
    from sim.scenario import loading
    s = loading.load("scenarios/modern_two_stage.toml",
                     ["run.duration_s=120", "run.warmup_s=10", "llm.replicas=4"])
    x = run(s).summary
    assert x["slo_misses"] > 0
    parts = x["slo_miss_cut_fraction"] + x["slo_miss_late_fraction"] + \
        x["slo_miss_unfinished_fraction"]
    assert parts == pytest.approx(1.0)
    assert 0.0 <= x["slo_miss_queueing_share"] <= 1.0
    assert x["slo_miss_cause"] in ("queueing", "service", "unfinished")


def test_a_cut_requests_wait_counts_until_its_cut():
    """A query cut at its 2 s deadline whose one request never started: it waited 2 s (the
    LLM queue), so the whole of its missed time is queueing, though `llm_wait_s` (waits of
    started requests) has nothing to say."""
    from types import SimpleNamespace

    import numpy as np
    import pyarrow as pa

    from sim.analysis.columns import query_columns
    from sim.analysis.tally import Tally
    from sim.serving.records import QUERY_FIELDS, _request_aggregates

    nan = float("nan")
    req = SimpleNamespace(started=nan, submitted=0.0, finished=2.0, cancelled=True, lost=False,
                          retries=0, prefilled=0, generated=0, accel_s=0.0)
    agg = _request_aggregates(SimpleNamespace(reqs=[req], arrival=0.0))
    assert np.isnan(agg[1]) and agg[-1] == 2.0  # llm_wait_s, queue_wait_s
    row = {"query_id": 0, "arrival": 0.0, "key": 1, "cache_hit": False,
           "retrieval_wait_s": 0.0, "retrieval_service_s": 0.0, "retrieval_calls": 0,
           "retrieval_failed": False, "retrieval_timeouts": 0, "llm_submitted": 0.0,
           "done": 2.0, "responses": 0,
           "deadline_outcome": "degraded", "requests": 1, "llm_wait_s": nan,
           "first_response_s": nan, "last_response_s": nan, "tokens_in": 0, "tokens_out": 0,
           "accelerator_s": 0.0, "failed_requests": 0, "queue_wait_s": 2.0, "latency_s": 2.0,
           "semantic_hit": False, "semantic_false_hit": False, "in_window": True}
    batch = pa.RecordBatch.from_pylist([row], schema=pa.schema(QUERY_FIELDS))
    tally = Tally()
    tally.add("queries", query_columns(batch, 1.0, 1.0))
    t = tally.reduced()
    assert t.missed_deadline == 1 and t.miss_wait_s == 2.0 and t.miss_latency_s == 2.0
