"""Writing canonical Parquet traces: conversion of any readable trace, and synthetic traces
from a scenario's workload (same seed, same file)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.serving import arrivals as workload
from sim.serving.rng import streams
from sim.traces.formats import Format
from sim.traces.reader import SCHEMA, read_batches


def _atomic_writer(out: Path, kind: str):
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    schema = SCHEMA.with_metadata({"searchsim.kind": kind})
    return Path(tmp), pq.ParquetWriter(tmp, schema, compression="zstd")


def _write(batches, out: Path, kind: str) -> int:
    tmp, writer = _atomic_writer(out, kind)
    rows = 0
    try:
        for b in batches:
            writer.write_batch(b)
            rows += b.num_rows
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return rows


def convert(path: Path, fmt: Format, out: Path, sort: bool = False) -> int:
    """Stream any readable trace into canonical Parquet; returns the row count."""
    return _write(read_batches(path, fmt, sort=sort), out, fmt.kind)


def synth(scenario, out: Path) -> int:
    """The scenario's query stream (arrivals, query keys, query and first-response lengths),
    drawn from the same seeded streams the simulator uses."""
    rngs = streams(scenario.run.seed)
    w = scenario.workload
    keys = workload.QueryKeys(w.distinct_queries, w.zipf_alpha, w.one_off_share,
                              rngs["query_ids"])
    qd, rd = w.query_tokens.build(), w.response_tokens.build()

    def batches():
        for chunk in workload.arrivals(w, rngs, scenario.run.duration_s):
            n = len(chunk["time"])
            yield pa.record_batch([
                pa.array(chunk["time"]),
                pa.array(workload.token_counts(qd, rngs["query_tokens"], n)),
                pa.array(workload.token_counts(rd, rngs["response_tokens"], n)),
                pa.array(np.asarray(keys.sample(n), dtype=np.int64))], schema=SCHEMA)

    return _write(batches(), out, "query")
