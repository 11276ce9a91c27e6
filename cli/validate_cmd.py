"""`searchsim validate`: the step-time model against every shipped measurement."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import ERROR_COLUMNS, clean_errors, console, error_rows, print_json, table


@clean_errors
def validate_command(
    profile: Annotated[str | None, typer.Option(
        help="Predict every measurement with this profile (default: each source with the "
             "profile fitted on it, others with the default profile).")] = None,
    rows: Annotated[bool, typer.Option("--rows", help="Print every measurement.")] = False,
    serving: Annotated[bool, typer.Option(
        "--serving", help="Replay the shipped whole serving runs request by request.")] = False,
    data: Annotated[Path | None, typer.Option(
        help="Your own measurements: step rows, saturated-throughput rows (CSV) or a folder "
             "of per-request runs; validated against --engine without fitting.")] = None,
    engine: Annotated[str | None, typer.Option(
        help="The engine to validate (default: the default engine; runs: the one each "
             "names).")] = None,
    engine_option: Annotated[list[str] | None, typer.Option(
        help="Override one of the engine's keys: key=value (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Measured vs predicted step times: MAPE and worst error per source, regime, TP and
    engine; with --serving or --data, whole runs and your own measurements."""
    from sim.model import engine as engines
    from sim.model import validation

    options = _options(engine_option or [])
    if engine is not None or options:
        engines.resolve(engine or engines.DEFAULT, options)  # refuse bad names first
    if serving or data is not None:
        _runs(serving, data, engine, options, as_json)
        return
    rep = validation.report(profile)
    from sim.runner import userdata
    rep["throughput"] = userdata.throughput(userdata.shipped_throughput(), "trtllm",
                                            profile=profile)
    from sim.model import alltoall
    rep["all_to_all"] = alltoall.summary()
    if as_json:
        print_json(rep)
        return
    if rows:
        console.print(table("Every measurement", [
            "source", "profile", "model", "hardware", "tp", "batch", "in", "out", "metric",
            "measured (ms)", "predicted (ms)", "error"], [
            [r["source"], r["profile"], r["model"], r["hardware"], str(r["tp"]),
             str(r["batch"]), str(r["input_tokens"]), str(r["output_tokens"]), r["metric"],
             f"{r['measured_s'] * 1e3:.1f}", f"{r['predicted_s'] * 1e3:.1f}",
             f"{r['error']:+.1%}"] for r in rep["rows"]]))
    for key, title in (("fitted", "Sources predicted by the profile fitted on them"),
                       ("held_out", "Sources no profile was fitted on (default profile)"),
                       ("cross_validation", "Cross-validated (each source or deployment "
                                            "left out of the fit)")):
        if key in rep:
            console.print(table(f"{title} — profile: {rep['profile']}", ERROR_COLUMNS,
                                error_rows(rep[key])))
    for key in ("regime", "tp"):
        console.print(table(f"By {key}", ERROR_COLUMNS, error_rows(rep["by"][key])))
    tput = rep["throughput"]
    _print_throughput(tput)
    a2a = rep["all_to_all"]
    console.print(f"All-to-all, DeepEP's kernels ({a2a['rows']} rows, H800): latency "
                  f"{a2a['latency_us']:.0f} us, {a2a['link_efficiency']:.0%} of NVLink within "
                  f"the node, {a2a['network_gb_s']:.0f} GB/s a GPU across nodes; MAPE "
                  f"{a2a['mape']:.1%}, worst {a2a['worst']:+.1%}", highlight=False)
    if "engines" in rep:
        console.print(table("Every measurement by each engine's step-time profile (MAPE per "
                            "source)", ["engine", "profile", "source", "n", "MAPE", "worst"],
                            [[r["engine"], r["profile"], r["group"], str(r["n"]),
                              f"{r['mape']:.1%}", f"{r['worst']:.1%}"]
                             for r in rep["engines"]]))


def _options(items: list[str]) -> dict:
    from sim.errors import Problem, SearchsimError
    from sim.scenario.loading import parse_value
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SearchsimError(Problem("--engine-option", item, "key=value"))
        out[key.strip()] = parse_value(raw.strip())
    return out


def _runs(serving: bool, data: Path | None, engine: str | None, options: dict,
          as_json: bool) -> None:
    from sim.io import servingruns
    from sim.model import engine as engines
    from sim.runner import servingcheck, userdata

    if data is not None:
        rep = userdata.validate(data, engine or engines.DEFAULT, options, engine is not None)
    else:
        rep = {"kind": "serving", **servingcheck.report(servingruns.shipped(), engine,
                                                         options)}
    if as_json:
        print_json(rep)
        return
    {"serving": _print_serving, "steps": _print_steps,
     "throughput": _print_throughput}[rep["kind"]](rep)


