"""The retrieval pool: c identical servers, first come first served."""

from __future__ import annotations

import simpy

from sim.model.distributions import Buffered
from sim.serving.monitor import Marks, new_level


class RetrievalPool:
    def __init__(self, env: simpy.Environment, servers: int, service: Buffered,
                 marks: Marks | None = None):
        self.env = env
        self.servers = servers
        self.resource = simpy.Resource(env, capacity=servers)
        self.service = service
        self.busy = new_level(marks)
        self.queue = new_level(marks)

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
