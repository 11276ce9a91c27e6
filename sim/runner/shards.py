"""Sharded runs: traffic split by query hash into independent shards, each with its share of
the replicas, the cache capacity and the retrieval servers — how real search caches are
partitioned. Shards run on a process pool and their tables and levels are merged, so the
summary is computed exactly as for one process."""

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
from sim.runner.parallel import map_jobs
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
    raw["retrieval"]["servers"] = split(s.retrieval.servers, shards, index)
    raw["cache"]["capacity"] = split(s.cache.capacity, shards, index)
    return loading.from_dict(raw)


SHARDS_DIR = "shards"  # where shards streaming to files write theirs, until merged


def _simulate(job) -> Shard:
    s, index, shards, tables, directory = job
    if directory is not None:  # its own tables, streamed to files
        directory.mkdir(parents=True, exist_ok=True)
        return simulate(s, index, shards, tables="file", stream_to=directory)
    return simulate(s, index, shards, tables="discard" if tables == "discard" else "memory")


def merge(parts: list[Shard], replicas_per_shard: list[int]) -> Shard:
    """One summary reduction (shards' reductions add: each holds all of its keys), one set
    of levels, and one set of tables if the shards kept theirs."""
    reduced = functools.reduce(operator.add, [p.reduced for p in parts])
    snapshot = Snapshot.merge([p.snapshot for p in parts])
    if parts[0].queries is None:
        return Shard(reduced, snapshot, parts[0].window_end)
    queries, requests = merge_tables(parts, replicas_per_shard)
    return Shard(reduced, snapshot, parts[0].window_end, queries, requests)


def merge_tables(parts: list[Shard], replicas_per_shard: list[int]
                 ) -> tuple[pa.Table, pa.Table]:
    """Query ids are already global (arrival indices); replicas are renumbered after the
    shards before them; requests are renumbered by submission time."""
    offsets = np.concatenate([[0], np.cumsum(replicas_per_shard)[:-1]])
    requests = []
    for i, p in enumerate(parts):
        r = p.requests
        assert r is not None and p.queries is not None  # shards kept their tables
        r = r.set_column(r.schema.get_field_index("replica"), "replica",
                         pa.array(r["replica"].to_numpy() + offsets[i]))
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
    """Shards on the pool. Streamed to files on local processes, each shard writes its own
    tables and they are merged file to file (memory flat); otherwise (kept in memory, or
    on Ray, whose workers need not share a disk) they come back whole and merge in memory."""
    n = s.run.shards
    scenarios = [shard_scenario(s, i, n) for i in range(n)]
    replicas = [si.llm.replica_count for si in scenarios]
    staging = streamed(s, tables, stream_to)
    dirs = [None if staging is None else staging / str(i) for i in range(n)]
    parts = map_jobs(_simulate, [(si, i, n, tables, dirs[i]) for i, si in enumerate(scenarios)],
                     s.run.jobs, backend=s.run.backend, address=s.run.ray_address)
    if progress is not None:
        progress(1.0)
    whole = merge(parts, replicas)
    if staging is not None:
        merge_files([staging / str(i) for i in range(n)], replicas, staging.parent)
        shutil.rmtree(staging)
    elif tables == "file" and stream_to is not None:
        write_tables(whole, stream_to)
        whole = Shard(whole.reduced, whole.snapshot, whole.window_end)
    return finish(s, whole)


def streamed(s: Scenario, tables: str, stream_to: Path | None) -> Path | None:
    """Where shards write their own tables to be merged file to file (local processes
    streaming to `stream_to`), or None: they return them whole (Ray's workers need not
    share a disk) or keep none."""
    if tables == "file" and stream_to is not None and s.run.backend == "local":
        return stream_to / SHARDS_DIR
    return None


def merge_files(shard_dirs: list[Path], replicas_per_shard: list[int], out: Path) -> None:
    """The shards' Parquet tables merged into `out` as `merge_tables` would, a batch at a
    time: queries by id; requests by submission time (then shard, then id), renumbered,
    with replicas numbered after the shards before them."""
    offsets = np.concatenate([[0], np.cumsum(replicas_per_shard)[:-1]])
    numbered = 0

    def renumbered(rows: pa.Table, shard: np.ndarray) -> pa.Table:
        nonlocal numbered
        rows = rows.set_column(rows.schema.get_field_index("replica"), "replica",
                               pa.array(rows["replica"].to_numpy() + offsets[shard]))
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


def write_tables(held, directory: Path) -> None:
    """`held`'s queries and requests tables to Parquet files in `directory`."""
    for kind in ("queries", "requests"):
        table = held.queries if kind == "queries" else held.requests
        assert table is not None
        sink = TableSink("file", directory / f"{kind}.parquet")
        for batch in table.to_batches():
            sink.write(batch)
        sink.close()
