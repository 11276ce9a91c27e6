"""What every command shares: the console, clean error exits, JSON printing."""

from __future__ import annotations

import functools
import json
import signal
import sys

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from sim.errors import Problem, SearchsimError

# Piped output is read by programs and people's pagers: never fold a number to fit 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=1000)
err_console = Console(stderr=True)
DEBUG = {"on": False}
EXIT_BAD_INPUT = 2


def assumes(s) -> str:
    """What a scenario's answer assumes: its serving engine and step-time model."""
    step = f"profile {s.llm.profile}" if s.llm.step_model == "roofline" else \
        f"the article's 2N FLOPs at {s.llm.mfu:.1%} MFU"
    return f"engine {s.llm.engine}, {step}"


def fail(lines: list[str], code: int = EXIT_BAD_INPUT) -> None:
    for line in lines:
        err_console.print(f"error: {line}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


EXIT_INTERRUPTED = 130


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """SIGTERM stops a run the way Ctrl-C does: cleanly, nothing half-written left behind."""
    signal.signal(signal.SIGTERM, _interrupt)


def clean_errors(fn):
    """Bad input becomes one line per problem and exit status 2; an interrupt exits 130 with
    nothing written; --debug keeps the traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SearchsimError as exc:
            if DEBUG["on"]:
                raise
            fail(exc.lines)
        except KeyboardInterrupt:
            if DEBUG["on"]:
                raise
            fail(["interrupted: stopped cleanly, no result was written"], EXIT_INTERRUPTED)

    return wrapper


def require_new_file(out, force: bool) -> None:
    """`--out` may name an existing file only with --force."""
    if out is not None and out.exists() and not force:
        raise SearchsimError(Problem("--out", str(out), "a new file (or pass --force)"))


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=float) + "\n")


def percent(value: float) -> str:
    """A share as a percentage that is never rounded up to 100% (or down to 0%): 99.98%
    shows as 99.98%, not 100.0%."""
    for digits in range(1, 6):
        text = f"{value:.{digits}%}"
        if (value >= 1 or text != f"{100:.{digits}f}%") and (value <= 0 or float(
                text.rstrip("%")) > 0):
            return text
    return f"{value:.6%}"


def fmt(value, unit: str = "") -> str:
    """Human formatting that keeps enough digits to compare with a printed figure."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if unit == "fraction":
        return percent(value)
    if unit == "x":
        return f"{value:.4g}x"
    if unit == "$":
        return f"${value:,.4g}" if abs(value) < 1000 else f"${value:,.0f}"
    if unit == "bytes":
        return f"{value / 1e9:,.4g} GB" if value < 1e12 else f"{value / 1e12:,.4g} TB"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.4g}"


def table(title: str, columns: list[str], rows: list[list[str]]) -> RenderableType:
    """A table without vertical rules (two spaces between columns, so more fit in 80), its
    title a line above it, wrapped to the terminal rather than to the table's width."""
    t = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*r)
    return Group(Text(title, style="italic"), t) if title else t


ERROR_COLUMNS = ["group", "n", "MAPE", "worst"]


def error_rows(stats: list[dict]) -> list[list[str]]:
    """Rows of `calibration.table`'s per-group MAPE and worst error."""
    return [[str(r["group"]), str(r["n"]), f"{r['mape']:.1%}", f"{r['worst']:.1%}"]
            for r in stats]
