"""Distributions as small value objects: each knows its analytic mean and variance and draws
in bulk from a numpy Generator. Configs name them as tables, e.g.
`{ dist = "lognormal", mean = 533, cv = 0.5 }`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fixed:
    value: float

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value, dtype=float)


@dataclass(frozen=True)
class Exponential:
    mean: float

    @property
    def variance(self) -> float:
        return self.mean**2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean, n)


@dataclass(frozen=True)
class Uniform:
    """Uniform on [low, high): the simulator's own draws (which server fails), not a
    scenario's."""

    low: float
    high: float

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def variance(self) -> float:
        return (self.high - self.low) ** 2 / 12

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)


@dataclass(frozen=True)
class _MeanCV:
    """A distribution parameterized by its own mean and coefficient of variation."""

    mean: float
    cv: float

    @property
    def variance(self) -> float:
        return (self.cv * self.mean) ** 2


@dataclass(frozen=True)
class Gamma(_MeanCV):
    """Gamma with a given mean and CV (cv = 1 is exponential)."""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, self.mean / shape, n)


@dataclass(frozen=True)
class Lognormal(_MeanCV):
    """Lognormal with a given mean and CV."""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        sigma2 = math.log1p(self.cv**2)
        mu = math.log(self.mean) - sigma2 / 2
        return rng.lognormal(mu, math.sqrt(sigma2), n)


@dataclass(frozen=True)
class Empirical:
    """Resampling of observed values (with optional weights)."""

    values: tuple[float, ...]
    weights: tuple[float, ...] | None = None

    def _p(self) -> np.ndarray | None:
        if self.weights is None:
            return None
        w = np.asarray(self.weights, dtype=float)
        return w / w.sum()

    @property
    def mean(self) -> float:
        return float(np.average(self.values, weights=self._p()))

    @property
    def variance(self) -> float:
        v = np.asarray(self.values, dtype=float)
        return float(np.average((v - self.mean) ** 2, weights=self._p()))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(np.asarray(self.values, dtype=float), size=n, p=self._p())


Distribution = Fixed | Exponential | Gamma | Lognormal | Empirical | Uniform
KINDS = {"fixed": Fixed, "exponential": Exponential, "gamma": Gamma, "lognormal": Lognormal,
         "empirical": Empirical}


def scv(d: Distribution) -> float:
    """Squared coefficient of variation, the quantity queueing formulas use."""
    return d.variance / d.mean**2


# Values drawn (or rows handed on) per numpy call wherever the simulator works in bulk:
# large enough to keep numpy's per-call cost off the hot path, small enough to stay in cache.
# Changing it changes no result (streams are consumed in order), only speed.
BLOCK = 4096


class Buffered:
    """Draws from a distribution in bulk and hands values out one at a time.

    Drawing thousands at once keeps numpy's per-call cost off the hot path; the sequence of
    values is the same whatever the consumer's pace, so runs stay reproducible.
    """

    __slots__ = ("dist", "rng", "size", "_buf", "_i")

    def __init__(self, dist: Distribution, rng: np.random.Generator, size: int = BLOCK):
        self.dist, self.rng, self.size = dist, rng, size
        self._buf: list[float] = []
        self._i = 0

    def next(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self.dist.sample(self.rng, self.size).tolist()
            self._i = 0
        v = self._buf[self._i]
        self._i += 1
        return v

    def take(self, n: int) -> list[float]:
        return [self.next() for _ in range(n)]


class TokenCounts(Buffered):
    """Token lengths: drawn values rounded to whole tokens, at least one."""

    __slots__ = ()

    def next(self) -> int:  # type: ignore[override]
        return max(1, int(round(super().next())))
