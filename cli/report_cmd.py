"""`searchsim report`: an HTML report with plots for a finished run directory."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import clean_errors, console


@clean_errors
def report_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by `searchsim run`."),
    out: Path = typer.Option(None, "--out", help="HTML file (default: RUN_DIR/report.html)."),
) -> None:
    """Latency CDF, utilization and queues over time, and the summary, as one HTML file."""
    from sim.analysis import report
    console.print(f"wrote {report.write(run_dir, out)}")
