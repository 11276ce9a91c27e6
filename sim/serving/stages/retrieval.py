"""The retrieval pool: c identical servers, first come first served, with an optional
per-call timeout and a retry budget."""

from __future__ import annotations

import simpy

from sim.model.distributions import Buffered
from sim.serving.monitor import Marks, new_level


class RetrievalPool:
    def __init__(self, env: simpy.Environment, servers: int, service: Buffered,
                 marks: Marks | None = None, timeout_s: float | None = None, retries: int = 0,
                 on_failure: str = "degrade"):
        self.env = env
        self.servers = servers
        self.resource = simpy.Resource(env, capacity=servers)
        self.service = service
        self.busy = new_level(marks)
        self.queue = new_level(marks)
        self.timeout_s, self.retries, self.on_failure = timeout_s, retries, on_failure
        self.timeouts = 0  # calls abandoned at their timeout

    def serve(self):
        """A SimPy sub-process: wait for a server, hold it; returns (wait, service) seconds."""
        env, t0 = self.env, self.env.now
        with self.resource.request() as req:
            self.queue.set(env.now, len(self.resource.queue))
            yield req
            self.queue.set(env.now, len(self.resource.queue))
            wait = env.now - t0
            service = self.service.next()
            self.busy.add(env.now, 1)
            yield env.timeout(service)
            self.busy.add(env.now, -1)
        return wait, service

    def call(self):
        """A SimPy sub-process: `serve` under the timeout, retried up to the budget; returns
        (wait, service, calls made, whether one succeeded). Each call's timeout counts from
        its start, queueing included; a call cut at its timeout frees its server."""
        if self.timeout_s is None:
            wait, service = yield from self.serve()
            return wait, service, 1, True
        wait = service = 0.0
        for attempt in range(1, self.retries + 2):
            w, s, ok = yield from self._timed()
            wait, service = wait + w, service + s
            if ok:
                return wait, service, attempt, True
            self.timeouts += 1
        return wait, service, self.retries + 1, False

    def _timed(self):
        env, t0, limit = self.env, self.env.now, self.timeout_s
        with self.resource.request() as req:
            self.queue.set(env.now, len(self.resource.queue))
            got = yield req | env.timeout(limit)
            self.queue.set(env.now, len(self.resource.queue) - (req not in got))
            if req not in got:  # timed out in the queue (leaving the block withdraws it)
                return env.now - t0, 0.0, False
            wait = env.now - t0
            service = self.service.next()
            served = min(service, limit - wait)
            self.busy.add(env.now, 1)
            yield env.timeout(served)
            self.busy.add(env.now, -1)
        return wait, served, served == service
