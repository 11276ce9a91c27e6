"""Trace replay as an arrival source: a time window, speed-up, rate scaling and looping,
streamed in chunks so memory stays bounded whatever the trace's length.

- window [start_s, end_s) in trace time, shifted to start at 0; then times are divided by
  `speed` (2 = twice as fast);
- `scale` < 1 thins rows independently; > 1 superposes ceil(scale) copies of the stream, copy i
  shifted by i x `copy_offset_s`, the last copy thinned to make up the fraction;
- `loop` repeats the (windowed) trace end to end until the run's horizon, one mean gap apart.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sim.model.distributions import BLOCK
from sim.traces.formats import resolve
from sim.traces.reader import read_batches


def _rows(opts, warnings: list | None = None) -> Iterator[tuple]:
    """(time, prompt, output, key, block hashes) of one pass over the window, time starting
    at 0."""
    fmt = resolve(Path(opts.path), opts.format, opts.mapping, opts.time_unit)
    for batch in read_batches(opts.path, fmt, sort=opts.sort):
        t = batch.column("time_s").to_numpy()
        keep = t >= opts.start_s
        if opts.end_s is not None:
            keep &= t < opts.end_s
        if not keep.any():
            if opts.end_s is not None and len(t) and t[0] >= opts.end_s:
                return
            continue
        cols = [batch.column(i).to_pylist() for i in range(1, 4)]
        blocks = batch.column("blocks").to_pylist() if "blocks" in batch.schema.names \
            else None
        for i in np.flatnonzero(keep).tolist():
            yield (float(t[i]) - opts.start_s, cols[0][i], cols[1][i], cols[2][i],
                   None if blocks is None else tuple(blocks[i] or ()))


def _looped(opts, horizon_trace: float) -> Iterator[tuple]:
    """Repeat the window end to end (trace time) until `horizon_trace`."""
    offset, span = 0.0, None
    while True:
        last, n = 0.0, 0
        for row in _rows(opts):
            t = row[0] + offset
            if t >= horizon_trace:
                return
            last, n = row[0], n + 1
            yield (t, *row[1:])
        if not opts.loop or n == 0:
            return
        if span is None:  # the window's length, or the trace's span plus one mean gap
            span = (opts.end_s - opts.start_s) if opts.end_s is not None else \
                last + (last / max(n - 1, 1))
        offset += span


def _copies(opts, horizon_trace: float, rng: np.random.Generator) -> Iterator[tuple]:
    if opts.scale <= 1.0:
        for row in _looped(opts, horizon_trace):
            if opts.scale == 1.0 or rng.random() < opts.scale:
                yield row
        return
    m = math.ceil(opts.scale)
    last_keep = opts.scale - (m - 1)

    def copy(i: int, keep: float):
        shift = i * opts.copy_offset_s
        for r in _looped(opts, horizon_trace):
            if r[0] + shift >= horizon_trace:
                return
            if keep == 1.0 or rng.random() < keep:
                yield (r[0] + shift, i, *r[1:])

    streams = [copy(i, last_keep if i == m - 1 else 1.0) for i in range(m)]
    for t, _, *rest in heapq.merge(*streams):
        yield (t, *rest)


def trace_chunks(opts, horizon: float, rng: np.random.Generator) -> Iterator[dict]:
    """Chunks of arrivals (simulated seconds) below `horizon`, with the trace's columns."""
    buf: list[tuple] = []
    for row in _copies(opts, horizon * opts.speed, rng):
        buf.append(row)
        if len(buf) == BLOCK:
            yield _chunk(buf, opts.speed)
            buf = []
    if buf:
        yield _chunk(buf, opts.speed)


def _chunk(rows: list[tuple], speed: float) -> dict:
    t, prompt, output, key, blocks = zip(*rows, strict=True)
    out: dict[str, Any] = {"time": np.asarray(t) / speed}
    for name, col in (("prompt", prompt), ("output", output), ("key", key)):
        if col[0] is not None:
            out[name] = np.asarray(col, dtype=np.int64)
    if blocks[0] is not None:
        out["chain"] = list(blocks)
    return out
