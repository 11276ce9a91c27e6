"""Fitting a step-time profile to measurements, and measuring how well it predicts them.

The fit is robust least squares (scipy, soft-L1 loss) on log(predicted / measured), so every
measurement counts by its relative error and a few odd rows cannot drag the fit. Parameters
are the profile's software terms plus, for each chip family in the data, its achieved
compute and memory efficiency and its all-reduce latency and bandwidth; each is bounded to a
physically meaningful range.

Cross-validation leaves one source out at a time (one group of measurements from one engine
and one paper), fits on the rest and predicts the held-out source: the error a user should
expect on an engine the profile has not seen. With a single source it leaves one deployment
(model, hardware, tensor-parallel degree) out instead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from sim.model import catalog
from sim.model.measurements import Measurement
from sim.model.perf import RooflineStep, decode_times, prefill_pairs
from sim.model.profile import FAMILY_KEYS, SOFTWARE_KEYS, FamilyFit, Profile

# (initial value, lower bound, upper bound) of each parameter
SOFTWARE_BOUNDS = {"layer_overhead_us": (50.0, 0.0, 2000.0),
                   "iteration_overhead_ms": (1.0, 0.0, 50.0),
                   "gemm_half_tokens": (32.0, 0.0, 4096.0),
                   "attention_efficiency": (0.5, 0.05, 1.0)}
FAMILY_BOUNDS = {"flops_efficiency": (0.6, 0.05, 0.95), "memory_efficiency": (0.8, 0.2, 0.95),
                 "allreduce_latency_us": (10.0, 0.0, 500.0),
                 "allreduce_gb_s": (200.0, 5.0, 2000.0)}
LOSS_SCALE = 0.05  # relative errors beyond ~5% count linearly, not quadratically
# Efficiency bounds at 0.95: no real kernel sustains more of peak FLOP/s or HBM bandwidth.


def step_for(m: Measurement, profile: Profile) -> RooflineStep:
    return RooflineStep(catalog.model(m.model), catalog.accelerator(m.hardware), m.tp, profile)


def predict(m: Measurement, profile: Profile) -> float:
    """The profile's prediction of a measurement, in seconds."""
    step = step_for(m, profile)
    b, i, o = m.batch, m.input_tokens, m.output_tokens
    prefill = float(step.iteration_time(b * i, b * float(prefill_pairs(i)), 0, 0))
    if m.regime == "prefill":
        return prefill
    if m.regime == "decode":
        return float(step.iteration_time(0, 0, b, b * (i + o / 2)))
    return prefill + float(decode_times(step, b, b * i, o).sum())


def _families(ms: list[Measurement]) -> list[str]:
    return sorted({catalog.accelerator(m.hardware).family for m in ms})


def _unpack(x: np.ndarray, families: list[str], name: str) -> Profile:
    layer, iteration, gemm_half, attention = (float(v) for v in x[:len(SOFTWARE_KEYS)])
    rest = x[len(SOFTWARE_KEYS):].reshape(len(families), len(FAMILY_KEYS))
    fams = {f: FamilyFit(*map(float, row)) for f, row in zip(families, rest, strict=True)}
    return Profile(name, layer_overhead_us=layer, iteration_overhead_ms=iteration,
                   gemm_half_tokens=gemm_half, attention_efficiency=attention, families=fams)


def fit(ms: list[Measurement], name: str = "fitted") -> Profile:
    """The profile that best predicts `ms` (relative error, robust loss)."""
    from scipy.optimize import least_squares  # only calibration needs scipy

    families = _families(ms)
    bounds = [*SOFTWARE_BOUNDS.values(), *[FAMILY_BOUNDS[k] for _ in families
                                            for k in FAMILY_KEYS]]
    x0, lo, hi = (np.array(col) for col in zip(*bounds, strict=True))
    measured = np.array([m.seconds for m in ms])

    def residuals(x):
        p = _unpack(x, families, name)
        return np.log(np.array([predict(m, p) for m in ms]) / measured)

    res = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=LOSS_SCALE)
    return _unpack(np.round(res.x, 6), families, name)


@dataclass(frozen=True)
class Scored:
    measurement: Measurement
    predicted: float

    @property
    def error(self) -> float:
        """Signed relative error, (predicted - measured) / measured."""
        return self.predicted / self.measurement.seconds - 1


def score(ms: list[Measurement], profile: Profile) -> list[Scored]:
    return [Scored(m, predict(m, profile)) for m in ms]


def cross_validate(ms: list[Measurement]) -> list[Scored]:
    """Leave-one-source-out predictions (leave-one-deployment-out for a single source)."""
    groups = defaultdict(list)
    by_source = len({m.source for m in ms}) > 1
    for m in ms:
        groups[m.source if by_source else m.config].append(m)
    out = []
    for key, held in groups.items():
        rest = [m for m in ms if (m.source if by_source else m.config) != key]
        if not rest:
            continue
        out += score(held, fit(rest, "held-out"))
    return out


def table(scored: list[Scored], by) -> list[dict]:
    """MAPE and worst error per group (`by` maps a measurement to its group's name)."""
    groups = defaultdict(list)
    for s in scored:
        groups[by(s.measurement)].append(abs(s.error))
        groups["all"].append(abs(s.error))
    return [{"group": g, "n": len(e), "mape": float(np.mean(e)), "worst": float(np.max(e))}
            for g, e in sorted(groups.items(), key=lambda kv: (kv[0] == "all", str(kv[0])))]


def pinned(value: float, lo: float, hi: float, tolerance: float = 1e-3) -> bool:
    """At a bound of the fit other than zero (a term the data do not need rests at zero):
    the data wanted it further, so another term probably absorbs what this one cannot."""
    near = tolerance * max(1.0, abs(hi))
    return (lo != 0 and abs(value - lo) <= near) or (hi != 0 and abs(value - hi) <= near)


def at_bounds(p: Profile) -> list[str]:
    """The fitted parameters pinned at a bound, as 'name = value (bounds lo to hi)'."""
    out = [f"{key} = {getattr(p, key):g} (bounds {lo:g} to {hi:g})"
           for key, (_, lo, hi) in SOFTWARE_BOUNDS.items() if pinned(getattr(p, key), lo, hi)]
    return out + [f"{fam}.{key} = {getattr(fit, key):g} (bounds {lo:g} to {hi:g})"
                  for fam, fit in sorted(p.families.items())
                  for key, (_, lo, hi) in FAMILY_BOUNDS.items()
                  if pinned(getattr(fit, key), lo, hi)]


def with_provenance(p: Profile, ms: list[Measurement], command: str,
                    description: str = "") -> Profile:
    """The profile with what it was fitted on: sources, rows, deployments, the command."""
    deployments = sorted({f"{m.model} {m.hardware} tp{m.tp}" for m in ms})
    return replace(p, description=description, provenance={
        "sources": sorted({m.source for m in ms}), "measurements": len(ms),
        "deployments": deployments, "command": command})
