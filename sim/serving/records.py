"""One row per query and per LLM request, released in id order as soon as they are final and
handed on in column batches, so a run holds only what is in flight.

A request's row is final when it has finished (or been cancelled or refused); a query's when
it has been answered and every one of its requests is final (a cancelled request still
accrues chip-seconds until its replica drops it). Rows leave in id order: each stream waits
on its oldest unfinished member, so what is held is bounded by what is in flight, not by
the run's length. At the end, `close` releases the rest (queries in flight, requests
unfinished). `emit(kind, batch)` receives each batch ("queries" or "requests"); without
one, batches are kept and `query_table`/`request_table` return them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np
import pyarrow as pa

REQUEST_FIELDS = (
    ("request_id", pa.int64()), ("query_id", pa.int64()), ("replica", pa.int64()),
    ("submitted", pa.float64()), ("started", pa.float64()), ("first_token", pa.float64()),
    ("finished", pa.float64()), ("prompt_tokens", pa.int64()), ("output_tokens", pa.int64()),
    ("prefilled_tokens", pa.int64()), ("generated_tokens", pa.int64()),
    ("accelerator_s", pa.float64()), ("cancelled", pa.bool_()), ("refused", pa.bool_()),
    ("unfinished", pa.bool_()), ("preemptions", pa.int64()), ("lost", pa.bool_()),
    ("retries", pa.int64()), ("cached_tokens", pa.int64()), ("transfer_s", pa.float64()),
    ("in_window", pa.bool_()))
QUERY_FIELDS = (
    ("query_id", pa.int64()), ("arrival", pa.float64()), ("key", pa.int64()),
    ("cache_hit", pa.bool_()), ("retrieval_wait_s", pa.float64()),
    ("retrieval_service_s", pa.float64()), ("retrieval_calls", pa.int64()),
    ("retrieval_failed", pa.bool_()), ("retrieval_timeouts", pa.int64()),
    ("llm_submitted", pa.float64()),
    ("done", pa.float64()), ("responses", pa.int64()), ("deadline_outcome", pa.string()),
    # aggregates of the query's requests
    ("requests", pa.int64()), ("llm_wait_s", pa.float64()), ("first_response_s", pa.float64()),
    ("last_response_s", pa.float64()), ("tokens_in", pa.int64()), ("tokens_out", pa.int64()),
    ("accelerator_s", pa.float64()), ("failed_requests", pa.int64()),
    # the longest a request of the query waited for a replica: until it started, or until it
    # was cancelled (cut by the deadline) if it never did
    ("queue_wait_s", pa.float64()),
    ("latency_s", pa.float64()),
    # answered by the semantic cache from a near-duplicate's result; and that one's intent
    # was not the query's (a false hit)
    ("semantic_hit", pa.bool_()), ("semantic_false_hit", pa.bool_()),
    ("in_window", pa.bool_()))
REQUEST_SCHEMA = pa.schema(REQUEST_FIELDS)
QUERY_SCHEMA = pa.schema(QUERY_FIELDS)
FLUSH_ROWS = 16384  # rows per batch: small enough to hold as Python tuples, big for Parquet


_NUMPY = {pa.float64(): np.float64, pa.int64(): np.int64, pa.bool_(): np.bool_}


def _row_dtype(schema: pa.Schema) -> np.dtype:
    """A numpy record type for a schema's rows (Python objects where numpy has no type)."""
    return np.dtype([(f.name, _NUMPY.get(f.type, object)) for f in schema])


_ROWS = {"queries": (QUERY_SCHEMA, _row_dtype(QUERY_SCHEMA)),
         "requests": (REQUEST_SCHEMA, _row_dtype(REQUEST_SCHEMA))}


def _batch(rows: list[tuple], schema: pa.Schema, dtype: np.dtype) -> pa.RecordBatch:
    """Rows (tuples of Python values) as an Arrow batch. numpy converts the whole list of
    tuples to records in C, four times faster than transposing them in Python and
    converting column by column."""
    table = np.array(rows, dtype=dtype)
    return pa.RecordBatch.from_arrays(
        [pa.array(np.ascontiguousarray(table[f.name])) if f.type in _NUMPY
         else pa.array(table[f.name], type=f.type) for f in schema], schema=schema)


def _is_done(r) -> bool:
    return r.finished == r.finished  # not NaN


