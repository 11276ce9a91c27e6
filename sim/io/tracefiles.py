"""Writing canonical Parquet traces: conversion of any readable trace, and synthetic traces
from a scenario's workload (same seed, same file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.io.atomic import replacing
from sim.serving import arrivals as workload
from sim.serving.rng import streams
from sim.traces.formats import Format
from sim.traces.reader import SCHEMA, read_batches


def _write(batches, out: Path, kind: str) -> int:
    schema = SCHEMA.with_metadata({"searchsim.kind": kind})
    rows = 0
    with replacing(out) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for b in batches:  # the canonical columns (block hashes are not kept)
            writer.write_batch(pa.record_batch([b.column(n) for n in SCHEMA.names],
                                               schema=schema))
            rows += b.num_rows
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
