"""Records stream out of a run in id order, in batches, to memory, to Parquet files or
nowhere: the tables and the summary are the same whichever."""

import pyarrow.parquet as pq
import pytest

from sim.runner.api import run
from sim.scenario import loading
from sim.serving import records
from tests.conftest import SCENARIOS

SHORT = ["run.duration_s=150", "run.warmup_s=30", "run.drain_s=60"]


def same_table(a, b) -> bool:
    """Equal values (NaN where NaN) and the same schema."""
    return a.schema.equals(b.schema) and a.to_pandas().equals(b.to_pandas())


def same_summary(a: dict, b: dict) -> bool:
    """Counts equal; sums equal up to the order they were added in (batch by batch)."""
    return a.keys() == b.keys() and all(
        a[k] == pytest.approx(b[k], rel=1e-12) if isinstance(a[k], float) else a[k] == b[k]
        for k in a)


@pytest.fixture(scope="module", params=["modern_two_stage", "two_stage", "azure_conv_replay"])
def scenario(request):
    return loading.load(SCENARIOS / f"{request.param}.toml", SHORT)


@pytest.fixture(scope="module")
def in_memory(scenario):
    return run(scenario)


def test_tables_are_in_id_order_and_account_for_every_request(in_memory):
    q, r = in_memory.queries.to_pandas(), in_memory.requests.to_pandas()
    assert q.query_id.is_monotonic_increasing and q.query_id.is_unique
    assert (r.request_id.to_numpy() == range(len(r))).all()
    assert len(r) == in_memory.summary["llm_requests_submitted"]
    assert (q.requests.sum()) == len(r)  # every request under its query


def test_streamed_to_files_equals_kept_in_memory(scenario, in_memory, tmp_path):
    streamed = run(scenario, tables="file", stream_to=tmp_path)
    assert streamed.queries is None and streamed.requests is None
    assert streamed.summary == in_memory.summary
    for kind in ("queries", "requests"):
        on_disk = pq.read_table(tmp_path / f"{kind}.parquet")
        assert same_table(on_disk, getattr(in_memory, kind)), kind
        assert pq.ParquetFile(tmp_path / f"{kind}.parquet").metadata.num_rows == \
            on_disk.num_rows


def test_discarded_tables_give_the_same_summary(scenario, in_memory):
    assert run(scenario, tables="discard").summary == in_memory.summary


def test_small_batches_change_nothing(scenario, in_memory, monkeypatch):
    """Batches of 7 rows: many flushes, released in the same order, the same summary."""
    monkeypatch.setattr(records, "FLUSH_ROWS", 7)
    monkeypatch.setattr(records.Recorder.__init__, "__defaults__",
                        (None, (float("-inf"), float("inf")), 7))
    small = run(scenario)
    assert same_summary(small.summary, in_memory.summary)
    assert same_table(small.requests, in_memory.requests)
    assert same_table(small.queries, in_memory.queries)
    assert len(small.requests.to_batches()) > 3
