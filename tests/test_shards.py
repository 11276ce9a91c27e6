"""Sharded runs: every arrival once, the fleet split, results independent of the pool size."""

import numpy as np
import pytest

from cli.main import app
from sim.runner.api import run
from sim.runner.shards import shard_scenario, split
from sim.scenario import loading
from sim.serving.pipeline import shard_of
from tests.conftest import SCENARIOS

SHORT = ["run.duration_s=200", "run.warmup_s=20"]


def _load(*extra):
    return loading.load(SCENARIOS / "modern_two_stage.toml", [*SHORT, *extra])


@pytest.fixture(scope="module")
def runs():
    return run(_load()), run(_load("run.shards=3", "run.jobs=2"))


def test_every_arrival_once_in_some_shard(runs):
    whole, sharded = runs
    for col in ("query_id", "arrival", "key"):
        assert sharded.queries[col].equals(whole.queries[col])
    r = sharded.requests
    assert r["request_id"].to_pylist() == list(range(r.num_rows))
    assert set(r["replica"].to_pylist()) <= set(range(10))
    assert sharded.summary["accelerators"] == whole.summary["accelerators"] == 40
    assert sharded.summary["llm_requests_submitted"] == r.num_rows  # every request a row
    assert sum(r["unfinished"].to_pylist()) == sharded.summary["llm_requests_unfinished"]


def test_sharded_conservation(runs):
    _, sharded = runs
    ts = sharded.timeseries.to_pandas()
    llm = ts[ts.pool == "llm"]
    busy = (llm.utilization * (llm.interval_end - llm.interval_start)).sum() * 40
    assert busy == pytest.approx(sharded.requests["accelerator_s"].to_numpy().sum(), rel=1e-9)
    assert sharded.queries["accelerator_s"].to_numpy().sum() == pytest.approx(
        sharded.requests["accelerator_s"].to_numpy().sum(), rel=1e-9)


def test_results_do_not_depend_on_the_number_of_processes(runs):
    _, sharded = runs
    again = run(_load("run.shards=3", "run.jobs=1"))
    assert again.summary == sharded.summary
    assert again.requests.equals(sharded.requests)


def test_shard_of_is_stable_and_balanced():
    keys = np.arange(-50_000, 50_000)
    a, b = shard_of(keys, 4), shard_of(keys, 4)
    assert (a == b).all()
    counts = np.bincount(a, minlength=4)
    assert counts.min() > 0.23 * len(keys)


def test_fleet_split_and_refusal(runner):
    s = _load()
    parts = [shard_scenario(s, i, 3) for i in range(3)]
    assert [p.llm.replicas for p in parts] == [4, 3, 3]
    assert sum(p.cache.capacity for p in parts) == s.cache.capacity
    assert [split(8, 3, i) for i in range(3)] == [3, 3, 2]
    res = runner.invoke(app, ["run", str(SCENARIOS / "modern_two_stage.toml"), "--set",
                              "run.shards=11"])
    assert res.exit_code == 2
    assert res.stderr == "error: llm.replicas: got 10, expected at least one per shard " \
                         "(11 shards)\n"


def test_the_ray_backend_without_ray_is_a_clear_error(monkeypatch):
    import sys

    from sim.errors import SearchsimError
    from sim.runner.parallel import map_jobs
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(SearchsimError, match=r"the ray extra: pip install 'searchsim\[ray\]'"):
        map_jobs(abs, [1, -2], 2, backend="ray")
    with pytest.raises(SearchsimError, match="backend: got 'dask'"):
        map_jobs(abs, [1], backend="dask")
