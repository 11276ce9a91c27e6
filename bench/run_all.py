"""Run every benchmark, each in its own process so peak memory is its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [["bench_core.py", "static"], ["bench_core.py", "continuous"],
        ["bench_core.py", "continuous", "modern_two_stage", "1800"],
        ["bench_core.py", "continuous", "modern_two_stage", "1800", "2"],
        ["bench_reference.py", "10000"], ["bench_reference.py", "100000"],
        ["bench_stream.py", "10000000"], ["bench_shards_stream.py", "1", "2"],
        ["bench_shards_stream.py", "4", "2"], ["bench_trace.py"], ["bench_google_size.py"],
        ["bench_features.py"]]

for args in RUNS:
    if (HERE / args[0]).exists():
        subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], check=True, cwd=HERE)
