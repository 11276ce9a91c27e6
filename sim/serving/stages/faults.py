"""Replica failures: each replica of a pool alternates up and down times drawn from the
scenario's `[faults]` distributions on their own random stream, and so does each failure
domain (consecutive replicas that fail and come back together). A failure empties the
replica (the iteration in progress is lost); its requests start over on a replica that is
up (`retry`: prompt and output recomputed; parked until one is repaired if none is) or are
lost (`lose`: recorded as lost and cancelled). A request already cancelled just ends.
"""

from __future__ import annotations

import math
from collections import deque

import simpy
from simpy.events import Timeout

from sim.model.distributions import Buffered
from sim.serving.stages.request import Request


class Failures:
    def __init__(self, env: simpy.Environment, pool, cfg, rng, domain_rng=None):
        """`rng` draws the replicas' own times; `domain_rng` (default: `rng`) the domains'."""
        self.env, self.pool, self.policy = env, pool, cfg.policy
        self.parked: deque[Request] = deque()  # retried with no replica up
        self._causes = [0] * len(pool.replicas)  # what keeps each replica down now
        # up and down times each on a stream of their own (spawned from the one given), so
        # how many a bulk draw takes cannot change which value goes where
        if cfg.replicas_fail:
            up_rng, down_rng = rng.spawn(2)
            up, down = Buffered(cfg.up_time(), up_rng), Buffered(cfg.down_time(), down_rng)
            for rep in pool.replicas:
                env.process(self._cycle([rep], up, down))
        if cfg.domains_fail:
            up_rng, down_rng = (rng if domain_rng is None else domain_rng).spawn(2)
            up, down = Buffered(cfg.domain_up_time(), up_rng), \
                Buffered(cfg.domain_down_time(), down_rng)
            size = cfg.domain_replicas
            for first in range(0, len(pool.replicas), size):
                env.process(self._cycle(pool.replicas[first:first + size], up, down))

    def _cycle(self, members: list, up: Buffered, down: Buffered):
        """A replica's own up and down times, or a failure domain's (its members together)."""
        while True:
            yield Timeout(self.env, up.next())
            self.fail_all(members)
            yield Timeout(self.env, down.next())
            self.repair_all(members)

    def fail(self, rep) -> None:
        self.fail_all([rep])

    def repair(self, rep) -> None:
        self.repair_all([rep])

    def fail_all(self, members: list) -> None:
        """One more cause keeps each member down (its own failure or its domain's): the
        first takes it down. Every member is down before any of their requests moves, so
        none moves to a member failing at the same moment."""
        emptied = []
        for rep in members:
            self._causes[rep.index] += 1
            if self._causes[rep.index] == 1:
                self.pool.levels.up.add(self.env.now, -1)
                emptied.append((rep, rep.fail()))
        for rep, held in emptied:
            for req in held:
                self._displaced(rep, req)

    def _displaced(self, rep, req: Request) -> None:
        """A request its replica's failure took: ended, lost, or started over elsewhere."""
        if req.cancelled:  # its query gave up on it already
            rep.finish(req)
        elif self.policy == "lose":
            req.lost = req.cancelled = True
            rep.finish(req)
        else:
            req.retries += 1
            req.generated = 0
            req.transferred = 0  # KV that arrived from a prefill pool is lost with it too
            req.first_token = math.nan
            self.pool.route(req)

    def repair_all(self, members: list) -> None:
        """One cause of each member's outage ends: the last brings it back. Requests parked
        while no replica was up go out once every member is back."""
        back = False
        for rep in members:
            self._causes[rep.index] -= 1
            if self._causes[rep.index] == 0:
                rep.repair()
                self.pool.levels.up.add(self.env.now, 1)
                back = True
        if not back:
            return
        parked, self.parked = self.parked, deque()
        if parked:
            self.pool.levels.waiting.add(self.env.now, -len(parked))
        for req in parked:
            self.pool.route(req)

    def park(self, req: Request) -> None:
        self.parked.append(req)
        self.pool.levels.waiting.add(self.env.now, 1)
