"""`searchsim validate`: the step-time model against every shipped measurement."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ERROR_COLUMNS, clean_errors, console, error_rows, print_json, table


@clean_errors
def validate_command(
    profile: Annotated[str | None, typer.Option(
        help="Predict every measurement with this profile (default: each source with the "
             "profile fitted on it, others with the default profile).")] = None,
    rows: Annotated[bool, typer.Option("--rows", help="Print every measurement.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Measured vs predicted step times: MAPE and worst error per source, regime and TP."""
    from sim.model import validation

    rep = validation.report(profile)
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
