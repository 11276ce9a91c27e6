"""A run's requests, queries and events are freed by reference counting as they end: no
reference cycle per request is left for the garbage collector, whose passes over millions
of young objects would otherwise cost a tenth of a run (and its memory until each pass)."""

import gc

import pytest

from sim.runner.api import run
from sim.scenario import loading
from tests.conftest import ROOT, SCENARIOS

CASES = {  # a query without a process (answered by a callback), and queries with one
    "reference": (ROOT / "bench" / "scenarios" / "reference_workload.toml",
                  ["run.duration_s=5000"]),
    "modern_two_stage": (SCENARIOS / "modern_two_stage.toml",
                         ["run.duration_s=120", "run.warmup_s=10", "run.drain_s=60"]),
}


def cyclic_garbage(path, sets) -> tuple[int, int]:
    """(objects only the collector could free, LLM requests) of one run."""
    s = loading.load(path, sets)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector frees is kept in gc.garbage
    try:
        res = run(s)
        gc.collect()
        return len(gc.garbage), res.requests.num_rows
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.parametrize("case", CASES)
def test_no_garbage_cycles_per_request(case):
    garbage, requests = cyclic_garbage(*CASES[case])
    assert requests > 5000
    # what is left is the environment's own (its processes, queued events): a few hundred
    # objects whatever the run's length, where one cycle per query is nine objects each
    assert garbage < 1500, f"{garbage} objects in cycles for {requests} requests"
