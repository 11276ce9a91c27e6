"""Run independent jobs on a local process pool (one simulation per process at a time), or
on a Ray cluster (`backend="ray"`: the `ray` extra, a local instance or `address`).

Results come back in the order of the jobs whatever the backend, so output does not depend
on scheduling: the same seed gives the same results locally and on Ray.

Progress counts jobs and, on local processes, the share of each running job done: a job
calls `report(fraction)` as it goes (its simulated time), which lands in a shared array
slot the parent reads twice a second, so a long job shows itself before it ends. Reports
nest: a job that maps jobs of its own passes them on as its own fraction."""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from sim.errors import Problem, SearchsimError

BACKENDS = ("local", "ray")
POLL_S = 0.5  # how often the parent reads the running jobs' shares

# this process's running job: where report() writes its share (set per job)
_reporter: list[Callable[[float], None] | None] = [None]
_shared: list = [None]  # in a worker: the pool's array of running jobs' shares


def report(fraction: float) -> None:
    """The running job's share done (0 to 1), from inside it; nothing outside a job."""
    if _reporter[0] is not None:
        _reporter[0](min(1.0, max(0.0, fraction)))


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
        return _in_order(fn, jobs, tick)
    return _on_pool(fn, jobs, workers, tick)


def _in_order(fn: Callable, jobs: list, tick: Callable) -> list:
    """One job after the other in this process, each reporting its share as it goes; what
    `tick` itself reports goes to the enclosing job, if any."""
    out: list = []
    outer = _reporter[0]

    def share(fraction: float) -> None:
        _reporter[0] = outer
        try:
            tick(len(out) + fraction, len(jobs))
        finally:
            _reporter[0] = share

    try:
        for j in jobs:
            _reporter[0] = share
            result = fn(j)
            _reporter[0] = outer
            out.append(result)
            tick(len(out), len(jobs))
    finally:
        _reporter[0] = outer
    return out


def _on_pool(fn: Callable, jobs: list, workers: int, tick: Callable) -> list:
    results: list = [None] * len(jobs)
    shares = multiprocessing.Array("d", len(jobs), lock=False)
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=_worker_init,
                               initargs=(shares,))
    try:
        futures = {pool.submit(_tracked, fn, i, j): i for i, j in enumerate(jobs)}
        pending, done = set(futures), 0
        while pending:
            finished, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for fut in finished:
                results[futures[fut]] = fut.result()
                done += 1
            tick(done + sum(shares[futures[f]] for f in pending), len(jobs))
    except BaseException:  # an interrupt, SIGTERM or a failed job: stop now, not when all end
        _stop(pool)
        raise
    pool.shutdown()
    return results


def _tracked(fn: Callable, index: int, job):
    """Run a job in a worker with report() writing to its slot of the shared array."""
    shares = _shared[0]

    def put(fraction: float) -> None:
        shares[index] = fraction

    _reporter[0] = put
    try:
        return fn(job)
    finally:
        _reporter[0] = None


def _worker_init(shares) -> None:
    """Workers leave interrupts to the parent, which stops them (Ctrl-C reaches the whole
    process group; a worker would otherwise print its own traceback), and keep the array
    their jobs report into."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _shared[0] = shares


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
