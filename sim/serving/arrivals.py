"""Arrival processes and query identities, generated in bulk chunks.

An arrival process yields numpy arrays of increasing arrival times below a horizon; a trace
reader plugs in behind the same interface (`chunks`). Query keys follow a Zipf popularity over
a finite set of distinct queries plus a share of one-off queries that never repeat.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sim.model.distributions import BLOCK, Distribution, Exponential, Gamma
from sim.serving.sharding import shard_of


def token_counts(dist: Distribution, rng: np.random.Generator, n: int) -> np.ndarray:
    """n token counts drawn from `dist`, rounded to whole tokens, at least one each."""
    return np.maximum(1, np.rint(dist.sample(rng, n))).astype(np.int64)


@dataclass(frozen=True)
class Renewal:
    """Independent inter-arrival gaps: exponential (Poisson) or gamma with a given CV (bursty)."""

    gap: Distribution

    @property
    def rate(self) -> float:
        return 1.0 / self.gap.mean

    def chunks(self, rng: np.random.Generator, horizon: float) -> Iterator[np.ndarray]:
        t = 0.0
        while True:
            times = t + np.cumsum(self.gap.sample(rng, BLOCK))
            inside = times[times < horizon]
            if len(inside):
                yield inside
            if len(inside) < BLOCK:
                return
            t = float(times[-1])


def poisson(rate: float) -> Renewal:
    return Renewal(Exponential(1.0 / rate))


def bursty(rate: float, cv: float) -> Renewal:
    return Renewal(Gamma(1.0 / rate, cv))


@dataclass(frozen=True)
class Diurnal:
    """A non-homogeneous Poisson process: `rate` x an hourly profile, by thinning.

    Candidates arrive at the peak rate and each is kept with probability rate(t) / peak
    (Lewis and Shedler), which realizes the profile exactly.
    """

    rate: float
    profile: tuple[float, ...]
    day_s: float = 86400.0
    start_hour: float = 0.0  # the hour of the profile's day at which the run starts

    def multiplier(self, t: np.ndarray) -> np.ndarray:
        hour = (np.floor(t / self.day_s * 24.0 + self.start_hour).astype(np.int64)) % 24
        return np.asarray(self.profile)[hour]

    def chunks(self, rng: np.random.Generator, horizon: float,
               thin_rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
        thin_rng = thin_rng if thin_rng is not None else rng
        peak = max(self.profile)
        for cand in poisson(self.rate * peak).chunks(rng, horizon):
            keep = thin_rng.random(len(cand)) < self.multiplier(cand) / peak
            if keep.any():
                yield cand[keep]


class QueryKeys:
    """Zipf(alpha) over `distinct` queries (key = rank), plus one-offs (fresh negative keys).
    With `shard` = (i, S), only the keys that hash to shard i, at their Zipf weights
    renormalized: the queries that shard would keep from the whole stream."""

    def __init__(self, distinct: int, alpha: float, one_off_share: float,
                 rng: np.random.Generator, shard: tuple[int, int] | None = None):
        ranks = np.arange(distinct, dtype=np.int64)
        self._keys = None
        if shard is not None:
            ranks = ranks[shard_of(ranks, shard[1]) == shard[0]]
            self._keys = ranks
        weights = (ranks + 1.0) ** -alpha
        self._cdf = np.cumsum(weights / weights.sum())
        self._cdf[-1] = 1.0
        self.one_off_share = one_off_share
        self.rng = rng
        self._next_one_off = -1

    def sample(self, n: int) -> np.ndarray:
        u = self.rng.random(n)
        keys = np.searchsorted(self._cdf, self.rng.random(n), side="right").astype(np.int64)
        if self._keys is not None:
            keys = self._keys[keys]
        one_off = u < self.one_off_share
        count = int(one_off.sum())
        keys[one_off] = np.arange(self._next_one_off, self._next_one_off - count, -1)
        self._next_one_off -= count
        return keys


def _times_only(chunks: Iterator[np.ndarray]) -> Iterator[dict]:
    for times in chunks:
        yield {"time": times}


def arrivals(cfg, rngs: dict, horizon: float) -> Iterator[dict]:
    """The scenario's arrivals as chunks below `horizon`: {"time": ...} from a process, plus
    "key", "prompt" and "output" columns where a trace has them."""
    if cfg.arrival == "trace":
        from sim.traces.replay import trace_chunks
        return trace_chunks(cfg.trace, horizon, rngs["trace"])
    if cfg.arrival == "bursty":
        return _times_only(bursty(cfg.rate_qps, cfg.cv).chunks(rngs["arrivals"], horizon))
    if cfg.arrival == "diurnal":
        return _times_only(Diurnal(cfg.rate_qps, tuple(cfg.profile), cfg.day_s,
                                   cfg.start_hour).chunks(
            rngs["arrivals"], horizon, rngs["thinning"]))
    return _times_only(poisson(cfg.rate_qps).chunks(rngs["arrivals"], horizon))