class Recorder:
    def __init__(self, emit: Callable[[str, pa.RecordBatch], None] | None = None,
                 window: tuple[float, float] = (-math.inf, math.inf),
                 flush_rows: int = FLUSH_ROWS):
        self._emit = emit if emit is not None else self._keep
        self.window, self.flush_rows = window, flush_rows
        self._queries: deque = deque()  # in arrival (query id) order
        self._requests: deque = deque()  # in submission (request id) order
        self._rows: dict[str, list[tuple]] = {"queries": [], "requests": []}
        self._kept: dict[str, list[pa.RecordBatch]] = {"queries": [], "requests": []}
        self._emitted = {"queries": 0, "requests": 0}  # batches handed on

    # --- what the simulation tells it ------------------------------------------------------

    def query_arrived(self, q) -> None:
        self._queries.append(q)

    def query_ended(self, q) -> None:
        self._release_queries()

    def request_submitted(self, r) -> None:
        self._requests.append(r)

    def request_finished(self, r) -> None:
        pending = self._requests
        while pending and _is_done(pending[0]):
            self._request_row(pending.popleft())
        if self._queries:
            head = self._queries[0]
            if head.qid == r.qid and head.done == head.done:  # its query answered before it
                self._release_queries()

    def close(self) -> None:
        """The run is over: every row left is released as it stands, then flushed."""
        while self._queries:
            q = self._queries.popleft()
            if q.done != q.done:
                q.outcome = "in_flight"
            self._query_row(q)
        while self._requests:
            self._request_row(self._requests.popleft())
        for kind in self._rows:
            if self._rows[kind] or not self._emitted[kind]:  # an empty table has a schema
                self._flush(kind)

    # --- release in id order ---------------------------------------------------------------

    def _release_queries(self) -> None:
        pending = self._queries
        while pending and pending[0].done == pending[0].done and all(
                map(_is_done, pending[0].reqs)):
            self._query_row(pending.popleft())

    def _in_window(self, arrival: float) -> bool:
        return self.window[0] <= arrival < self.window[1]

    def _request_row(self, r) -> None:
        rows = self._rows["requests"]
        rows.append((r.rid, r.qid, r.replica, r.submitted, r.started, r.first_token,
                     r.finished, r.prompt, r.output, r.prefilled, r.generated, r.accel_s,
                     r.cancelled, r.refused, r.finished != r.finished, r.preemptions, r.lost,
                     r.retries, r.cached, r.transfer_s, self._in_window(r.arrival)))
        if len(rows) >= self.flush_rows:
            self._flush("requests")

    def _query_row(self, q) -> None:
        rows = self._rows["queries"]
        rows.append((q.qid, q.arrival, q.key, q.hit, q.retrieval_wait, q.retrieval_service,
                     q.retrieval_calls, q.outcome in ("degraded", "failed") and not q.reqs
                     and q.retrieval_calls > 0, q.retrieval_timeouts, q.llm_submitted, q.done,
                     q.responses, q.outcome,
                     *_request_aggregates(q), q.done - q.arrival, q.semantic > 0,
                     q.semantic == 2, self._in_window(q.arrival)))
        if len(rows) >= self.flush_rows:
            self._flush("queries")

    def _flush(self, kind: str) -> None:
        rows = self._rows[kind]
        batch = _batch(rows, *_ROWS[kind])
        rows.clear()
        self._emitted[kind] += 1
        self._emit(kind, batch)

    # --- kept in memory (no `emit`) --------------------------------------------------------

    def _keep(self, kind: str, batch: pa.RecordBatch) -> None:
        self._kept[kind].append(batch)

    def query_table(self) -> pa.Table:
        return pa.Table.from_batches(self._kept["queries"], schema=QUERY_SCHEMA)

    def request_table(self) -> pa.Table:
        return pa.Table.from_batches(self._kept["requests"], schema=REQUEST_SCHEMA)


def _request_aggregates(q) -> tuple:
    """(requests, longest queue wait, first and last served response after arrival, tokens
    in, tokens out, chip-seconds, requests a replica failure hit, longest wait counting a
    cut request's until its cut) over the query's requests."""
    if len(q.reqs) == 1:  # the common case, directly
        r = q.reqs[0]
        w = r.started - r.submitted
        served = not r.cancelled and r.finished == r.finished
        at = r.finished - q.arrival if served else math.nan
        return (1, w, at, at, r.prefilled, r.generated, 0.0 + r.accel_s,
                int(r.lost or r.retries > 0), w if w == w else r.finished - r.submitted)
    wait = blocked = math.nan
    first, last = math.inf, -math.inf
    tokens_in = tokens_out = failed = 0
    accel = 0.0
    for r in q.reqs:
        w = r.started - r.submitted
        if w == w and not wait >= w:  # the largest, NaN ignored
            wait = w
        b = w if w == w else r.finished - r.submitted  # never started: until its cut
        if b == b and not blocked >= b:
            blocked = b
        failed += r.lost or r.retries > 0
        if not r.cancelled and r.finished == r.finished:  # served
            first, last = min(first, r.finished), max(last, r.finished)
        tokens_in += r.prefilled
        tokens_out += r.generated
        accel += r.accel_s
    return (len(q.reqs), wait, first - q.arrival if first != math.inf else math.nan,
            last - q.arrival if last != -math.inf else math.nan, tokens_in, tokens_out, accel,
            failed, blocked)
