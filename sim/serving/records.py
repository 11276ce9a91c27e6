"""Collects one row per query and per LLM request as the simulation runs (plain lists of
columns: cheap to append, turned into Arrow tables once at the end)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

REQUEST_COLUMNS = ("request_id", "query_id", "replica", "submitted", "started", "first_token",
                   "finished", "prompt_tokens", "output_tokens", "prefilled_tokens",
                   "generated_tokens", "accelerator_s", "cancelled", "refused", "unfinished",
                   "preemptions")
QUERY_COLUMNS = ("query_id", "arrival", "key", "cache_hit", "retrieval_wait_s",
                 "retrieval_service_s", "llm_submitted", "done", "responses",
                 "deadline_outcome")


class Recorder:
    def __init__(self):
        self.requests = {c: [] for c in REQUEST_COLUMNS}
        self.queries = {c: [] for c in QUERY_COLUMNS}

    def request(self, r) -> None:
        row = (r.rid, r.qid, r.replica, r.submitted, r.started, r.first_token, r.finished,
               r.prompt, r.output, r.prefilled, r.generated, r.accel_s, r.cancelled,
               r.refused, math.isnan(r.finished), r.preemptions)
        for col, v in zip(self.requests.values(), row, strict=True):
            col.append(v)

    def query(self, q) -> None:
        row = (q.qid, q.arrival, q.key, q.hit, q.retrieval_wait, q.retrieval_service,
               q.llm_submitted, q.done, q.responses, q.outcome)
        for col, v in zip(self.queries.values(), row, strict=True):
            col.append(v)

    def in_flight(self, queries) -> None:
        """Queries still pending at the end: recorded with done = NaN."""
        for q in sorted(queries, key=lambda q: q.qid):
            q.done = math.nan
            q.outcome = "in_flight"
            self.query(q)

    def unfinished(self, requests) -> None:
        """Requests still queued or running at the end: a row each (finished = NaN), with
        the chip-seconds they used so far, so every submitted request is accounted for."""
        for r in sorted(requests, key=lambda r: r.rid):
            self.request(r)

    def request_table(self) -> pa.Table:
        t = pa.table({c: pa.array(v, type=_type(c)) for c, v in self.requests.items()})
        return t.sort_by("request_id")

    def query_table(self) -> pa.Table:
        t = pa.table({c: pa.array(v, type=_type(c)) for c, v in self.queries.items()})
        return t.sort_by("query_id")


def _type(col: str):
    if col in ("cache_hit", "cancelled", "refused", "unfinished"):
        return pa.bool_()
    if col == "deadline_outcome":
        return pa.string()
    if col in ("request_id", "query_id", "replica", "key", "responses", "preemptions") or \
            col.endswith("_tokens"):
        return pa.int64()
    return pa.float64()


def group_sum(keys: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(keys, weights=values, minlength=size)[:size]
