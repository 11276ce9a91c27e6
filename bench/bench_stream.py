"""A long run with its record tables streamed to Parquet as it goes: simulated LLM requests
per wall-second and peak RSS, which should not grow with the run's length.

    .venv/bin/python bench/bench_stream.py [REQUESTS] [SCENARIO]

The run is the bundled scenario (modern_two_stage by default) made long enough for about
REQUESTS LLM requests (default 10,000,000); every request's row is written to
requests.parquet in a temporary directory, which is checked and then removed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from common import ROOT, report, timed

from sim.runner.api import run
from sim.scenario import loading


def main(requests: str = "10000000", scenario: str = "modern_two_stage") -> None:
    n = int(float(requests))
    path = ROOT / "scenarios" / f"{scenario}.toml"
    probe = run(loading.load(path, ["run.duration_s=1200", "run.warmup_s=400"]),
                tables="discard").summary
    per_second = probe["llm_requests"] / (probe["duration_s"] - probe["warmup_s"])
    duration = n / per_second * 1.06  # the cache warms over a long run: fewer per second
    s = loading.load(path, [f"run.duration_s={duration:.0f}", "run.warmup_s=200"])
    out = Path(tempfile.mkdtemp(prefix="searchsim-bench-"))
    try:
        res, wall = timed(lambda: run(s, tables="file", stream_to=out))
        rows = pq.ParquetFile(out / "requests.parquet").metadata.num_rows
        assert rows == res.summary["llm_requests_submitted"], (rows, res.summary)
        size = (out / "requests.parquet").stat().st_size / 1e6
        report(f"{scenario} streamed ({duration:,.0f} s simulated)", rows, wall,
               f"(every row on disk: requests.parquet {size:,.0f} MB)")
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
