"""The retrieval pool: c identical servers, first come first served, with an optional
per-call timeout and a retry budget, and optional server failures.

Servers are pooled (one queue), so a failure picks the server that fails uniformly among
those up: a busy one with probability (calls in service) / (servers up), and then the call
it was serving, uniformly among those in service, is cut. The failed server is taken out of
the pool for the repair time by a request that goes ahead of every queued call. A call cut
that way, or abandoned at its timeout, is a failed call, retried within the budget.
"""

from __future__ import annotations

import simpy
from simpy.events import Timeout

from sim.model.distributions import Buffered
from sim.serving.monitor import Marks, new_level

BREAKDOWN = -1  # a failed server's claim on the pool: ahead of every queued call (priority 0)


class RetrievalPool:
    def __init__(self, env: simpy.Environment, servers: int, service: Buffered,
                 marks: Marks | None = None, timeout_s: float | None = None, retries: int = 0,
                 on_failure: str = "degrade", failing: bool = False):
        """`failing`: servers may fail (`start_failures`), so calls can be cut."""
        self.env = env
        self.servers = servers
        self.failing = failing
        self.resource = simpy.PriorityResource(env, capacity=servers) if failing else \
            simpy.Resource(env, capacity=servers)
        self._serving: dict = {}  # a failing pool's calls in service: request -> process
        self._down = 0  # servers down now
        self._claims = 0  # failures queued for a server (every one down already)
        self.service = service
        self.busy = new_level(marks)
        self.queue = new_level(marks)
        self.up = new_level(marks)  # servers up (not failed)
        self.up.add(0.0, servers)
        self.timeout_s, self.retries, self.on_failure = timeout_s, retries, on_failure
        self.timeouts = 0  # calls abandoned at their timeout
        self.cut = 0  # calls cut by a server failure

    def _waiting(self) -> int:
        """Calls queued (a failure waiting for a server, when every one is down, is not)."""
        return len(self.resource.queue) - self._claims

    def _queue_changed(self) -> None:
        self.queue.set(self.env.now, self._waiting())

    def serve(self):
        """A SimPy sub-process: wait for a server, hold it; returns (wait, service seconds,
        whether it finished: a failure of its server cuts it)."""
        env, t0 = self.env, self.env.now
        with self.resource.request() as req:
            self._queue_changed()
            yield req
            self._queue_changed()
            wait = env.now - t0
            service = self.service.next()
            ok, served = yield from self._hold(req, service)
        return wait, served, ok

    def _hold(self, req, service: float):
        """Hold the server `req` got for `service` seconds, or until it fails: (finished,
        seconds held)."""
        env, start = self.env, self.env.now
        self.busy.add(start, 1)
        if self.failing:
            self._serving[req] = env.active_process
        try:
            yield env.timeout(service)
        except simpy.Interrupt:  # its server failed
            self.busy.add(env.now, -1)
            del self._serving[req]
            self.cut += 1
            return False, env.now - start
        self.busy.add(env.now, -1)
        if self.failing:
            del self._serving[req]
        return True, service

    def call(self):
        """A SimPy sub-process: a call, retried up to the budget while calls fail (at their
        timeout, or cut by a server failure); returns (wait, service, calls made, whether
        one succeeded, calls that timed out). Each call's timeout counts from its start,
        queueing included; a call cut at its timeout frees its server."""
        if self.timeout_s is None and not self.failing:
            wait, service, _ = yield from self.serve()
            return wait, service, 1, True, 0
        wait = service = 0.0
        timeouts = 0
        for attempt in range(1, self.retries + 2):
            before = self.timeouts
            w, s, ok = yield from (self._timed() if self.timeout_s is not None
                                   else self.serve())
            timeouts += self.timeouts - before  # this call's: a failed call not timed out
            wait, service = wait + w, service + s  # was cut by its server's failure
            if ok:
                return wait, service, attempt, True, timeouts
        return wait, service, self.retries + 1, False, timeouts

    def _timed(self):
        env, t0, limit = self.env, self.env.now, self.timeout_s
        with self.resource.request() as req:
            self._queue_changed()
            got = yield req | env.timeout(limit)
            if req not in got:  # timed out in the queue (leaving the block withdraws it)
                self.queue.set(env.now, self._waiting() - 1)
                self.timeouts += 1
                return env.now - t0, 0.0, False
            self._queue_changed()
            wait = env.now - t0
            service = self.service.next()
            ok, served = yield from self._hold(req, min(service, limit - wait))
            if ok and served < service:  # the timeout, not the server, ended it
                self.timeouts += 1
                return wait, served, False
        return wait, served, ok

    def start_failures(self, up: Buffered, down: Buffered, pick: Buffered) -> None:
        """Each server alternates up and down times (a `failing` pool only); `pick` draws
        uniform numbers in [0, 1) for which server fails."""
        for _ in range(self.servers):
            self.env.process(self._breakdowns(up, down, pick))

    def _breakdowns(self, up: Buffered, down: Buffered, pick: Buffered):
        env, resource = self.env, self.resource
        assert isinstance(resource, simpy.PriorityResource)  # a `failing` pool's
        while True:
            yield Timeout(env, up.next())
            self._cut_one(pick.next())
            with resource.request(priority=BREAKDOWN) as req:
                queued = not req.triggered  # every server is down or serving
                self._claims += queued
                yield req  # at once, or when the cut call lets go of its server
                if queued:  # no longer queued: the level counts calls only
                    self._claims -= 1
                    self._queue_changed()
                self._down += 1
                self.up.add(env.now, -1)
                yield Timeout(env, down.next())
                self._down -= 1
                self.up.add(env.now, 1)

    def _cut_one(self, u: float) -> None:
        """The failing server is the int(u x up)-th of the servers up, the busy ones first:
        if busy, the call it serves (that index among the calls in service) is cut."""
        working, serving = self.servers - self._down, list(self._serving.values())
        i = int(u * working)
        if i < len(serving):
            serving[i].interrupt("retrieval server failure")
