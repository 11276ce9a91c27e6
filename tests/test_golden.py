"""Golden summaries: every bundled scenario, briefly, against its stored summary.

A change in any figure fails here and must be reviewed as a diff of `tests/golden/*.json`.
Regenerate after an intended model change with `make golden` (and say why in the commit).
"""

import json
import math
import os

import pytest

from sim.runner.api import run
from sim.scenario import loading
from tests.conftest import ROOT, SCENARIOS

GOLDEN = ROOT / "tests" / "golden"
SHORT = ["run.duration_s=400", "run.warmup_s=50", "run.drain_s=200"]
FILES = sorted(SCENARIOS.glob("*.toml"))


# over the short run the faults scenario's 12-hour MTBF would show no failure: the golden
# must see some (replicas, a rack and retrieval servers failing, requests retried)
EXTRA = {"modern_two_stage_faults": ["faults.mtbf_s=600", "faults.mttr_s=60",
                                     "faults.domain_replicas=4", "faults.domain_mtbf_s=900",
                                     "faults.domain_mttr_s=30", "faults.retrieval_mtbf_s=300",
                                     "faults.retrieval_mttr_s=30",
                                     "retrieval.retries=1"]}


def summary_of(path) -> dict:
    res = run(loading.load(path, [*SHORT, *EXTRA.get(path.stem, [])]))
    return json.loads(json.dumps(res.summary, default=float))


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return a == b


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bundled_scenario_matches_its_golden_summary(path):
    got = summary_of(path)
    target = GOLDEN / f"{path.stem}.json"
    if os.environ.get("SEARCHSIM_UPDATE_GOLDEN") == "1":
        target.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    # figures that are right by construction, in every bundled scenario
    assert got["cost_per_query_busy"] <= got["cost_per_query_provisioned"]
    assert got["slo_attainment"] <= got["complete_fraction"]
    if got["cache_hit_bound"] is not None:
        assert got["cache_hit_rate"] <= got["cache_hit_bound"]
    if path.stem in EXTRA:  # the faults golden sees failures of every kind
        assert got["availability"] < 1 and got["retrieval_availability"] < 1
        assert got["requests_retried"] > 0
    want = json.loads(target.read_text(encoding="utf-8"))
    assert sorted(got) == sorted(want)
    diffs = {k: (want[k], got[k]) for k in want if not _same(got[k], want[k])}
    assert not diffs, f"{path.stem}: (golden, now) {diffs}"
