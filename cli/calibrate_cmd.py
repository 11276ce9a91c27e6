"""`searchsim calibrate`: fit a step-time profile to measurements and write it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    ERROR_COLUMNS,
    clean_errors,
    console,
    err_console,
    error_rows,
    print_json,
    require_new_file,
    table,
)


def _split(text: str | None) -> set[str] | None:
    return None if text is None else {x.strip() for x in text.split(",") if x.strip()}


@clean_errors
def calibrate_command(
    files: Annotated[list[str], typer.Argument(
        help="Measurement CSVs (published-figures or splitwise layout), or 'shipped'.")],
    source: Annotated[str | None, typer.Option(help="Only these sources: FT,LA.")] = None,
    hardware: Annotated[str | None, typer.Option(help="Only these accelerators.")] = None,
    name: Annotated[str, typer.Option(help="The profile's name.")] = "fitted",
    description: Annotated[str, typer.Option(help="What the profile is for.")] = "",
    out: Annotated[Path | None, typer.Option(help="Write the profile TOML here.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Robust least-squares fit of the roofline profile, with cross-validated error."""
    from sim.errors import Problem, SearchsimError
    from sim.io.profiles import write_profile
    from sim.model import calibration, measurements
    from sim.model.profile import to_dict

    require_new_file(out, force)
    ms = [m for f in files for m in (measurements.shipped() if f == "shipped"
                                     else measurements.read(f))]
    sources, hw = _split(source), _split(hardware)
    ms = [m for m in ms if (sources is None or m.source in sources)
          and (hw is None or m.hardware in hw)]
    if len(ms) < 8:
        raise SearchsimError(Problem("measurements", len(ms), "at least 8 rows to fit"))
    fitted = calibration.fit(ms, name)
    command = "searchsim calibrate " + " ".join(files) + "".join(
        f" --{k} {v}" for k, v in (("source", source), ("hardware", hardware)) if v)
    fitted = calibration.with_provenance(fitted, ms, command, description)
    in_sample = calibration.table(calibration.score(ms, fitted),
                                  lambda m: f"{m.source} {m.regime}")
    held = calibration.table(calibration.cross_validate(ms), lambda m: f"{m.source} {m.regime}")
    if out is not None:
        write_profile(fitted, out)
    for where in calibration.at_bounds(fitted):
        err_console.print(f"warning: {where}: at a bound of the fit", highlight=False,
                          soft_wrap=True)
    d = to_dict(fitted)
    if as_json:
        print_json({"profile": d, "fit": in_sample, "cross_validation": held})
        return
    console.print(table(f"Profile {name} ({len(ms)} measurements)", ["parameter", "value"],
                        [[k, f"{v:g}"] for k, v in d["software"].items()]
                        + [[f"{f}.{k}", f"{v:g}"] for f, fit in d["families"].items()
                           for k, v in fit.items()]))
    for title, stats in (("Fit (in sample)", in_sample), ("Cross-validated", held)):
        console.print(table(title, ERROR_COLUMNS, error_rows(stats)))
    if out is not None:
        console.print(f"profile written: {out}")
