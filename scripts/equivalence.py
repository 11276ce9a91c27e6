"""Check that a change left the simulation's outputs alone: save every bundled scenario's
tables and summary before the change, again after, and compare them column by column.

    .venv/bin/python scripts/equivalence.py save DIR     (run from the tree to check)
    .venv/bin/python scripts/equivalence.py compare BEFORE AFTER

Integer, boolean and string columns must be identical; float columns equal to 1e-9 (what
the golden tests allow; a change of summation order moves the last bits). Prints one line
per table and exits 1 if any differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHORT = ["run.duration_s=600", "run.warmup_s=100", "run.drain_s=300"]
EXTRA = {  # cases the bundled scenarios do not reach
    "preempting": ("scenarios/modern_two_stage", ["llm.kv_memory_fraction=0.015"]),
    "overloaded": ("scenarios/chatgpt_equivalent", ["llm.batching='continuous'",
                                                    "workload.rate_qps=20", "run.drain_s=30"]),
    # prompts longer than a chunk: runs of chunked-prefill iterations
    "reference": ("bench/scenarios/reference_workload", []),
    "small_chunks": ("scenarios/modern_two_stage_faults", ["llm.chunk_tokens=96"]),
}


def save(out: Path) -> None:
    from sim.runner.api import run
    from sim.scenario import loading
    out.mkdir(parents=True, exist_ok=True)
    cases = {p.stem: (p, SHORT) for p in sorted((ROOT / "scenarios").glob("*.toml"))}
    cases.update({k: (ROOT / f"{name}.toml", [*SHORT, *sets])
                  for k, (name, sets) in EXTRA.items()})
    for name, (path, sets) in cases.items():
        res = run(loading.load(path, sets))
        if res.requests is not None:
            pq.write_table(res.requests, out / f"{name}.requests.parquet")
            pq.write_table(res.queries, out / f"{name}.queries.parquet")
        (out / f"{name}.json").write_text(json.dumps(res.summary, default=float))
        print(f"saved {name}", flush=True)


def _differences(a, b) -> list[str]:
    if a.num_rows != b.num_rows:
        return [f"rows {a.num_rows} != {b.num_rows}"]
    out = []
    for col in a.column_names:
        if col not in b.column_names:
            out.append(f"{col} missing")
            continue
        x = a[col].to_numpy(zero_copy_only=False)
        y = b[col].to_numpy(zero_copy_only=False)
        if x.dtype.kind == "f":
            if not np.allclose(x, y, rtol=0, atol=1e-9, equal_nan=True):
                out.append(f"{col} differs by {np.nanmax(np.abs(x - y)):.3g}")
        elif not (x == y).all():
            out.append(f"{col}: {int((x != y).sum())} rows differ")
    return out


def compare(before: Path, after: Path) -> int:
    bad = 0
    for f in sorted(before.glob("*.parquet")):
        diffs = _differences(pq.read_table(f), pq.read_table(after / f.name))
        bad += bool(diffs)
        print(f"{f.name}: {'; '.join(diffs) if diffs else 'same'}")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "save":
        save(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
