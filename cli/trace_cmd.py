"""`searchsim trace inspect | convert | synth`."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import clean_errors, console, err_console, print_json, require_new_file, table
from sim.errors import Problem, SearchsimError
from sim.traces import formats

app = typer.Typer(no_args_is_help=True, help="Read, inspect, convert and synthesize traces.")

FORMAT_HELP = "auto (by header), " + ", ".join(formats.FORMATS) + "; or give --map."
MAP_HELP = "Generic files: time=COL,prompt=COL,output=COL,query=COL or query_id=COL."


def _warn(lines: list[str]) -> None:
    for line in lines:
        err_console.print(f"warning: {line}", style="yellow", highlight=False)


def _show(path: Path, fmt: formats.Format, s: dict) -> None:
    rows = [["format", f"{fmt.name} ({fmt.kind} trace)"], ["requests", f"{s['requests']:,}"],
            ["span", f"{s['span_s']:,.1f} s ({s['span_s'] / 60:.1f} min)"],
            ["mean rate", f"{s['mean_rate_per_s'] or 0:.3f} /s"],
            ["peak rate", f"{s['peak_rate_per_s']} /s, {s['peak_rate_per_min']} /min"],
            ["inter-arrival CV", f"{s['interarrival_cv'] or 0:.3f}"]]
    for name in ("prompt_tokens", "output_tokens"):
        t = s[name]
        if t:
            rows.append([name.replace("_", " "), f"mean {t['mean']:.1f}, p50 {t['p50']}, "
                         f"p90 {t['p90']}, p99 {t['p99']}, max {t['max']}"])
    c = s["cache"]
    if c:
        z = c["zipf"]
        rows += [["distinct queries", f"{c['distinct_queries']:,}"],
                 ["infinite-cache hit bound", f"{c['infinite_cache_hit_bound']:.1%}"],
                 ["Zipf fit", "-" if z["alpha"] is None else
                  f"alpha {z['alpha']:.3f} (R^2 {z['r2']:.3f}, {z['ranks_fitted']} ranks)"]]
    console.print(table(str(path), ["statistic", "value"], rows))
    if c:
        console.print(table("LRU hit rate by cache capacity (stack distances)",
                            ["capacity", "hit rate"],
                            [[f"{p['capacity']:,}", f"{p['hit_rate']:.1%}"]
                             for p in c["lru_curve"]]))


def _plot(path: Path, s: dict, out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SearchsimError(Problem("--plot", str(out), "the plot extra: pip install "
                                     "'searchsim[plot]'")) from None
    curve = s["cache"]["lru_curve"] if s["cache"] else None
    if not curve:
        raise SearchsimError(Problem("--plot", str(out), "a query trace (with query keys)"))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogx([p["capacity"] for p in curve], [p["hit_rate"] for p in curve], marker="o")
    ax.axhline(s["cache"]["infinite_cache_hit_bound"], linestyle="--", label="infinite cache")
    ax.set(xlabel="LRU capacity (entries)", ylabel="hit rate", title=path.name)
    ax.legend()
    fig.savefig(out, dpi=120, bbox_inches="tight")


@app.command("inspect")
@clean_errors
def inspect_command(
    path: Path = typer.Argument(..., help="Trace file (CSV, JSON lines or Parquet)."),
    fmt: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    mapping: str = typer.Option(None, "--map", help=MAP_HELP),
    time_unit: str = typer.Option("auto", help="auto, datetime, s, ms or us."),
    sort: bool = typer.Option(False, "--sort", help="Sort out-of-order rows (with a warning)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    plot: Path = typer.Option(None, "--plot", help="Write the LRU curve as a PNG (plot extra)."),
) -> None:
    """Requests, span, rates, burstiness, token percentiles; for query streams the cache."""
    from sim.traces import reader, stats
    f = formats.resolve(path, fmt, mapping, time_unit)
    state = reader.ReadState(path, f)
    s = stats.inspect(reader.read_batches(path, f, sort=sort, state=state))
    _warn(state.warnings)
    if plot is not None:
        _plot(path, s, plot)
    if as_json:
        print_json({"path": str(path), "format": f.name, "kind": f.kind, **s})
    else:
        _show(path, f, s)


@app.command("convert")
@clean_errors
def convert_command(
    path: Path = typer.Argument(..., help="Trace file to convert."),
    out: Path = typer.Option(..., "--out", help="Canonical Parquet file to write."),
    fmt: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    mapping: str = typer.Option(None, "--map", help=MAP_HELP),
    time_unit: str = typer.Option("auto", help="auto, datetime, s, ms or us."),
    sort: bool = typer.Option(False, "--sort", help="Sort out-of-order rows (with a warning)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    """Stream a trace into canonical Parquet (time_s, prompt_tokens, output_tokens, key)."""
    from sim.io import tracefiles
    require_new_file(out, force)
    f = formats.resolve(path, fmt, mapping, time_unit)
    rows = tracefiles.convert(path, f, out, sort=sort)
    console.print(f"wrote {rows:,} rows ({f.kind} trace) to {out}")


@app.command("synth")
@clean_errors
def synth_command(
    scenario: Path = typer.Argument(..., help="Scenario whose workload to draw."),
    out: Path = typer.Option(..., "--out", help="Canonical Parquet file to write."),
    overrides: list[str] = typer.Option([], "--set", help="Override: section.key=value."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    """Write the scenario's synthetic query stream (same seed, same file) for sharing."""
    from sim.io import tracefiles
    from sim.scenario import loading
    require_new_file(out, force)
    s = loading.load(scenario, overrides)
    if s.workload.arrival == "trace":
        raise SearchsimError(Problem("workload.arrival", "trace", "a synthetic process"))
    rows = tracefiles.synth(s, out)
    console.print(f"wrote {rows:,} queries to {out}")
