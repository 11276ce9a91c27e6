"""Result cache policies. A lookup says hit or miss; a finished answer is inserted."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from sim.model.distributions import BLOCK


class NoCache:
    def lookup(self, key: int, now: float) -> bool:
        return False

    def insert(self, key: int, now: float) -> None:
        pass


class LRU:
    """Least-recently-used eviction at a fixed capacity, entries expiring after `ttl` seconds."""

    def __init__(self, capacity: int, ttl: float | None = None):
        self.capacity, self.ttl = capacity, ttl
        self._entries: OrderedDict[int, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: int, now: float) -> bool:
        inserted = self._entries.get(key)
        if inserted is None:
            return False
        if self.ttl is not None and now - inserted > self.ttl:
            del self._entries[key]
            return False
        self._entries.move_to_end(key)
        return True

    def peek(self, key: int, now: float) -> bool:
        """Whether `key` has a live entry, without using it."""
        inserted = self._entries.get(key)
        return inserted is not None and (self.ttl is None or now - inserted <= self.ttl)

    def insert(self, key: int, now: float) -> None:
        if self.capacity <= 0:
            return
        self._entries[key] = now
        self._entries.move_to_end(key)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


def flush(cache, fraction: float, rng: np.random.Generator) -> int:
    """An index update: invalidate each entry with probability `fraction` (all of them at
    1); returns how many were dropped. Only an LRU cache keeps entries to drop."""
    entries = getattr(cache, "_entries", None)
    if not entries:
        return 0
    if fraction >= 1.0:
        n = len(entries)
        entries.clear()
        return n
    keys = list(entries)
    drop = np.flatnonzero(rng.random(len(keys)) < fraction)
    for i in drop.tolist():
        del entries[keys[i]]
    return len(drop)


def flush_times(cfg, horizon: float) -> list[float]:
    """When the scenario's index updates empty the cache: the times given, plus every
    `flush_every_s` seconds, below `horizon`."""
    times = {t for t in cfg.flush_at_s if t < horizon}
    if cfg.flush_every_s is not None:
        k = 1
        while k * cfg.flush_every_s < horizon:
            times.add(k * cfg.flush_every_s)
            k += 1
    return sorted(times)


def flushes(env, cache, times: list[float], fraction: float, rng: np.random.Generator):
    """A SimPy process: flush the cache at each of `times`."""
    for t in times:
        yield env.timeout(t - env.now)
        flush(cache, fraction, rng)


class Bernoulli:
    """Each lookup hits with a fixed probability: the article's assumed hit rate."""

    def __init__(self, hit_rate: float, rng: np.random.Generator):
        self.hit_rate, self.rng = hit_rate, rng
        self._u: list[float] = []

    def lookup(self, key: int, now: float) -> bool:
        if not self._u:
            self._u = self.rng.random(BLOCK).tolist()[::-1]
        return self._u.pop() < self.hit_rate

    def insert(self, key: int, now: float) -> None:
        pass


def build(cfg, rng: np.random.Generator):
    if cfg.policy == "lru":
        return LRU(cfg.capacity, cfg.ttl_s)
    if cfg.policy == "bernoulli":
        return Bernoulli(cfg.hit_rate, rng)
    return NoCache()
