"""Streaming a large trace: peak memory of `inspect` and of replay at two trace sizes.

Writes an Azure-format CSV of N rows to a temporary directory, then streams it in a fresh
process (so peak RSS is this pass's own) through the inspector and through the replay source.

    .venv/bin/python bench/bench_trace.py [ROWS ...]     (default: 1000000 4000000)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import ROOT, peak_rss_mb, timed

CHUNK = 500_000


def write_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    origin = np.datetime64("2023-11-16T18:00:00", "ns")
    t_ns = 0
    with open(path, "w") as f:
        f.write("TIMESTAMP,ContextTokens,GeneratedTokens\n")
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            gaps = rng.exponential(0.2e9, n).astype(np.int64)
            ns = t_ns + np.cumsum(gaps)
            t_ns = int(ns[-1])
            stamps = np.datetime_as_string(origin + ns.astype("timedelta64[ns]"), unit="us")
            prompt = rng.integers(10, 8000, n)
            output = rng.integers(1, 1000, n)
            f.write("\n".join(f"{s.replace('T', ' ')},{p},{o}" for s, p, o in
                              zip(stamps, prompt, output, strict=True)))
            f.write("\n")


def measure(mode: str, path: str) -> None:
    sys.path.insert(0, str(ROOT))
    from sim.scenario.schema import Trace
    from sim.traces import formats, reader, stats
    from sim.traces.replay import trace_chunks

    p = Path(path)
    if mode == "inspect":
        s, wall = timed(lambda: stats.inspect(reader.read_batches(p, formats.resolve(p))))
        n = s["requests"]
    else:
        opts = Trace(path=path)
        n, wall = timed(lambda: sum(len(c["time"]) for c in trace_chunks(
            opts, 1e12, np.random.default_rng(0))))
    print(f"  {mode:8s} {n:>10,} rows in {wall:6.1f} s = {n / wall:>9,.0f} rows/s; "
          f"peak RSS {peak_rss_mb():.0f} MB", flush=True)


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            path = Path(tmp) / f"trace_{rows}.csv"
            write_csv(path, rows)
            print(f"trace of {rows:,} rows ({path.stat().st_size / 1e6:.0f} MB on disk):")
            for mode in ("inspect", "replay"):
                subprocess.run([sys.executable, __file__, "--measure", mode, str(path)],
                               check=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        measure(sys.argv[2], sys.argv[3])
    else:
        main([int(x) for x in sys.argv[1:]] or [1_000_000, 4_000_000])
