"""Columns derived row by row as each batch of records streams out of a run: each request's
waits and token times, each query's answer quality and busy cost."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sim.units import SECONDS_PER_HOUR


def numpy_column(batch, name: str) -> np.ndarray:
    return batch.column(name).to_numpy(zero_copy_only=False)


def _extended(batch: pa.RecordBatch, new: dict[str, np.ndarray]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([*batch.columns, *(pa.array(v) for v in new.values())],
                                      names=[*batch.schema.names, *new])


def request_columns(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Queue wait, time to first token, time per output token (after the first), all NaN
    where they do not apply."""
    def col(name):
        return numpy_column(batch, name)

    sub, first, out = col("submitted"), col("first_token"), col("generated_tokens")
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (col("finished") - first) / (out - 1), np.nan)
    return _extended(batch, {"queue_wait_s": col("started") - sub, "ttft_s": first - sub,
                             "tpot_s": tpot})


def query_columns(batch: pa.RecordBatch, slo_s: float, usd_per_chip_hour: float
                  ) -> pa.RecordBatch:
    """`complete`: answered with every response (or from the cache); `slo_met`: complete
    and within `slo_s` (a partial, degraded or failed answer never meets the SLO);
    `cost_busy`: the
    query's chip-seconds at the chip price."""
    def col(name):
        return numpy_column(batch, name)

    outcome = col("deadline_outcome")
    complete = ~np.isnan(col("done")) & ~np.isin(outcome, ("partial", "degraded", "failed"))
    with np.errstate(invalid="ignore"):
        met = complete & (col("latency_s") <= slo_s)
    busy_usd = col("accelerator_s") * usd_per_chip_hour / SECONDS_PER_HOUR
    return _extended(batch, {"complete": complete, "slo_met": met, "cost_busy": busy_usd})
