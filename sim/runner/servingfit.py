"""Fitting a step-time profile to whole serving runs, with the simulator in the loop.

Step-level calibration (`sim.model.calibration`) needs iteration times; published serving
runs give only each request's timestamps. Here the profile's parameters are chosen so that
the replayed runs' mean TTFT, TPOT and latency match the measured ones: bounded least squares
on the log ratios (simulated / measured), derivatives by finite differences of a relative
step large enough to move whole iterations (the simulation is piecewise constant below).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import tempfile
from pathlib import Path

import numpy as np
import tomli_w
from scipy.optimize import least_squares

from sim.io.servingruns import ServingRun
from sim.model import profile as profiles
from sim.runner import servingcheck

# (where, key, lower, upper): "software" or a family's name
Parameter = tuple[str, str, float, float]


def with_values(base: profiles.Profile, params: list[Parameter], x) -> profiles.Profile:
    """`base` with each parameter set to its value in `x`."""
    software: dict[str, float] = {}
    families = dict(base.families)
    for (where, key, _, _), value in zip(params, x, strict=True):
        if where == "software":
            software[key] = float(value)
        else:
            fam = _family(families, where)
            families[where] = dataclasses.replace(fam, **{key: float(value)})
    return dataclasses.replace(base, families=families).with_terms(software)


def _family(families: dict, where: str) -> profiles.FamilyFit:
    """A family's fit to start from: its own, else (for "family:precision") the family's,
    else the catalog's defaults for an accelerator of that family (its efficiencies and its
    link), else middling defaults."""
    found = families.get(where) or families.get(where.split(":")[0])
    if found:
        return found
    from sim.model import catalog
    hw = next((h for h in catalog.accelerators().values()
               if h.family == where.split(":")[0]), None)
    if hw is None:
        return profiles.FamilyFit(0.69, 0.78, 10.0, 25.0)
    return profiles.FamilyFit(hw.flops_efficiency, hw.memory_efficiency,
                              hw.interconnect.latency_us, hw.interconnect.gb_s)


def value_of(p: profiles.Profile, where: str, key: str) -> float:
    return float(getattr(p if where == "software" else p.families[where], key))


def _start(base: profiles.Profile, params: list[Parameter]) -> np.ndarray:
    out = []
    for where, key, lo, hi in params:
        if where == "software":
            value = getattr(base, key)
        else:
            value = getattr(_family(base.families, where), key)
        out.append(min(max(1.0 if value is None else value, lo), hi))  # None: not fitted
    return np.array(out, dtype=float)


def written(p: profiles.Profile, folder: Path) -> str:
    """The profile as a file (a new one per parameter set: profiles are cached by path)."""
    text = tomli_w.dumps(profiles.to_dict(p))
    path = folder / f"{p.name}-{hashlib.sha1(text.encode()).hexdigest()[:16]}.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def residuals(runs: list[ServingRun], profile_path: str) -> list[float]:
    """log(simulated / measured) of each run's mean TTFT, TPOT and latency."""
    out = []
    for r in runs:
        sim = servingcheck.simulate(r, profile=profile_path)
        for m in servingcheck.METRICS:
            out.append(math.log(np.nanmean(sim[m]) / np.nanmean(getattr(r, m))))
    return out


def fittable(runs: list[ServingRun]) -> list[ServingRun]:
    """The runs a profile's dense terms are fitted on: modelled, and not a mixture of
    experts (whose expert terms these runs do not identify: one run, one layout)."""
    return [r for r in runs if r.not_modelled is None and not r.moe]


def fit(runs: list[ServingRun], base: profiles.Profile, params: list[Parameter],
        max_evaluations: int = 300, measure=None) -> tuple[profiles.Profile, np.ndarray]:
    """The profile whose replays best match the measurements, and its residuals: by default
    `runs`' mean TTFT, TPOT and latency; `measure(profile_path)` gives other log ratios
    (saturated throughputs, `userdata.throughput_residuals`)."""
    runs = fittable(runs)
    measure = measure or (lambda path: residuals(runs, path))
    lo = np.array([p[2] for p in params])
    hi = np.array([p[3] for p in params])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def fun(x):
            return np.array(measure(written(with_values(base, params, x), folder)))

        sol = least_squares(fun, _start(base, params), bounds=(lo, hi), diff_step=0.05,
                            loss="soft_l1", f_scale=0.1, max_nfev=max_evaluations)
        best = with_values(base, params, sol.x)
        return best, fun(sol.x)
