"""`run(scenario)`: one process, or shards on a process pool when the scenario asks."""

from __future__ import annotations

from collections.abc import Callable

from sim.runner.engine import Results, finish, simulate
from sim.runner.shards import run_sharded
from sim.scenario.schema import Scenario


def run(s: Scenario, progress: Callable[[float], None] | None = None) -> Results:
    if s.run.shards > 1:
        return run_sharded(s, progress)
    return finish(s, simulate(s, progress=progress))
