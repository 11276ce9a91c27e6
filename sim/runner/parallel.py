"""Run independent jobs on a local process pool (one simulation per process at a time), or
on a Ray cluster (`backend="ray"`: the `ray` extra, a local instance or `address`).

Results come back in the order of the jobs whatever the backend, so output does not depend
on scheduling: the same seed gives the same results locally and on Ray."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed

from sim.errors import Problem, SearchsimError

BACKENDS = ("local", "ray")


def map_jobs(fn: Callable, jobs: Iterable, workers: int = 1,
             progress: Callable[[int, int], None] | None = None, backend: str = "local",
             address: str | None = None) -> list:
    """fn over jobs, results in job order; `progress(done, total)` after each job ends."""
    jobs = list(jobs)
    tick = progress or (lambda done, total: None)
    if backend == "ray":
        return _on_ray(fn, jobs, workers, tick, address)
    if backend != "local":
        raise SearchsimError(Problem("backend", backend, "one of: " + ", ".join(BACKENDS)))
    if workers <= 1 or len(jobs) <= 1:
        out = []
        for j in jobs:
            out.append(fn(j))
            tick(len(out), len(jobs))
        return out
    results: list = [None] * len(jobs)
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=_worker_signals)
    try:
        futures = {pool.submit(fn, j): i for i, j in enumerate(jobs)}
        for done, fut in enumerate(as_completed(futures), 1):
            results[futures[fut]] = fut.result()
            tick(done, len(jobs))
    except BaseException:  # an interrupt, SIGTERM or a failed job: stop now, not when all end
        _stop(pool)
        raise
    pool.shutdown()
    return results


def _worker_signals() -> None:
    """Workers leave interrupts to the parent, which stops them (Ctrl-C reaches the whole
    process group; a worker would otherwise print its own traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel the jobs not started and terminate the workers running the others."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        p.terminate()
    for p in processes:
        p.join(timeout=2.0)


def _ray():
    try:
        import ray
    except ImportError:
        raise SearchsimError(Problem("backend", "ray", "the ray extra: pip install "
                                     "'searchsim[ray]'")) from None
    return ray


def _on_ray(fn: Callable, jobs: list, workers: int, tick, address: str | None) -> list:
    """Each job a Ray task (one CPU each); joins the cluster at `address`, or starts a local
    instance with `workers` CPUs. Progress counts tasks as they finish anywhere."""
    ray = _ray()
    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1)(fn)
    refs = [task.remote(j) for j in jobs]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list = [None] * len(jobs)
    pending, done = list(refs), 0
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            results[index[ref]] = ray.get(ref)
            done += 1
            tick(done, len(jobs))
    return results
