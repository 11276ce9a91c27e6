"""`searchsim validate`: every shipped measurement, measured against predicted.

Each source is predicted by the shipped profile fitted on it ("fitted"); a source no shipped
profile was fitted on is predicted by the default profile ("held out"): the honest test of how
the model transfers to an engine it has not seen. Cross-validation refits every shipped
profile with one source (or, for a single-source profile, one deployment) left out.
"""

from __future__ import annotations

from sim.model import calibration, measurements
from sim.model import engine as engines
from sim.model import profile as profiles

DEFAULT_PROFILE = "splitwise"


def profile_for_sources() -> dict[str, str]:
    """Source -> the shipped profile fitted on it."""
    out = {}
    for name in profiles.shipped():
        for src in profiles.load(name).provenance.get("sources", []):
            out[src] = name
    return out


def scored(profile: str | None = None) -> list[tuple[str, str, calibration.Scored]]:
    """(profile, fitted | held out, scored measurement) for every shipped measurement; with
    `profile` given, every measurement is predicted by it."""
    own = profile_for_sources()
    out = []
    for m in measurements.shipped():
        name = profile or own.get(m.source, DEFAULT_PROFILE)
        p = profiles.load(name)
        kind = "fitted" if m.source in p.provenance.get("sources", []) else "held out"
        out.append((name, kind, calibration.Scored(m, calibration.predict(m, p))))
    return out


def cross_validated() -> list[calibration.Scored]:
    """Held-out predictions of every shipped profile's own measurements."""
    ms = measurements.shipped()
    out = []
    for name in profiles.shipped():
        sources = set(profiles.load(name).provenance.get("sources", []))
        out += calibration.cross_validate([m for m in ms if m.source in sources])
    return out


def engine_profile(name: str, options: dict | None = None) -> profiles.Profile:
    """The step-time profile an engine runs: its profile with its own terms laid over."""
    return engines.resolve(name, options).step_profile()


def by_engine() -> list[dict]:
    """Every shipped measurement predicted by each engine's step-time profile: MAPE per
    source (rows from an engine's own sources are in-sample for it)."""
    ms = measurements.shipped()
    out = []
    for name in engines.shipped():
        p = engine_profile(name)
        rows = calibration.table(calibration.score(ms, p), lambda m: m.source)
        out += [{"engine": name, "profile": p.name, **r} for r in rows]
    return out


def report(profile: str | None = None, cross_validation: bool = True) -> dict:
    rows = scored(profile)
    all_scored = [s for _, _, s in rows]
    by = {
        "source": lambda m: m.source,
        "regime": lambda m: m.regime,
        "tp": lambda m: f"tp{m.tp}",
        "source_regime": lambda m: f"{m.source} {m.regime}",
    }
    out = {
        "profile": profile or "own (per source)",
        "rows": [{"source": s.measurement.source, "profile": name, "kind": kind,
                  "model": s.measurement.model, "hardware": s.measurement.hardware,
                  "tp": s.measurement.tp, "batch": s.measurement.batch,
                  "input_tokens": s.measurement.input_tokens,
                  "output_tokens": s.measurement.output_tokens,
                  "metric": s.measurement.metric, "regime": s.measurement.regime,
                  "measured_s": s.measurement.seconds, "predicted_s": s.predicted,
                  "error": s.error} for name, kind, s in rows],
        "by": {k: calibration.table(all_scored, f) for k, f in by.items()},
        "fitted": calibration.table([s for _, k, s in rows if k == "fitted"],
                                    lambda m: f"{m.source} {m.regime}"),
        "held_out": calibration.table([s for _, k, s in rows if k == "held out"],
                                      lambda m: f"{m.source} {m.regime}"),
    }
    if profile is None:
        out["engines"] = by_engine()
    if cross_validation and profile is None:
        out["cross_validation"] = calibration.table(cross_validated(),
                                                    lambda m: f"{m.source} {m.regime}")
    return out
