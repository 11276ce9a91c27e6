"""Sweeps: one scenario run over a grid of overrides (the cartesian product of each varied
key's values), each point a full simulation on a process pool, summaries side by side."""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Callable

from sim.errors import Problem, SearchsimError
from sim.runner import api
from sim.runner.parallel import map_jobs, report
from sim.scenario import loading
from sim.scenario.schema import Scenario


def parse_vary(text: str) -> tuple[str, list]:
    """`section.key=v1,v2,...`, or `section.key=[...]` (a TOML array) for values with commas."""
    if "=" not in text:
        raise SearchsimError(Problem("--vary", text, "section.key=v1,v2,..."))
    key, raw = (p.strip() for p in text.split("=", 1))
    if raw.startswith("["):
        try:
            values = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            raise SearchsimError(Problem("--vary", text, "a TOML array after '='")) from None
    else:
        values = [loading.parse_value(v.strip()) for v in raw.split(",") if v.strip()]
    if not key or not values:
        raise SearchsimError(Problem("--vary", text, "section.key=v1,v2,..."))
    return key, values



def grid(path, overrides: list[str], varies: list[tuple[str, list]]
         ) -> list[tuple[dict, Scenario]]:
    """Every point of the grid as (its parameters, its validated scenario), validated up front
    so a bad value is refused before any simulation starts."""
    keys = [k for k, _ in varies]
    points: list[tuple[dict, Scenario]] = []
    for values in itertools.product(*(v for _, v in varies)):
        params = dict(zip(keys, values, strict=True))
        sets = [f"{k}={loading.value_text(v)}" for k, v in params.items()]
        try:
            points.append((params, loading.load(path, [*overrides, *sets])))
        except SearchsimError as exc:
            where = ", ".join(f"{k}={v}" for k, v in params.items())
            raise SearchsimError([Problem(f"[{where}] {p.field}", p.value, p.expected, p.message)
                                  for p in exc.problems]) from None
    return points


def _summary(s) -> dict:
    return api.run(s, report, tables="discard").summary


def run(points: list[tuple[dict, Scenario]], workers: int = 1,
        progress: Callable[[int, int], None] | None = None, backend: str = "local",
        address: str | None = None) -> list[dict]:
    """Each point's summary, on a local process pool or Ray (`backend`)."""
    summaries = map_jobs(_summary, [s for _, s in points], workers, progress, backend,
                         address)
    return [{"params": p, "summary": summ} for (p, _), summ in zip(points, summaries,
                                                                   strict=True)]
