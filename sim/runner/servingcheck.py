"""`searchsim validate --serving`: whole serving runs replayed through the simulator.

Each run's requests arrive at their recorded times with their recorded lengths and go
straight to the LLM pool (no cache, no retrieval) of the deployment the run names, under the
engine it names; time to first token, time per output token and latency are then compared
request by request:
- error of the mean, and of the 50th, 90th and 99th percentiles;
- the two-sample Kolmogorov-Smirnov statistic (and its p-value);
- a TOST equivalence test of the means within +/-10% of the measured mean (two one-sided
  Welch t-tests at 5%): "equivalent" when both reject, LLMServingSim's acceptance method;
- whether the real and the simulated server saturated: delivered request rate against
  offered, and the mean TTFT of the last third of arrivals against the first third's (more
  than three times, and above a second); and the offered rate from which the simulated
  server saturates on the same requests (arrival times scaled, bisected). A run measures one
  load, so for the real server that rate is bounded only: at or below the offered rate when
  it saturated, above it when it did not.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
from scipy import stats

from sim.io.servingruns import ServingRun
from sim.runner.api import run as run_scenario
from sim.scenario import loading

METRICS = ("ttft_s", "tpot_s", "latency_s")
TOST_MARGIN = 0.10
MEAN_LIMIT = 0.15  # the acceptance bound on the error of each mean
ALPHA = 0.05


def scenario_for(r: ServingRun, engine: str | None = None, options: dict | None = None,
                 profile: str | None = None, trace_path: Path | None = None,
                 precision: str = "bf16"):
    """The scenario that replays run `r` (its trace written to `trace_path`)."""
    llm = {"model": r.model, "hardware": r.hardware, "tp": r.tp, "replicas": r.dp,
           "dp": r.ranks, "ep": r.ep,
           "engine": engine or r.engine, "step_model": "roofline", "precision": precision,
           "experimental_moe": True,  # validation shows how far MoE is, it does not trust it
           "engine_options": {**(r.engine_options if engine in (None, r.engine) else {}),
                              **(options or {})}}
    if profile is not None:
        llm["profile"] = profile
    span = float(r.arrival_s[-1]) + 1.0
    return loading.from_dict({
        "name": f"replay {r.name}",
        "run": {"duration_s": span, "warmup_s": 0.0, "drain_s": 100_000.0,
                "interval_s": max(1.0, span / 50)},
        "workload": {"arrival": "trace", "trace": {
            "path": str(trace_path), "mapping": "time=t,prompt=p,output=o", "time_unit": "s"}},
        "cache": {"policy": "none"},
        "architecture": {"kind": "chatgpt_equivalent", "samples": 1},
        "limits": {"slo_s": 1e9},
        "llm": llm})


def simulate(r: ServingRun, engine: str | None = None, options: dict | None = None,
             profile: str | None = None, precision: str = "bf16") -> dict[str, np.ndarray]:
    """The simulated TTFT, TPOT and latency of each of `r`'s requests, in arrival order."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.csv"
        rows = np.column_stack([r.arrival_s, r.prompt, r.output])
        np.savetxt(path, rows, delimiter=",", header="t,p,o", comments="",
                   fmt=["%.6f", "%d", "%d"])
        res = run_scenario(scenario_for(r, engine, options, profile, path, precision))
    req = res.requests.to_pandas().sort_values("request_id")  # type: ignore[union-attr]
    if not np.array_equal(req.prompt_tokens.to_numpy(), r.prompt):
        raise AssertionError(f"{r.name}: the replay's requests are not the run's, in order")
    return {"ttft_s": req.ttft_s.to_numpy(), "tpot_s": req.tpot_s.to_numpy(),
            "latency_s": (req.finished - req.submitted).to_numpy(),
            "engine": res.scenario.llm.engine, "profile": res.scenario.llm.profile}


def tost(real: np.ndarray, sim: np.ndarray, margin: float = TOST_MARGIN) -> float:
    """p-value of the TOST equivalence test that mean(sim) is within +/-margin of mean(real)
    (Welch's two one-sided tests; below ALPHA: equivalent)."""
    bound = margin * real.mean()
    lo = stats.ttest_ind(sim - (-bound), real, equal_var=False, alternative="greater")
    hi = stats.ttest_ind(sim - bound, real, equal_var=False, alternative="less")
    return float(max(lo.pvalue, hi.pvalue))


def _error(sim: float, real: float) -> float:
    return (sim - real) / real if real else float("nan")


