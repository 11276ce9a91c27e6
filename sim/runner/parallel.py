"""Run independent jobs on a local process pool (one simulation per process at a time).

Results come back in the order of the jobs, so output does not depend on scheduling."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor


def map_jobs(fn: Callable, jobs: Iterable, workers: int = 1) -> list:
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        return [fn(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(fn, jobs))
