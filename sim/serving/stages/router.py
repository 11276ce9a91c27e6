"""Routers: which replica takes the next request. A dict of small classes, nothing more."""

from __future__ import annotations

from typing import Protocol


class RoundRobin:
    def __init__(self):
        self._next = 0

    def pick(self, replicas) -> int:
        """The next in turn among `replicas`, which may be fewer than last time (replicas
        that are down are left out)."""
        i = self._next % len(replicas)
        self._next = i + 1
        return i


class LeastOutstanding:
    """Fewest requests queued or running, counting the new one, per unit of the replica's
    speed (a mixed fleet sends a faster replica proportionally more); ties go to the lowest
    index (deterministic). With equal speeds: the fewest outstanding."""

    def pick(self, replicas) -> int:
        best, best_load = 0, (replicas[0].outstanding + 1) / replicas[0].speed
        for i in range(1, len(replicas)):
            load = (replicas[i].outstanding + 1) / replicas[i].speed
            if load < best_load:
                best, best_load = i, load
        return best


class Router(Protocol):
    def pick(self, replicas) -> int:
        """The index of the replica that takes the next request."""


ROUTERS: dict[str, type[Router]] = {"round_robin": RoundRobin,
                                    "least_outstanding": LeastOutstanding}
