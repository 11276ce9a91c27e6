"""`searchsim report`: an HTML report with plots for a finished run directory."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import clean_errors, console, require_new_file


@clean_errors
def report_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by `searchsim run`."),
    out: Path = typer.Option(None, "--out", help="HTML file (default: RUN_DIR/report.html)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing report."),
) -> None:
    """Latency CDF, utilization and queues over time, and the summary, as one HTML file."""
    from sim.analysis import report
    require_new_file(out if out is not None else run_dir / "report.html", force)
    console.print(f"wrote {report.write(run_dir, out)}")
