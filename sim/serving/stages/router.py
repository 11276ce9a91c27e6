"""Routers: which replica takes the next request. A dict of small classes, nothing more."""

from __future__ import annotations

from typing import Protocol


class RoundRobin:
    def __init__(self):
        self._next = 0

    def pick(self, replicas, req=None) -> int:
        """The next in turn among `replicas`, which may be fewer than last time (replicas
        that are down are left out)."""
        i = self._next % len(replicas)
        self._next = i + 1
        return i


class LeastOutstanding:
    """Fewest requests queued or running, counting the new one, per unit of the replica's
    speed (a mixed fleet sends a faster replica proportionally more); ties go to the lowest
    index (deterministic). With equal speeds: the fewest outstanding."""

    def pick(self, replicas, req=None) -> int:
        best, best_load = 0, (replicas[0].outstanding + 1) / replicas[0].speed
        for i in range(1, len(replicas)):
            load = (replicas[i].outstanding + 1) / replicas[i].speed
            if load < best_load:
                best, best_load = i, load
        return best


class PrefixAffinity:
    """Cache-aware: the replica whose prefix cache holds the most of the request's leading
    blocks, among those whose load (outstanding requests per unit of speed, counting the
    new one) is within `slack` requests of the least loaded; ties and requests with nothing
    cached go to the least loaded (lowest index first). As SGLang's cache-aware router
    does, it trades a little balance for prefill it need not redo."""

    def __init__(self, slack: int = 4):
        self.slack = slack

    def pick(self, replicas, req=None) -> int:
        loads = [(r.outstanding + 1) / r.speed for r in replicas]
        limit = min(loads) + self.slack
        chain = req.chain if req is not None else ()
        best, best_held, best_load = 0, -1, 0.0
        for i, r in enumerate(replicas):
            load = loads[i]
            if load > limit:
                continue
            held = r.prefix.match(chain) if chain and r.prefix is not None else 0
            if held > best_held or (held == best_held and load < best_load):
                best, best_held, best_load = i, held, load
        return best


class Router(Protocol):
    def pick(self, replicas, req=None) -> int:
        """The index of the replica that takes the next request."""


ROUTERS: dict[str, type[Router]] = {"round_robin": RoundRobin,
                                    "least_outstanding": LeastOutstanding,
                                    "prefix_affinity": PrefixAffinity}
