"""A sharded run streamed to Parquet: each shard writes its own tables and they are merged
file to file. Prints simulated LLM requests per wall-second and the largest peak RSS of any
process (the shards' workers and the merging parent), which should barely grow with the
run's length.

    .venv/bin/python bench/bench_shards_stream.py [SIMULATED_HOURS] [SHARDS]

Runs `modern_two_stage` for SIMULATED_HOURS (default 1) on SHARDS processes (default 2) in a
child process, into a temporary directory, checks that every request has its row, then
removes it.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from common import ROOT

CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from sim.runner.api import run
from sim.scenario import loading
s = loading.load(Path({root!r}) / "scenarios" / "modern_two_stage.toml",
                 ["run.duration_s={duration}", "run.shards={shards}", "run.jobs={shards}"])
res = run(s, tables="file", stream_to=Path({out!r}))
print(res.summary["llm_requests_submitted"])
"""


def main(hours: str = "1", shards: str = "2") -> None:
    out = Path(tempfile.mkdtemp(prefix="searchsim-bench-"))
    code = CHILD.format(root=str(ROOT), duration=float(hours) * 3600, shards=int(shards),
                        out=str(out))
    try:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                              text=True)
        wall = time.perf_counter() - t0
        submitted = int(done.stdout.split()[-1])
        rows = pq.ParquetFile(out / "requests.parquet").metadata.num_rows
        assert rows == submitted, (rows, submitted)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        print(f"modern_two_stage {hours} h on {shards} shards, streamed: {rows:,} LLM requests "
              f"in {wall:.1f} s wall (imports included) = {rows / wall:,.0f} requests/wall-s; "
              f"largest peak RSS of a process {peak:.0f} MB (every row on disk)", flush=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
