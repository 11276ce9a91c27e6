"""`searchsim calibrate-serving`: fit a profile's terms to whole serving runs."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated

import typer

from cli.common import clean_errors, console, err_console, print_json, require_new_file, table

# The terms `make profiles` fits for the vllm-v1 profile: the engine's own (KV read
# efficiency, host time per layer) and the two GPU families only these runs measure.
DEFAULT_FIT = ("software.kv_efficiency=0.3:1,software.layer_overhead_us=0:200,"
               "ad102.flops_efficiency=0.4:0.95,ad102.memory_efficiency=0.5:0.95,"
               "blackwell_rtx.flops_efficiency=0.4:0.95,"
               "blackwell_rtx.memory_efficiency=0.5:0.95,"
               "blackwell_rtx.allreduce_latency_us=2:100,blackwell_rtx.allreduce_gb_s=5:64")
# The trtllm profile's terms, fitted to the dense rows of TensorRT-LLM's throughput table:
# the GEMM efficiency at each precision those rows run (FP8 on Hopper, FP4 on Blackwell),
# Blackwell's memory efficiency, and the engine's host time per layer.
THROUGHPUT_FIT = ("software.layer_overhead_us=0:200,hopper:fp8.flops_efficiency=0.3:0.95,"
                  "blackwell:fp4.flops_efficiency=0.2:0.95,"
                  "blackwell:fp4.memory_efficiency=0.4:0.95,"
                  "blackwell_rtx:fp4.flops_efficiency=0.2:0.95")


# With --moe, the dense terms above and the mixture-of-experts ones fitted together on the
# table's 1K/1K and 1K/8K rows, dense and MoE: each family's grouped-expert efficiency at
# the precision its experts run (gpt-oss's MXFP4 experts: BF16 on Hopper, FP8 on
# Blackwell), the tokens per expert at which a grouped GEMM reaches half of it, the busiest
# GPU's share under EP, and the engine's host time per running sequence (batches of
# thousands show it). The all-to-all's latency and link efficiency come from DeepEP's
# kernels (sim/model/alltoall.py).
MOE_FIT = (THROUGHPUT_FIT + ",hopper.moe_efficiency=0.05:1,hopper:fp8.moe_efficiency=0.05:1,"
           "blackwell:fp8.moe_efficiency=0.05:1,blackwell:fp4.moe_efficiency=0.05:1,"
           "blackwell_rtx:fp4.moe_efficiency=0.05:1,software.moe_half_tokens=0:4000,"
           "software.expert_imbalance=1:2,software.seq_overhead_us=0:50,"
           "software.moe_layer_overhead_us=0:500")
def _parameters(text: str):
    from sim.errors import Problem, SearchsimError
    out = []
    for item in text.split(","):
        try:
            name, bounds = item.strip().split("=")
            where, key = name.split(".")
            lo, hi = bounds.split(":")
            out.append((where, key, float(lo), float(hi)))
        except ValueError:
            raise SearchsimError(Problem("--fit", item, "where.key=low:high, e.g. "
                                         "software.kv_efficiency=0.3:1")) from None
    return out


@clean_errors
def calibrate_serving_command(
    runs: Annotated[str, typer.Argument(
        help="A folder of per-request runs (LLMServingSim layout), 'shipped', or with "
             "--throughput a saturated-throughput CSV ('shipped': TensorRT-LLM's table).")],
    base: Annotated[str, typer.Option(help="The profile whose other terms are kept.")] =
        "vllm-v1",
    fit: Annotated[str | None, typer.Option(
        help="Terms to fit: where.key=low:high,... (where: software or a family, "
             "optionally family:precision)")] = None,
    throughput: Annotated[bool, typer.Option(
        "--throughput", help="Fit saturated throughputs, run through --engine.")] = False,
    engine: Annotated[str, typer.Option(help="The engine the throughput rows ran.")] =
        "trtllm",
    moe: Annotated[bool, typer.Option(
        "--moe", help="With --throughput: fit dense and mixture-of-experts terms together "
                      "on the 1K/1K and 1K/8K rows (the all-to-all from DeepEP's "
                      "kernels).")] = False,
    name: Annotated[str, typer.Option(help="The profile's name.")] = "fitted-serving",
    description: Annotated[str, typer.Option(help="What the profile is for.")] = "",
    out: Annotated[Path | None, typer.Option(help="Write the profile TOML here.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Least-squares fit of profile terms so that replayed runs match their mean TTFT, TPOT
    and latency (the simulator in the loop; a minute or two)."""
    from sim.io import servingruns
    from sim.io.profiles import write_profile
    from sim.model import profile as profiles
    from sim.runner import servingfit

    require_new_file(out, force)
    default = (MOE_FIT if moe else THROUGHPUT_FIT) if throughput else DEFAULT_FIT
    params = _parameters(fit or default)
    start = dataclasses.replace(profiles.load(base), name=name)
    if moe:  # the all-to-all from DeepEP's kernels, not fitted here
        from sim.model import alltoall
        start = start.with_terms(alltoall.profile_terms())
    if throughput:
        from sim.runner import userdata
        path = userdata.shipped_throughput() if runs == "shipped" else Path(runs)
        fitted, res = servingfit.fit([], start, params, measure=lambda p: (
            userdata.throughput_residuals(path, engine, p, moe)),
            max_evaluations=120 if moe else 300)
        used = [r["row"] for r in userdata.fit_rows(
            userdata.throughput(path, engine, profile=None)["rows"], moe)]
        per = 1
    else:
        data = servingruns.shipped() if runs == "shipped" else \
            servingruns.load_folder(Path(runs))
        fitted, res = servingfit.fit(data, start, params)
        used = [r.name for r in servingfit.fittable(data)]
        per = 3
    command = (f"searchsim calibrate-serving {runs} --base {base}"
               + (f" --throughput --engine {engine}" if throughput else ""))
    provenance = {"sources": [], "serving_runs" if not throughput else "throughput_rows": used,
                  "fitted": [f"{w}.{k}" for w, k, _, _ in params], "base": base,
                  "command": command}
    if moe:
        provenance["command"] = command + " --moe"
        provenance["all_to_all"] = ("a2a_latency_us and a2a_efficiency fitted to DeepEP's "
                                    "low-latency kernels (sim/model/alltoall.py)")
    fitted = dataclasses.replace(fitted, name=name, description=description,
                                 provenance=provenance)
    if out is not None:
        write_profile(fitted, out)
    from sim.model.calibration import pinned
    for where, key, lo, hi in params:
        value = servingfit.value_of(fitted, where, key)
        if pinned(value, lo, hi):
            err_console.print(f"warning: {where}.{key} = {value:g} (bounds {lo:g} to {hi:g}): "
                              "at a bound of the fit", highlight=False, soft_wrap=True)
    d = profiles.to_dict(fitted)
    errors = [float(x) for x in res]
    if as_json:
        print_json({"profile": d, "log_ratios": errors, "runs": used})
        return
    console.print(table(f"Profile {name} (fitted on {len(used)} runs)", ["parameter", "value"],
                        [[f"{w}.{k}", f"{servingfit.value_of(fitted, w, k):g}"]
                         for w, k, _, _ in params]))
    heads = ["TTFT", "TPOT", "latency"] if per == 3 else ["throughput"]
    console.print(table("Error after the fit", ["run", *heads],
                        [[run, *(f"{math.exp(e) - 1:+.1%}"
                                 for e in errors[per * i:per * i + per])]
                         for i, run in enumerate(used)]))
    if out is not None:
        console.print(f"profile written: {out}")
