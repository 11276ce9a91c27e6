"""Where a run's record batches go: kept in memory, written to a Parquet file one row group
at a time as they arrive (so memory stays flat however long the run), or nowhere (a sweep
or a sizing that needs only summaries)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class TableSink:
    def __init__(self, mode: str = "memory", path: Path | None = None):
        if mode not in ("memory", "file", "discard") or (mode == "file") != (path is not None):
            raise ValueError(f"a sink is 'memory', 'discard' or 'file' with a path: {mode!r}")
        self.mode, self.path = mode, path
        self._batches: list[pa.RecordBatch] = []
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        if self.mode == "memory":
            self._batches.append(batch)
        elif self.mode == "file":
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, batch.schema, compression="zstd")
            self._writer.write_batch(batch)

    def close(self) -> pa.Table | None:
        """The whole table when kept in memory; else None (the file is complete)."""
        if self._writer is not None:
            self._writer.close()
        if self.mode == "memory":
            return pa.Table.from_batches(self._batches)
        return None
