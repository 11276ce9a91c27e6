"""Writing a run directory atomically: everything goes into a temporary directory beside the
target, which is renamed into place only when complete. A crash or an interrupt leaves no
directory that looks like a finished run."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq

from sim.errors import Problem, SearchsimError
from sim.scenario import loading

FILES = ("summary.json", "queries.parquet", "requests.parquet", "timeseries.parquet",
         "scenario.toml")


def _clean(v):
    """JSON has no NaN or infinity: they become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    return v


def summary_json(summary: dict) -> str:
    return json.dumps(_clean(summary), indent=2) + "\n"


def check_target(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise SearchsimError(Problem("--out", str(target),
                                     "a path that does not exist yet (or pass --force)"))
    if target.exists() and not target.is_dir():
        raise SearchsimError(Problem("--out", str(target), "a directory"))


@contextmanager
def staging(target: str | Path, force: bool = False) -> Iterator[Path]:
    """A temporary directory beside `target`, renamed into place when the block completes
    (replacing `target` with `force`); removed if it fails."""
    target = Path(target)
    check_target(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_into(results, directory: Path) -> None:
    """The run's files in `directory` (its record tables only where they are in memory: a
    streamed run has written them there already)."""
    (directory / "summary.json").write_text(summary_json(results.summary), encoding="utf-8")
    (directory / "scenario.toml").write_text(loading.dumps(results.scenario),
                                             encoding="utf-8")
    tables = {"queries": results.queries, "requests": results.requests,
              "timeseries": results.timeseries}
    for name, table in tables.items():
        if table is not None:
            pq.write_table(table, directory / f"{name}.parquet", compression="zstd")
    missing = [f for f in FILES if not (directory / f).exists()]
    if missing:
        raise RuntimeError(f"run directory {directory} lacks {missing}")


def write_run(results, target: str | Path, force: bool = False) -> Path:
    with staging(target, force) as tmp:
        write_into(results, tmp)
    return Path(target)
