"""Sharded runs: traffic split by query hash into independent shards, each with its share of
the replicas, the cache capacity and the retrieval servers — how real search caches are
partitioned. Shards run on a process pool and their tables and levels are merged, so the
summary is computed exactly as for one process. Streamed to files on local processes, each
shard writes its own tables and they are merged file to file (`merge_files`); otherwise (kept
in memory, or on Ray, whose workers need not share a disk) they come back whole."""

from __future__ import annotations

import functools
import operator
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import Problem, SearchsimError
from sim.io.merging import merged_batches
from sim.io.tables import TableSink
from sim.runner.engine import Results, Shard, finish, simulate
from sim.runner.parallel import map_jobs, report
from sim.scenario import loading
from sim.scenario.schema import Scenario
from sim.serving.snapshot import Snapshot


def split(total: int, parts: int, index: int) -> int:
    """Shard `index`'s share of `total` units, the first shards taking the remainder."""
    return total // parts + (1 if index < total % parts else 0)


def shard_scenario(s: Scenario, index: int, shards: int) -> Scenario:
    for field, total in (("llm.replicas", s.llm.replicas),
                         *((f"llm.groups[{i}].replicas", g.replicas)
                           for i, g in enumerate(s.llm.groups)),
                         ("retrieval.servers", s.retrieval.servers)):
        if total < shards:
            raise SearchsimError(Problem(field, total, f"at least one per shard ({shards} "
                                                       "shards)"))
    raw = loading.to_dict(s)
    raw["llm"]["replicas"] = split(s.llm.replicas, shards, index)
    for g in raw["llm"].get("groups", []):  # each replica group shared out alike
        g["replicas"] = split(g["replicas"], shards, index)
    if "disaggregated" in raw["llm"]:  # its pools are the fleet's groups: alike
        for pool in ("prefill", "decode"):
            d = raw["llm"]["disaggregated"][pool]
            d["replicas"] = split(d["replicas"], shards, index)
    raw["retrieval"]["servers"] = split(s.retrieval.servers, shards, index)
    raw["cache"]["capacity"] = split(s.cache.capacity, shards, index)
    return loading.from_dict(raw)


SHARDS_DIR = "shards"  # where shards streaming to files write theirs, until merged


def simulate_shard(s: Scenario, index: int, shards: int, tables: str,
                   directory: Path | None, direct: bool = False,
                   progress: Callable[[float], None] | None = None) -> Shard:
    """One shard, its tables streamed to Parquet files in `directory` (to be merged file to
    file), or kept in memory, or discarded."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        return simulate(s, index, shards, progress, tables="file", stream_to=directory,
                        direct=direct)
    return simulate(s, index, shards, progress,
                    tables="discard" if tables == "discard" else "memory", direct=direct)


def _simulate(job) -> Shard:
    s, index, shards, tables, directory = job
    return simulate_shard(s, index, shards, tables, directory, progress=report)


def staged_dirs(s: Scenario, tables: str, stream_to: Path | None,
                indices: list[int]) -> list[Path] | None:
    """Where shards `indices` write their own tables to be merged file to file (local
    processes streaming to `stream_to`), or None: they return them whole (Ray's workers need
    not share a disk) or keep none."""
    if tables == "file" and stream_to is not None and s.run.backend == "local":
        return [stream_to / SHARDS_DIR / str(i) for i in indices]
    return None


def shard_tables(parts: list[Shard], replicas_per_shard: list[int], tables: str,
                 stream_to: Path | None, dirs: list[Path] | None
                 ) -> tuple[pa.Table | None, pa.Table | None]:
    """The shards' tables as one: merged file to file from `dirs` into `stream_to`, or
    merged in memory and then written there ("file"), or kept ("memory"); the tables are
    returned only when kept."""
    if dirs is not None and stream_to is not None:
        merge_files(dirs, replicas_per_shard, stream_to)
        shutil.rmtree(stream_to / SHARDS_DIR)
        return None, None
    if tables == "discard":
        return None, None
    queries, requests = merge_tables(parts, replicas_per_shard)
    if tables == "file" and stream_to is not None:
        write_tables(queries, requests, stream_to)
        return None, None
    return queries, requests


def _offsets(replicas_per_shard: list[int]) -> np.ndarray:
    """What each shard's replica numbers start at: after the shards before it."""
    return np.concatenate([[0], np.cumsum(replicas_per_shard)[:-1]]).astype(np.int64)


