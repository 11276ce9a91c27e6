"""Shared helpers: small scenarios, replications and confidence intervals."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import t as student_t

from sim.runner.api import run
from sim.scenario import loading
from sim.scenario.schema import Scenario


def scenario(**sections) -> Scenario:
    return loading.from_dict(sections)


def confidence_interval(values) -> tuple[float, float, float]:
    """(mean, low, high): a 95% Student-t interval over independent replications."""
    x = np.asarray(values, dtype=float)
    half = student_t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def replicate(sections: dict, seeds, measure) -> list[float]:
    out = []
    for seed in seeds:
        raw = {k: dict(v) for k, v in sections.items()}
        raw.setdefault("run", {})["seed"] = seed
        res = run(loading.from_dict(raw))
        out.append(measure(res))
    return out


def measured(res):
    """Rows of queries that arrived in the measurement window."""
    s = res.scenario.run
    q = res.queries.to_pandas()
    return q[(q.arrival >= s.warmup_s) & (q.arrival < s.duration_s)]
