"""Piecewise-constant levels (busy servers, queue length) logged at each change, integrated
exactly over any window or set of time bins afterwards."""

from __future__ import annotations

import numpy as np


class Level:
    __slots__ = ("_t", "_v", "value")

    def __init__(self, value: float = 0.0):
        self._t: list[float] = [0.0]
        self._v: list[float] = [value]
        self.value = value

    def add(self, now: float, delta: float) -> None:
        self.set(now, self.value + delta)

    def set(self, now: float, value: float) -> None:
        self.value = value
        if self._t[-1] == now:
            self._v[-1] = value
        else:
            self._t.append(now)
            self._v.append(value)

    def cumulative(self, at: np.ndarray) -> np.ndarray:
        """The integral of the level from 0 to each time in `at`."""
        t, v = np.asarray(self._t), np.asarray(self._v)
        c = np.concatenate([[0.0], np.cumsum(v[:-1] * np.diff(t))])
        k = np.searchsorted(t, at, side="right") - 1
        return c[k] + v[k] * (at - t[k])

    def integral(self, start: float, end: float) -> float:
        lo, hi = self.cumulative(np.array([start, end]))
        return float(hi - lo)

    def bin_means(self, edges: np.ndarray) -> np.ndarray:
        return np.diff(self.cumulative(edges)) / np.diff(edges)


def total(levels: list[Level]) -> Level:
    """The sum of several levels, as one level (e.g. the busy chips of every shard)."""
    times = np.unique(np.concatenate([np.asarray(lv._t) for lv in levels]))
    values = np.zeros(len(times))
    for lv in levels:
        t, v = np.asarray(lv._t), np.asarray(lv._v)
        values += v[np.searchsorted(t, times, side="right") - 1]
    out = Level(float(values[0]))
    out._t, out._v = times.tolist(), values.tolist()
    out.value = float(values[-1])
    return out
