"""The LLM pool: R replicas of one model on `tp` accelerators each, behind a router."""

from __future__ import annotations

import math
from dataclasses import dataclass

import simpy

from sim.model.catalog import Power
from sim.model.perf import StepModel
from sim.serving.monitor import Marks
from sim.serving.snapshot import Snapshot
from sim.serving.stages.continuous import Scheduling
from sim.serving.stages.faults import Failures
from sim.serving.stages.replica import PoolLevels
from sim.serving.stages.request import Countdown, Request
from sim.serving.stages.router import ROUTERS, PrefixAffinity
from sim.serving.stages.static import StaticReplica


def _replica_class(batching: str):
    if batching == "continuous":
        from sim.serving.stages.continuous import ContinuousReplica
        return ContinuousReplica
    return StaticReplica


@dataclass(frozen=True)
class ReplicaGroup:
    """Identical replicas of a pool: their step model, chips each, KV tokens each (continuous
    batching), power by state, peak FLOP/s per chip, and relative speed."""

    step: StepModel
    tp: int
    count: int
    kv_capacity_tokens: int | None = None
    power: Power | None = None
    peak_flops: float = 0.0
    speed: float = 1.0
    scheduling: Scheduling | None = None  # continuous batching: the engine's rules


def _prefix_share(cfg) -> tuple[float, int] | None:
    """(share of each replica's KV budget, tokens per block) of its prefix cache, or None."""
    caching = getattr(cfg, "prefix_cache", None)
    if caching is None:
        return None
    return caching.memory_fraction, cfg.prefix_block_tokens


class LLMPool:
    def __init__(self, env: simpy.Environment, cfg, step, records, kv_capacity_tokens=None,
                 marks: Marks | None = None, power: Power | None = None,
                 groups: list[ReplicaGroup] | None = None):
        """`records` is told of each request submitted and finished (a `Recorder`); `power`:
        the accelerators' watts by state (None: energy not tracked). `groups`: the replica
        groups of a mixed fleet (default: one group of `cfg.replicas` on `step`)."""
        self.env = env
        self.records = records
        self.levels = PoolLevels(marks)
        caching = getattr(cfg, "prefix_cache", None)
        self.router = PrefixAffinity(caching.affinity_slack) if caching is not None and \
            cfg.router == "prefix_affinity" else ROUTERS[cfg.router]()
        groups = groups or [ReplicaGroup(step, cfg.tp, cfg.replicas, kv_capacity_tokens, power)]
        self.chips = sum(g.tp * g.count for g in groups)
        cls = _replica_class(cfg.batching)
        self.replicas: list = []
        for g in groups:
            extra = {"max_wait": cfg.max_wait_s} if cfg.batching == "static" else {
                "kv_capacity_tokens": g.kv_capacity_tokens, "chunk_tokens": cfg.chunk_tokens,
                "scheduling": g.scheduling, "prefix": _prefix_share(cfg)}
            self.replicas += [cls(env, len(self.replicas) + i, g.step, g.tp, cfg.max_batch,
                                  self.levels, records.request_finished, g.power,
                                  g.peak_flops, g.speed, **extra) for i in range(g.count)]
        for r in self.replicas:
            env.process(r.loop())
        idle = sum(g.tp * g.count * g.power.idle_w for g in groups if g.power is not None)
        if idle:  # every chip idles until its replica's first iteration
            self.levels.power_w.add(0.0, idle)
        self.levels.up.add(0.0, len(self.replicas))
        self.failures: Failures | None = None  # set when the scenario has `[faults]`
        self._next_rid = 0

    def start_failures(self, cfg, rng, domain_rng=None) -> None:
        self.failures = Failures(self.env, self, cfg, rng, domain_rng)

    def route(self, req: Request) -> None:
        """To the replica the router picks among those up (parked if none is)."""
        replicas = self.replicas
        if self.failures is not None:
            replicas = [r for r in replicas if not r.down]
            if not replicas:
                self.failures.park(req)
                return
        replicas[self.router.pick(replicas, req)].submit(req)

    def submit(self, qid: int, prompt: int, output: int, waiter: Countdown | None = None,
               arrival: float = math.nan, chain: tuple[int, ...] = ()) -> Request:
        req = Request(self.env, self._next_rid, qid, prompt, output, waiter, arrival, chain)
        self._next_rid += 1
        self.records.request_submitted(req)
        self.route(req)
        return req

    def snapshot(self, retrieval, end: float) -> Snapshot:
        """Levels and counters of this pool and the retrieval pool, as picklable data."""
        lv = self.levels
        for level in (lv.busy_chips, lv.busy_replicas, lv.busy_flops, lv.waiting, lv.running,
                      lv.power_w, lv.up, retrieval.busy, retrieval.queue, retrieval.up):
            level.close(end)
        return Snapshot(lv.busy_chips, lv.busy_replicas, lv.busy_flops, lv.waiting, lv.running,
                        lv.power_w, lv.up, retrieval.busy, retrieval.queue, retrieval.up,
                        tuple(r.stats() for r in self.replicas), lv.preemptions, lv.refusals,
                        self.submitted, end)

    def settle(self) -> None:
        """Bring running requests' counters up to now (the run is ending)."""
        for rep in self.replicas:
            rep.settle()

    @property
    def idle(self) -> bool:
        """Nothing queued, running or parked."""
        return all(r.outstanding == 0 for r in self.replicas) and not (
            self.failures is not None and self.failures.parked)

    @property
    def submitted(self) -> int:
        return self._next_rid

    def cancel(self, req: Request) -> None:
        """Stop work on a request: dropped if waiting; a continuous replica frees its slot."""
        if req.is_done:
            return
        req.waiter = None  # its query has stopped waiting
        self.replicas[req.replica].cancel(req)
