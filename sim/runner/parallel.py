"""Run independent jobs on a local process pool (one simulation per process at a time).

Results come back in the order of the jobs, so output does not depend on scheduling."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed


def map_jobs(fn: Callable, jobs: Iterable, workers: int = 1,
             progress: Callable[[int, int], None] | None = None) -> list:
    """fn over jobs, results in job order; `progress(done, total)` after each job ends."""
    jobs = list(jobs)
    tick = progress or (lambda done, total: None)
    if workers <= 1 or len(jobs) <= 1:
        out = []
        for j in jobs:
            out.append(fn(j))
            tick(len(out), len(jobs))
        return out
    results: list = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = {pool.submit(fn, j): i for i, j in enumerate(jobs)}
        for done, fut in enumerate(as_completed(futures), 1):
            results[futures[fut]] = fut.result()
            tick(done, len(jobs))
    return results
