"""The Ray backend gives the local backend's results for the same seed: shards, a sweep, a
sizing, on a local Ray instance this test starts (the `ray` extra; `make test-ray`)."""

import pytest

from sim.runner import sizing, sweep
from sim.runner.api import run
from sim.scenario import loading
from tests.conftest import SCENARIOS

pytestmark = pytest.mark.ray
SHORT = ["run.duration_s=300", "run.warmup_s=50", "run.drain_s=120"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (make test-ray)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_shards_on_ray_equal_local_shards():
    path = SCENARIOS / "modern_two_stage.toml"
    sets = [*SHORT, "run.shards=2", "run.jobs=2"]
    local = run(loading.load(path, sets))
    remote = run(loading.load(path, [*sets, 'run.backend="ray"']))
    assert remote.summary == local.summary
    assert remote.requests.to_pandas().equals(local.requests.to_pandas())
    assert remote.queries.to_pandas().equals(local.queries.to_pandas())


def test_a_sweep_on_ray_equals_the_local_sweep():
    points = sweep.grid(SCENARIOS / "two_stage.toml", SHORT,
                        [sweep.parse_vary("llm.replicas=1,2,3")])
    assert sweep.run(points, 2, backend="ray") == sweep.run(points, 2)


def test_a_sizing_on_ray_equals_the_local_sizing():
    s = loading.load(SCENARIOS / "modern_two_stage.toml",
                     [*SHORT, "limits.slo_s=25", "limits.deadline_s=25"])
    cands = sizing.candidates(s, ["h100"], [128], [4])
    local = sizing.size(s, cands, 4, 12, 0.99, 2, 2)
    remote = sizing.size(s, cands, 4, 12, 0.99, 2, 2, backend="ray")
    assert remote == local