def _replicas_renumbered(rows: pa.Table, add) -> pa.Table:
    return rows.set_column(rows.schema.get_field_index("replica"), "replica",
                           pa.array(rows["replica"].to_numpy() + add))


def merge_tables(parts: list[Shard], replicas_per_shard: list[int]
                 ) -> tuple[pa.Table, pa.Table]:
    """Query ids are already global (arrival indices); replicas are renumbered after the
    shards before them; requests are renumbered by submission time."""
    offsets = _offsets(replicas_per_shard)
    requests = []
    for i, p in enumerate(parts):
        assert p.requests is not None and p.queries is not None  # shards kept their tables
        r = _replicas_renumbered(p.requests, offsets[i])
        requests.append(r.append_column("shard", pa.array(np.full(r.num_rows, i))))
    req = pa.concat_tables(requests).sort_by([("submitted", "ascending"),
                                               ("shard", "ascending"),
                                               ("request_id", "ascending")])
    req = req.drop_columns(["shard"])
    req = req.set_column(0, "request_id", pa.array(np.arange(req.num_rows, dtype=np.int64)))
    queries = pa.concat_tables([p.queries for p in parts  # type: ignore[misc]
                                ]).sort_by("query_id")
    return queries, req


def run_sharded(s: Scenario, progress: Callable[[float], None] | None = None,
                tables: str = "memory", stream_to: Path | None = None) -> Results:
    """Shards on the pool, their reductions and levels merged, and their tables as
    `shard_tables` says."""
    n = s.run.shards
    scenarios = [shard_scenario(s, i, n) for i in range(n)]
    dirs = staged_dirs(s, tables, stream_to, list(range(n)))
    parts = map_jobs(_simulate, [(si, i, n, tables, None if dirs is None else dirs[i])
                                 for i, si in enumerate(scenarios)],
                     s.run.jobs, None if progress is None else
                     lambda done, total: progress(done / total), s.run.backend,
                     s.run.ray_address)
    queries, requests = shard_tables(parts, [si.llm.replica_count for si in scenarios],
                                     tables, stream_to, dirs)
    whole = Shard(functools.reduce(operator.add, [p.reduced for p in parts]),
                  Snapshot.merge([p.snapshot for p in parts]), parts[0].window_end,
                  queries, requests)
    return finish(s, whole)


def merge_files(shard_dirs: list[Path], replicas_per_shard: list[int], out: Path) -> None:
    """The shards' Parquet tables merged into `out` as `merge_tables` would, a batch at a
    time: queries by id; requests by submission time (then shard, then id), renumbered,
    with replicas numbered after the shards before them."""
    offsets = _offsets(replicas_per_shard)
    numbered = 0

    def renumbered(rows: pa.Table, shard: np.ndarray) -> pa.Table:
        nonlocal numbered
        rows = _replicas_renumbered(rows, offsets[shard])
        ids = np.arange(numbered, numbered + rows.num_rows, dtype=np.int64)
        numbered += rows.num_rows
        return rows.set_column(0, "request_id", pa.array(ids))

    _merge_into(out / "queries.parquet", [d / "queries.parquet" for d in shard_dirs],
                "query_id", lambda rows, _: rows)
    _merge_into(out / "requests.parquet", [d / "requests.parquet" for d in shard_dirs],
                "submitted", renumbered)


def _merge_into(path: Path, parts: list[Path], key: str, transform) -> None:
    """`parts` merged by `key` into one file, each merged batch through `transform(rows,
    shard of each row)`, one row group each; with no rows at all, an empty table with the
    parts' schema (a run with no queries still has its tables)."""
    sink = TableSink("file", path)
    for rows, shard in merged_batches(parts, key):
        for batch in transform(rows, shard).combine_chunks().to_batches():
            sink.write(batch)
    if sink.rows == 0:
        sink.write(pa.RecordBatch.from_pylist([], schema=pq.read_schema(parts[0])))
    sink.close()


def write_tables(queries: pa.Table, requests: pa.Table, directory: Path) -> None:
    """The tables to Parquet files in `directory`."""
    for kind, table in (("queries", queries), ("requests", requests)):
        sink = TableSink("file", directory / f"{kind}.parquet")
        for batch in table.to_batches():
            sink.write(batch)
        sink.close()
