"""`searchsim run`: simulate one scenario, print its summary, write its run directory."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.common import assumes, clean_errors, console, print_json, table
from cli.progress import LazyProgress, say_estimate
from cli.summary_view import ROWS, sampled_note, shown, warn_if_unstable


@clean_errors
def run_command(
    scenario: Path = typer.Argument(..., help="Scenario TOML file."),
    out: Path = typer.Option(None, "--out", help="Run directory (default: runs/<name>)."),
    overrides: list[str] = typer.Option([], "--set", help="Override: section.key=value."),
    force: bool = typer.Option(False, "--force", help="Replace an existing run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Simulate a scenario and write summary.json and the Parquet tables."""
    from sim.io import rundir as output
    from sim.runner import estimate
    from sim.runner.api import run
    from sim.scenario import loading
    s = loading.load(scenario, overrides)
    target = out if out is not None else Path("runs") / s.name
    say_estimate(estimate.say(estimate.run_requests(s), s.run.jobs if s.run.shards > 1 else 1))
    # the record tables stream into the run directory as the run goes (memory stays flat);
    # it appears under its name only once complete
    with output.staging(target, force) as tmp:
        with LazyProgress(f"simulating {s.name}") as progress:
            results = run(s, progress, tables="file", stream_to=tmp)
        output.write_into(results, tmp)
    summ = results.summary
    if as_json:
        print_json(json.loads(output.summary_json(summ)))
        warn_if_unstable(summ)
        return
    console.print(table(f"{s.name} ({summ['architecture']}; {assumes(s)})", ["metric", "value"],
                        [[label, shown(summ, k, unit)]
                         for k, label, unit in ROWS]))
    warn_if_unstable(summ)
    note = sampled_note(summ)
    if note:
        console.print(note)
    console.print(f"run directory: {target}")
