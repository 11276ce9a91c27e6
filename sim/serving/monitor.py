"""Piecewise-constant levels (busy servers, queue length), integrated exactly over the
measurement window and the time-series bins afterwards.

`Level` logs every change (exact at any time, memory growing with the run); `MarkedLevel`
integrates as it goes and keeps only its integral at the times the summary asks for (every
multiple of the time-series interval and the window's marks), so its memory is flat however
long the run. The simulator uses `MarkedLevel`; both give the same integrals at the marks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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

    def close(self, end: float) -> None:
        """Nothing to do: the whole log is kept."""

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


@dataclass(frozen=True)
class Marks:
    """The times a `MarkedLevel` keeps its integral at: every multiple of `grid` seconds and
    each of `extra`."""

    grid: float
    extra: tuple[float, ...] = ()


class MarkedLevel:
    __slots__ = ("value", "_t", "_area", "_next", "_grid", "_k", "_extra", "_at", "_closed")

    def __init__(self, marks: Marks, value: float = 0.0):
        self.value = value
        self._t = 0.0  # time of the last change
        self._area = 0.0  # the integral from 0 to `_t`
        self._grid, self._k = marks.grid, 0
        self._extra = sorted(set(marks.extra), reverse=True)  # popped from the end
        self._at: dict[float, float] = {}
        self._closed = math.inf
        self._next = self._upcoming()

    def _upcoming(self) -> float:
        grid = self._k * self._grid
        return min(grid, self._extra[-1]) if self._extra else grid

    def add(self, now: float, delta: float) -> None:
        if now >= self._next:
            self._mark_until(now)
        self._area += self.value * (now - self._t)
        self._t = now
        self.value += delta

    def set(self, now: float, value: float) -> None:
        if now >= self._next:
            self._mark_until(now)
        self._area += self.value * (now - self._t)
        self._t = now
        self.value = value

    def _mark_until(self, now: float) -> None:
        while self._next <= now:
            mark = self._next
            self._at[mark] = self._area + self.value * (mark - self._t)
            if mark == self._k * self._grid:
                self._k += 1
            while self._extra and self._extra[-1] <= mark:
                self._extra.pop()
            self._next = self._upcoming()

    def close(self, end: float) -> None:
        """The run ended at `end`: its integral is kept there, and the level holds after."""
        self._mark_until(end)
        self._at[end] = self._area + self.value * (end - self._t)
        self._closed = end

    def _cumulative_at(self, t: float) -> float:
        if t in self._at:
            return self._at[t]
        if t >= self._closed:
            return self._at[self._closed] + self.value * (t - self._closed)
        raise KeyError(f"no integral kept at t={t!r}: not one of the level's marks")

    def cumulative(self, at: np.ndarray) -> np.ndarray:
        return np.array([self._cumulative_at(float(t)) for t in np.asarray(at)])

    def integral(self, start: float, end: float) -> float:
        return self._cumulative_at(end) - self._cumulative_at(start)

    def bin_means(self, edges: np.ndarray) -> np.ndarray:
        return np.diff(self.cumulative(edges)) / np.diff(edges)


AnyLevel = Level | MarkedLevel


def new_level(marks: Marks | None) -> AnyLevel:
    return Level() if marks is None else MarkedLevel(marks)


def total(levels: list) -> AnyLevel:
    """The sum of several levels, as one level (e.g. the busy chips of every shard)."""
    if isinstance(levels[0], MarkedLevel):
        return _total_marked(levels)
    times = np.unique(np.concatenate([np.asarray(lv._t) for lv in levels]))
    values = np.zeros(len(times))
    for lv in levels:
        t, v = np.asarray(lv._t), np.asarray(lv._v)
        values += v[np.searchsorted(t, times, side="right") - 1]
    out = Level(float(values[0]))
    out._t, out._v = times.tolist(), values.tolist()
    out.value = float(values[-1])
    return out


def _total_marked(levels: list[MarkedLevel]) -> MarkedLevel:
    out = MarkedLevel(Marks(levels[0]._grid))
    # every time each level can answer: the common marks, and a shard's end only where the
    # shards that ran on past it passed it as a mark too
    times = sorted(t for t in set().union(*(lv._at for lv in levels))
                   if all(t in lv._at or t >= lv._closed for lv in levels))
    out._at = {t: sum(lv._cumulative_at(t) for lv in levels) for t in times}
    out._closed = max(lv._closed for lv in levels)
    out.value = sum(lv.value for lv in levels)
    return out
