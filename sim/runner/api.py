"""`run(scenario)`: one process, or shards on a process pool when the scenario asks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sim.runner.engine import Results, finish, simulate
from sim.runner.sampling import run_sampled
from sim.runner.shards import run_sharded
from sim.scenario.schema import Scenario


def run(s: Scenario, progress: Callable[[float], None] | None = None, tables: str = "memory",
        stream_to: Path | None = None) -> Results:
    """Simulate `s`. Its record tables are kept in memory (`tables="memory"`, on the
    result), written to `stream_to`/queries.parquet and requests.parquet as the run goes
    ("file": memory stays flat however long the run), or dropped ("discard": a sweep or a
    sizing that needs only the summary). A sharded or sampled run's shards stream theirs
    to files merged file to file on local processes (`shards.shard_tables`)."""
    if s.run.sample_shards is not None and s.run.sample_shards < s.run.shards:
        return run_sampled(s, progress, tables, stream_to)
    if s.run.shards > 1:
        return run_sharded(s, progress, tables, stream_to)
    return finish(s, simulate(s, progress=progress, tables=tables, stream_to=stream_to))
