"""The LLM pool: R replicas of one model on `tp` accelerators each, behind a router."""

from __future__ import annotations

import math
from dataclasses import dataclass

import simpy
from simpy.events import Timeout

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
    batching), power by state, peak FLOP/s per chip, relative speed, and data-parallel ranks
    (each admits the engine's batch and token budget: a replica of `ranks` admits that
    many times them)."""

    step: StepModel
    chips: int
    count: int
    kv_capacity_tokens: int | None = None
    power: Power | None = None
    peak_flops: float = 0.0
    speed: float = 1.0
    scheduling: Scheduling | None = None  # continuous batching: the engine's rules
    # a prefix cache: (share of the KV memory, tokens per block, host-memory blocks,
    # seconds to copy a block back from host memory)
    prefix: tuple[float, int, int, float] | None = None
    ranks: int = 1


IN_TRANSIT = -2  # a request's replica while its KV moves between pools


@dataclass(frozen=True)
class KVTransfer:
    """Moving a request's KV cache from a prefill to a decode replica: bytes over the link,
    plus its latency; `layerwise`, the layers before the last go while the prefill runs."""

    bytes_per_token: float
    link_bytes_s: float
    latency_s: float
    layers: int
    layerwise: bool = True

    def seconds(self, tokens: int, prefill_s: float) -> float:
        wire = tokens * self.bytes_per_token / self.link_bytes_s
        if self.layerwise:  # the last layer's share after the prefill, or what it left
            last = wire / self.layers
            wire = last + max(0.0, wire - last - prefill_s)
        return wire + self.latency_s


class LLMPool:
    def __init__(self, env: simpy.Environment, cfg, step, records, kv_capacity_tokens=None,
                 marks: Marks | None = None, power: Power | None = None,
                 groups: list[ReplicaGroup] | None = None,
                 kv_transfer: KVTransfer | None = None):
        """`records` is told of each request submitted and finished (a `Recorder`); `power`:
        the accelerators' watts by state (None: energy not tracked). `groups`: the replica
        groups of a mixed fleet (default: one group of `cfg.replicas` on `step`); with
        `kv_transfer`, the first group prefills and the second decodes (disaggregated)."""
        self.env = env
        self.records = records
        self.levels = PoolLevels(marks)
        caching = getattr(cfg, "prefix_cache", None)
        self.router = PrefixAffinity(caching.affinity_slack) if caching is not None and \
            cfg.router == "prefix_affinity" else ROUTERS[cfg.router]()
        groups = groups or [ReplicaGroup(step, cfg.chips_per_replica, cfg.replicas,
                                         kv_capacity_tokens, power, ranks=cfg.dp)]
        self.chips = sum(g.chips * g.count for g in groups)
        cls = _replica_class(cfg.batching)
        self.replicas: list = []
        for n, g in enumerate(groups):
            # a disaggregated fleet's decode pool prefills nothing: no prefix cache there
            prefix = None if kv_transfer is not None and n > 0 else g.prefix
            extra = {"max_wait": cfg.max_wait_s} if cfg.batching == "static" else {
                "kv_capacity_tokens": g.kv_capacity_tokens,
                "chunk_tokens": cfg.chunk_tokens and cfg.chunk_tokens * g.ranks,
                "scheduling": g.scheduling, "prefix": prefix}
            self.replicas += [cls(env, len(self.replicas) + i, g.step, g.chips,
                                  cfg.max_batch * g.ranks,
                                  self.levels, records.request_finished, g.power,
                                  g.peak_flops, g.speed, **extra) for i in range(g.count)]
        self.stages = [self.replicas]  # where a request that needs prefill goes, then after
        self.transfer = kv_transfer
        self.in_transit = 0
        if kv_transfer is not None:
            self._disaggregate(groups[0].count, cfg)
        for r in self.replicas:
            env.process(r.loop())
        idle = sum(g.chips * g.count * g.power.idle_w for g in groups if g.power is not None)
        if idle:  # every chip idles until its replica's first iteration
            self.levels.power_w.add(0.0, idle)
        self.levels.up.add(0.0, len(self.replicas))
        self.failures: Failures | None = None  # set when the scenario has `[faults]`
        self._next_rid = 0

    def _disaggregate(self, prefills: int, cfg) -> None:
        """The first `prefills` replicas prefill and hand each request on; the rest decode
        (each stage routed on its own, by the scenario's router)."""
        prefill, decode = self.replicas[:prefills], self.replicas[prefills:]
        for r in prefill:
            r.handoff, r.role = self.handoff, "prefill"
        for r in decode:
            r.role = "decode"
        self.stages = [prefill, decode]
        self.decode_router = ROUTERS["least_outstanding" if cfg.router == "prefix_affinity"
                                     else cfg.router]()

    def handoff(self, req: Request, tokens: int, prefill_s: float) -> None:
        """A prefill replica is done with `req`: its KV (`tokens`) moves to the decode pool,
        whose replica takes it when the transfer ends."""
        seconds = self.transfer.seconds(tokens, prefill_s)  # type: ignore[union-attr]
        req.replica = IN_TRANSIT
        req.transfer_s += seconds
        self.in_transit += 1
        Timeout(self.env, seconds).callbacks.append(lambda _: self._arrived(req, tokens))

    def _arrived(self, req: Request, tokens: int) -> None:
        self.in_transit -= 1
        if req.cancelled:  # its query stopped waiting while the KV was on the link
            req.finished = self.env._now
            self.records.request_finished(req)
            return
        req.first_token = self.env._now  # the first token reaches the user with the KV
        req.transferred = tokens
        self.route(req)

    def start_failures(self, cfg, rng, domain_rng=None) -> None:
        self.failures = Failures(self.env, self, cfg, rng, domain_rng)

    def route(self, req: Request) -> None:
        """To the replica the router picks among those up (parked if none is): in a
        disaggregated fleet, a request whose KV arrived goes to the decode pool, any other
        (new, or its KV lost with a failed replica) to the prefill pool."""
        decoding = req.transferred > 0
        replicas = self.stages[-1] if decoding else self.stages[0]
        if self.failures is not None:
            replicas = [r for r in replicas if not r.down]
            if not replicas:
                self.failures.park(req)
                return
        router = self.decode_router if decoding else self.router
        replicas[router.pick(replicas, req)].submit(req)

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
        return all(r.outstanding == 0 for r in self.replicas) and not self.in_transit and not (
            self.failures is not None and self.failures.parked)

    @property
    def submitted(self) -> int:
        return self._next_rid

    def cancel(self, req: Request) -> None:
        """Stop work on a request: dropped if waiting; a continuous replica frees its slot."""
        if req.is_done:
            return
        req.waiter = None  # its query has stopped waiting
        if req.replica == IN_TRANSIT:  # on the link between pools: dropped when it arrives
            req.cancelled = True
            return
        self.replicas[req.replica].cancel(req)