def compare_metric(real: np.ndarray, sim: np.ndarray) -> dict:
    keep = ~np.isnan(real) & ~np.isnan(sim)
    real, sim = real[keep], sim[keep]
    ks = stats.ks_2samp(real, sim)
    p_tost = tost(real, sim)
    out = {"n": int(len(real)), "measured_mean": float(real.mean()),
           "simulated_mean": float(sim.mean()),
           "mean_error": _error(float(sim.mean()), float(real.mean())),
           "ks": float(ks.statistic), "ks_p": float(ks.pvalue), "tost_p": p_tost,
           "equivalent": p_tost < ALPHA}
    for q in (50, 90, 99):
        out[f"p{q}_error"] = _error(float(np.percentile(sim, q)), float(np.percentile(real, q)))
    out["within_limit"] = abs(out["mean_error"]) <= MEAN_LIMIT
    return out


def saturation(arrival: np.ndarray, ttft: np.ndarray, latency: np.ndarray) -> dict:
    """Offered and delivered request rates, and whether the queue grew over the run."""
    span = float(arrival[-1] - arrival[0]) or 1.0
    third = max(1, len(arrival) // 3)
    first, last = float(np.mean(ttft[:third])), float(np.mean(ttft[-third:]))
    end = float(np.max(arrival + latency))
    return {"offered_rps": len(arrival) / span, "delivered_rps": len(arrival) / end,
            "ttft_growth": last / first if first > 0 else float("inf"),
            "saturated": bool(last > 3 * first and last > 1.0)}


def saturation_rate(r: ServingRun, engine: str | None = None, options: dict | None = None,
                    profile: str | None = None, tolerance: float = 0.05) -> float | None:
    """The offered rate (requests/s) from which the simulated server saturates on this run's
    requests: the run's arrival times scaled, bisected on the rate to `tolerance`; None when
    it does not saturate even at 8x the run's rate."""
    def saturated(m: float) -> bool:
        scaled = dataclasses.replace(r, arrival_s=r.arrival_s / m)
        sim = simulate(scaled, engine, options, profile)
        return saturation(scaled.arrival_s, sim["ttft_s"], sim["latency_s"])["saturated"]

    lo, hi = 1.0 / 64, 1.0
    while saturated(lo) and lo > 1e-3:
        lo /= 4
    if saturated(lo):
        return None
    while not saturated(hi):
        lo, hi = hi, hi * 2
        if hi > 8:
            return None
    while hi / lo > 1 + tolerance:
        mid = (lo * hi) ** 0.5
        lo, hi = (lo, mid) if saturated(mid) else (mid, hi)
    offered = len(r.arrival_s) / float(r.arrival_s[-1] - r.arrival_s[0])
    return hi * offered


def check(r: ServingRun, engine: str | None = None, options: dict | None = None,
          profile: str | None = None) -> dict:
    """One run: its deployment, each metric compared, and saturation real and simulated."""
    head = {"run": r.name, "source": r.source, "model": r.model, "hardware": r.hardware,
            "tp": r.tp, "dp": r.dp, "ranks": r.ranks, "ep": r.ep, "requests": r.requests,
            "moe": r.moe}
    if r.not_modelled:
        return {**head, "engine": engine or r.engine, "status": "not modelled",
                "why": r.not_modelled}
    sim = simulate(r, engine, options, profile)
    real = {m: getattr(r, m) for m in METRICS}
    metrics = {m: compare_metric(real[m], sim[m]) for m in METRICS}
    ok = all(v["within_limit"] for v in metrics.values())
    return {**head, "engine": sim["engine"], "profile": sim["profile"],
            "status": "pass" if ok else "fail", "metrics": metrics,
            "saturation": {"measured": saturation(r.arrival_s, real["ttft_s"],
                                                  real["latency_s"]),
                           "simulated": saturation(r.arrival_s, sim["ttft_s"],
                                                   sim["latency_s"]),
                           "simulated_saturation_rps": saturation_rate(r, engine, options,
                                                                       profile)}}


def report(runs: list[ServingRun], engine: str | None = None, options: dict | None = None,
           profile: str | None = None) -> dict:
    """Every run checked; the acceptance counts are over the dense runs, a mixture of
    experts' (its expert terms fitted on other engines' data, if any) counted apart."""
    rows = [check(r, engine, options, profile) for r in runs]

    def pairs(moe: bool) -> list[dict]:
        return [m for row in rows if row["moe"] == moe for m in row.get("metrics", {}).values()]

    dense, moe = pairs(False), pairs(True)
    return {"runs": rows,
            "modelled": sum(1 for row in rows if "metrics" in row),
            "not_modelled": [row["run"] for row in rows if "metrics" not in row],
            "means_within_15pct": sum(1 for m in dense if m["within_limit"]),
            "equivalent_10pct": sum(1 for m in dense if m["equivalent"]),
            "metric_runs": len(dense),
            "moe_metric_runs": len(moe),
            "moe_means_within_15pct": sum(1 for m in moe if m["within_limit"])}
