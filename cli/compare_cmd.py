"""`searchsim compare`: scenarios on common random numbers, side by side, with ratios."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.common import (
    assumes,
    clean_errors,
    console,
    err_console,
    print_json,
    require_new_file,
    table,
)
from cli.progress import LazyProgress
from cli.summary_view import ROWS, show, warn_if_unstable


def _ratio(a, b) -> str:
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)) or not a:
        return "-"
    return f"{b / a:.3g}x"


@clean_errors
def compare_command(
    scenarios: list[Path] = typer.Argument(..., help="Two or more scenario TOML files."),
    overrides: list[str] = typer.Option([], "--set", help="Override for every scenario."),
    seed: int = typer.Option(None, help="Seed for all (default: the first scenario's)."),
    out: Path = typer.Option(None, "--out", help="Also write each run under DIR/<name>."),
    force: bool = typer.Option(False, "--force", help="Replace existing run directories "
                                                      "(and an existing --report file)."),
    report: Path = typer.Option(None, "--report", help="Also write the comparison as a "
                                "self-contained HTML page with plots (the plot extra)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summaries as JSON, keyed by "
                                                       "scenario name."),
) -> None:
    """Run scenarios on the same random streams; rows are metrics, columns scenarios."""
    from sim.io import rundir as output
    from sim.runner.api import run
    from sim.scenario import loading
    require_new_file(report, force)  # before any simulation
    loaded = [loading.load(p, overrides) for p in scenarios]
    common = seed if seed is not None else loaded[0].run.seed
    if any(s.run.seed != common for s in loaded):
        err_console.print(f"note: every scenario runs with seed {common} (common random "
                          "numbers)", highlight=False)
        loaded = [s.model_copy(update={"run": s.run.model_copy(update={"seed": common})})
                  for s in loaded]
    names = [s.name for s in loaded]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        from sim.errors import Problem, SearchsimError
        raise SearchsimError(Problem("scenario name", dupes[0], "a different name for each "
                                     "scenario compared (set `name` in the file or --set "
                                     "name=...)"))
    if out is not None:
        for n in names:
            output.check_target(out / n, force)
    results = []
    for s in loaded:
        with LazyProgress(f"simulating {s.name}") as progress:
            results.append(run(s, progress))
        if out is not None:
            output.write_run(results[-1], out / s.name, force)
    sums = [r.summary for r in results]
    cols = ["metric", *names, *[f"{n} / {names[0]}" for n in names[1:]]]
    rows = [[label, *[show(k, x[k], unit, x["stable"]) for x in sums],
             *[_ratio(sums[0][k], x[k]) for x in sums[1:]]] for k, label, unit in ROWS]
    rows.insert(0, ["assumes", *[assumes(s) for s in loaded], *["" for _ in loaded[1:]]])
    if report is not None:
        from sim.analysis import comparereport
        written = comparereport.write(report, results, rows, cols, common)
        err_console.print(f"report: {written}", highlight=False)
    if as_json:
        print_json({s["scenario"]: json.loads(output.summary_json(s)) for s in sums})
    else:
        console.print(table(f"compare (seed {common})", cols, rows))
    for x in sums:
        warn_if_unstable(x)
