"""searchsim: a discrete-event simulator of LLM-powered web search serving.

The public face for notebooks and scripts::

    import sim
    s = sim.load("scenarios/two_stage.toml", ["run.duration_s=600"])
    res = sim.run(s)
    res.summary["cost_per_query_provisioned"]
    res.queries.to_pandas()          # pyarrow tables: queries, requests, timeseries

Submodules are imported on first use, so `import sim` stays cheap.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"
__all__ = ["load", "run"]


def load(path, overrides=()):
    """A scenario from a TOML file, with `section.key=value` overrides, validated."""
    from sim.scenario.loading import load as _load
    return _load(path, list(overrides))


def run(scenario, progress=None, tables="memory", stream_to=None):
    """Simulate a scenario (a `Scenario` or a path to its TOML file); returns `Results`
    with `summary` (dict) and the `queries`, `requests` and `timeseries` Arrow tables.
    `tables="file"` streams the two record tables to Parquet files in the directory
    `stream_to` as the run goes (memory stays flat; they are then None on the result);
    `tables="discard"` keeps only the summary."""
    from pathlib import Path

    from sim.runner.api import run as _run
    if isinstance(scenario, str | os.PathLike):
        scenario = load(scenario)
    return _run(scenario, progress, tables, None if stream_to is None else Path(stream_to))
