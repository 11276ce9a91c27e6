"""Merge Parquet files whose rows are each sorted by a key into one stream of batches in
(key, file, row) order, holding about a batch of each file at a time: how a sharded run's
tables are joined without loading them (memory flat however long the run).

A file's buffered rows below the frontier (the smallest last key buffered among files not yet
exhausted) are final: every row still to come from a file has a key at least its buffer's
last. Rows equal to the frontier wait, so that ties across a batch boundary still come out in
file order; when nothing is below it, the files that set it read further.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BATCH_ROWS = 65_536


class _Sorted:
    """One sorted file, read a batch at a time into a buffer of rows not yet emitted."""

    def __init__(self, path: Path, key: str, batch_rows: int):
        self._batches = pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
        self.key = key
        self.rows: pa.Table | None = None
        self.done = False

    def pull(self) -> None:
        """One more batch into the buffer (marks the file done at its end)."""
        batch = next(self._batches, None)
        if batch is None:
            self.done = True
            return
        more = pa.Table.from_batches([batch])
        self.rows = more if self.rows is None else pa.concat_tables([self.rows, more])

    @property
    def empty(self) -> bool:
        return self.rows is None or self.rows.num_rows == 0

    def keys(self) -> np.ndarray:
        assert self.rows is not None
        return self.rows[self.key].to_numpy()

    def take_below(self, frontier: float) -> pa.Table:
        """The buffered rows with a key below `frontier` (all of them at +inf), removed."""
        assert self.rows is not None
        n = int(np.searchsorted(self.keys(), frontier, side="left"))
        taken, self.rows = self.rows.slice(0, n), self.rows.slice(n)
        return taken


def merged_batches(paths: list[Path], key: str, batch_rows: int = BATCH_ROWS
                   ) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """(rows, the index in `paths` each came from), in (key, file, row) order, rows of every
    file: each file's rows must be sorted by `key`."""
    files = [_Sorted(p, key, batch_rows) for p in paths]
    while True:
        for f in files:
            while f.empty and not f.done:
                f.pull()
        open_files = [f for f in files if not f.done]
        frontier = min((f.keys()[-1] for f in open_files if not f.empty), default=np.inf)
        pieces = [(i, f.take_below(frontier)) for i, f in enumerate(files) if not f.empty]
        pieces = [(i, t) for i, t in pieces if t.num_rows]
        if pieces:
            yield _in_order(pieces, key)
        elif not open_files:
            return
        else:  # every buffered row is at the frontier: read on where it was set
            for f in open_files:
                if not f.empty and f.keys()[-1] == frontier:
                    f.pull()


def _in_order(pieces: list[tuple[int, pa.Table]], key: str) -> tuple[pa.Table, np.ndarray]:
    rows = pa.concat_tables([t for _, t in pieces])
    source = np.concatenate([np.full(t.num_rows, i) for i, t in pieces])
    order = np.lexsort((source, rows[key].to_numpy()))  # stable: a file's rows keep order
    return rows.take(pa.array(order)), source[order]
