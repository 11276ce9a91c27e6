"""`searchsim sweep`: one scenario over a grid of values, summaries side by side."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import typer

from cli.common import clean_errors, console, print_json, require_new_file, table
from cli.summary_view import show

COLUMNS = [("offered_qps", "offered q/s", ""), ("stable", "stable", ""),
           ("latency_p50_s", "p50 (s)", "s"), ("latency_p99_s", "p99 (s)", "s"),
           ("slo_attainment", "SLO", "fraction"), ("accelerator_utilization", "util", "fraction"),
           ("mfu", "MFU", "fraction"), ("cost_per_query_provisioned", "cost/query", "$"),
           ("revenue_share", "cost/revenue", "fraction")]


def _csv(rows: list[dict]) -> str:
    params = list(rows[0]["params"])
    keys = list(rows[0]["summary"])
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(params + keys)
    for r in rows:
        w.writerow([r["params"][k] for k in params] + [r["summary"][k] for k in keys])
    return out.getvalue()


@clean_errors
def sweep_command(
    scenario: Path = typer.Argument(..., help="Scenario to vary."),
    vary: list[str] = typer.Option(..., "--vary", help="section.key=v1,v2,... (repeatable: "
                                                       "the grid is their product)."),
    overrides: list[str] = typer.Option([], "--set", help="Override for every point."),
    jobs: int = typer.Option(min(4, os.cpu_count() or 1), help="Parallel processes."),
    backend: str = typer.Option(None, help="local (a process pool) or ray (default: the "
                                           "scenario's run.backend)."),
    address: str = typer.Option(None, help="Ray cluster address (default: a local Ray)."),
    out: Path = typer.Option(None, "--out", help="Also write every summary as CSV."),
    force: bool = typer.Option(False, "--force", help="Replace an existing CSV."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run a scenario at every point of a grid (process pool); one row per point."""
    from sim.errors import Problem, SearchsimError
    from sim.runner import sweep
    if jobs < 1:
        raise SearchsimError(Problem("--jobs", jobs, "an integer >= 1"))
    require_new_file(out, force)
    points = sweep.grid(scenario, overrides, [sweep.parse_vary(v) for v in vary])
    from cli.progress import CountProgress, say_estimate
    from sim.runner import estimate
    each = [estimate.run_requests(s) for _, s in points]
    say_estimate(estimate.say(None if None in each else sum(e or 0.0 for e in each), jobs))
    with CountProgress("sweeping", "of grid points") as progress:
        first = points[0][1].run
        rows = sweep.run(points, jobs, progress, backend or first.backend,
                         address or first.ray_address)
    if out is not None:
        from sim.io.atomic import write_text
        write_text(out, _csv(rows))
    if as_json:
        print_json(rows)
        return
    params = list(rows[0]["params"])
    console.print(table(f"sweep of {scenario.stem} ({len(rows)} points)",
                        params + [label for _, label, _ in COLUMNS],
                        [[str(r["params"][p]) for p in params] +
                         [show(k, r["summary"][k], unit, r["summary"]["stable"])
                          for k, _, unit in COLUMNS] for r in rows]))
