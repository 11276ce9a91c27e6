"""`searchsim calibrate-serving`: fit a profile's terms to whole serving runs."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated

import typer

from cli.common import clean_errors, console, print_json, require_new_file, table

# The terms `make profiles` fits for the vllm-v1 profile: the engine's own (KV read
# efficiency, host time per layer) and the two GPU families only these runs measure.
DEFAULT_FIT = ("software.kv_efficiency:0.3:1,software.layer_overhead_us:0:200,"
               "ad102.flops_efficiency:0.4:0.95,ad102.memory_efficiency:0.5:0.95,"
               "blackwell_rtx.flops_efficiency:0.4:0.95,"
               "blackwell_rtx.memory_efficiency:0.5:0.95,"
               "blackwell_rtx.allreduce_latency_us:2:100,blackwell_rtx.allreduce_gb_s:5:64")


def _parameters(text: str):
    from sim.errors import Problem, SearchsimError
    out = []
    for item in text.split(","):
        try:
            name, lo, hi = item.strip().split(":")
            where, key = name.split(".")
            out.append((where, key, float(lo), float(hi)))
        except ValueError:
            raise SearchsimError(Problem("--fit", item, "where.key:low:high, e.g. "
                                         "software.kv_efficiency:0.3:1")) from None
    return out


@clean_errors
def calibrate_serving_command(
    runs: Annotated[str, typer.Argument(
        help="A folder of per-request runs (LLMServingSim layout), or 'shipped'.")],
    base: Annotated[str, typer.Option(help="The profile whose other terms are kept.")] =
        "vllm-v1",
    fit: Annotated[str, typer.Option(help="Terms to fit: where.key:low:high,...")] =
        DEFAULT_FIT,
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
    data = servingruns.shipped() if runs == "shipped" else servingruns.load_folder(Path(runs))
    params = _parameters(fit)
    fitted, res = servingfit.fit(data, profiles.load(base), params)
    used = [r.name for r in data if r.not_modelled is None]
    fitted = dataclasses.replace(fitted, name=name, description=description, provenance={
        "sources": [], "serving_runs": used, "fitted": [f"{w}.{k}" for w, k, _, _ in params],
        "base": base, "command": f"searchsim calibrate-serving {runs} --base {base}"})
    if out is not None:
        write_profile(fitted, out)
    d = profiles.to_dict(fitted)
    errors = [float(x) for x in res]
    if as_json:
        print_json({"profile": d, "log_ratios": errors, "runs": used})
        return
    console.print(table(f"Profile {name} (fitted on {len(used)} runs)", ["parameter", "value"],
                        [[f"{w}.{k}", f"{servingfit.value_of(fitted, w, k):g}"]
                         for w, k, _, _ in params]))
    console.print(table("Mean error after the fit", ["run", "TTFT", "TPOT", "latency"],
                        [[run, *(f"{math.exp(e) - 1:+.1%}" for e in errors[3 * i:3 * i + 3])]
                         for i, run in enumerate(used)]))
    if out is not None:
        console.print(f"profile written: {out}")