def _print_serving(rep: dict) -> None:
    names = {"ttft_s": "TTFT", "tpot_s": "TPOT", "latency_s": "latency"}
    body = []
    for run in rep["runs"]:
        if "metrics" not in run:
            body.append([run["run"], run["engine"], "-", "-", "-", "-", "-", "-", "-", "-",
                         "not modelled"])
            continue
        for key, m in run["metrics"].items():
            body.append([run["run"], run["engine"], names[key],
                         f"{m['measured_mean']:.3f}", f"{m['simulated_mean']:.3f}",
                         f"{m['mean_error']:+.1%}",
                         " / ".join(f"{m[f'p{q}_error']:+.0%}" for q in (50, 90, 99)),
                         f"{m['ks']:.2f}", f"{m['tost_p']:.3f}",
                         "yes" if m["equivalent"] else "no",
                         "pass" if m["within_limit"] else "FAIL"])
    console.print(table("Serving runs replayed request by request (seconds)", [
        "run", "engine", "metric", "measured mean", "simulated mean", "mean error",
        "p50 / p90 / p99 error", "KS", "TOST p", "equivalent ±10%", "mean within 15%"], body))
    for run in rep["runs"]:
        if "metrics" not in run:
            console.print(f"{run['run']}: not modelled ({run['why']})", highlight=False)
            continue
        m, s = run["saturation"]["measured"], run["saturation"]["simulated"]
        rate = run["saturation"]["simulated_saturation_rps"]
        real = "at or below" if m["saturated"] else "above"
        console.print(f"{run['run']}: offered {m['offered_rps']:.2f} req/s; delivered "
                      f"{m['delivered_rps']:.2f} measured, {s['delivered_rps']:.2f} simulated; "
                      f"saturated: {'yes' if m['saturated'] else 'no'} measured, "
                      f"{'yes' if s['saturated'] else 'no'} simulated; the real server "
                      f"saturates {real} {m['offered_rps']:.2f} req/s, the simulated one from "
                      + (f"{rate:.2f} req/s" if rate else "no rate up to 8x"), highlight=False)
    console.print(f"Means within 15%: {rep['means_within_15pct']} of {rep['metric_runs']} "
                  f"metric-run pairs; TOST-equivalent at ±10%: {rep['equivalent_10pct']} of "
                  f"{rep['metric_runs']}.", highlight=False)
    if rep.get("moe_metric_runs"):
        moe = ", ".join(r["run"] for r in rep["runs"] if r["moe"] and "metrics" in r)
        console.print(f"Mixture of experts ({moe}): means within 15% on "
                      f"{rep['moe_means_within_15pct']} of {rep['moe_metric_runs']}; counted "
                      "apart (the engine's profile has no fitted expert terms for it).",
                      highlight=False)


def _print_steps(rep: dict) -> None:
    console.print(table(f"Your step measurements — engine {rep['engine']} (profile "
                        f"{rep['profile']})", ["model", "hardware", "tp", "batch", "in", "out",
                                               "metric", "measured (ms)", "predicted (ms)",
                                               "error"],
                        [[r["model"], r["hardware"], str(r["tp"]), str(r["batch"]),
                          str(r["input_tokens"]), str(r["output_tokens"]), r["metric"],
                          f"{r['measured_s'] * 1e3:.1f}", f"{r['predicted_s'] * 1e3:.1f}",
                          f"{r['error']:+.1%}"] for r in rep["rows"]]))
    if rep["by_regime"]:
        console.print(table("By regime", ERROR_COLUMNS, error_rows(rep["by_regime"])))
    _print_skipped(rep)


def _print_throughput(rep: dict) -> None:
    console.print(table(f"Saturated-throughput rows — engine {rep['engine']} (output "
                        "tokens/s per GPU)", ["row", "requests", "measured", "predicted",
                                              "error"],
                        [[r["row"] + (" (MoE)" if r["experimental_moe"] else ""),
                          str(r["requests"]), f"{r['measured']:.0f}",
                          f"{r['predicted']:.0f}", f"{r['error']:+.1%}"] for r in rep["rows"]]))
    dense = [r for r in rep["rows"] if not r["experimental_moe"]]
    if rep["by_model"]:
        console.print(table("Saturated throughput by model", ["model", "n", "MAPE", "worst"],
                            [[r["model"], str(r["n"]), f"{r['mape']:.1%}", f"{r['worst']:+.1%}"]
                             for r in rep["by_model"]]))
    if rep["mape"] is not None:
        console.print(f"MAPE: {rep['mape']:.1%} over {len(dense)} dense rows", highlight=False)
    if rep.get("experimental_moe_mape") is not None:
        console.print(f"Mixture-of-experts rows: MAPE {rep['experimental_moe_mape']:.1%} over "
                      f"{len(rep['rows']) - len(dense)} rows; all modelled rows: "
                      f"{rep['all_mape']:.1%}", highlight=False)
    if rep.get("other_outputs_mape") is not None and rep.get("fit_outputs_mape") is not None:
        console.print(f"The trtllm profile's fit rows (1K/1K, 1K/8K): MAPE "
                      f"{rep['fit_outputs_mape']:.1%}; the rest (1,024/1,024 and "
                      f"1,024/32,768, held out of that fit): {rep['other_outputs_mape']:.1%}",
                      highlight=False)
    _print_skipped(rep)


def _print_skipped(rep: dict) -> None:
    for r in rep["not_modelled"]:
        console.print(f"not modelled: {r['row']} ({r['why']})", highlight=False)
