"""A run of decode iterations priced at once: the time of its first k iterations and how
many have started by a given elapsed time, in O(1) for step models with `decode_lines`.

Decode iteration i of a run of `seqs` sequences has context `context + seqs * i`; a roofline
iteration costs the larger of a compute line and a memory line in i plus a constant, so the
run's cumulative time is a sum of at most two arithmetic progressions (the lines cross at
most once). Step models without `decode_lines` are priced iteration by iteration.
"""

from __future__ import annotations

import math

import numpy as np

from sim.model.perf import decode_times


def _progression(a: float, b: float, lo: int, hi: int) -> float:
    """sum of a + b i for i in [lo, hi)."""
    n = hi - lo
    return n * a + b * (n * (lo + hi - 1) / 2.0) if n > 0 else 0.0


class DecodeRun:
    __slots__ = ("steps", "_lines", "_switch", "_cum", "total")

    def __init__(self, step, seqs: int, context: float, steps: int):
        self.steps = steps
        lines = getattr(step, "decode_lines", None)
        self._cum = None
        if lines is None:
            self._cum = np.cumsum(decode_times(step, seqs, context, steps)).tolist()
            self.total = self._cum[-1]
            return
        a_c, b_c, a_m, b_m, extra = lines(seqs, context)
        first, second = (a_c + extra, b_c), (a_m + extra, b_m)
        if a_c < a_m:
            first, second = second, first
        # the first line is the larger at i = 0; it stays so until it falls below the second
        gap, slope = first[0] - second[0], second[1] - first[1]
        self._switch = steps if slope <= 0 else min(steps, math.floor(gap / slope) + 1)
        self._lines = (first, second)
        self.total = self.elapsed(steps)

    def elapsed(self, k: int) -> float:
        """Seconds from the run's start to the end of its k-th iteration."""
        if self._cum is not None:
            return self._cum[k - 1] if k > 0 else 0.0
        (a1, b1), (a2, b2) = self._lines
        s = min(k, self._switch)
        return _progression(a1, b1, 0, s) + _progression(a2, b2, s, k)

    def finished_by(self, elapsed: float) -> int:
        """Iterations complete `elapsed` seconds into the run."""
        m = min(self.steps, int(elapsed / self.total * self.steps)) if self.total > 0 \
            else self.steps
        while m < self.steps and self.elapsed(m + 1) <= elapsed:
            m += 1
        while m > 0 and self.elapsed(m) > elapsed:
            m -= 1
        return m

    def done_by(self, elapsed: float) -> int:
        """Iterations finished or in progress `elapsed` seconds into the run (at least one,
        at most `steps`): the run stops at the end of the one in progress."""
        return min(self.steps, self.finished_by(elapsed) + 1)
