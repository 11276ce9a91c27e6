"""Sorted Parquet files merged a batch at a time equal one stable sort of all their rows, and
a sharded run streamed to files equals the same run merged in memory."""

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.io.merging import merged_batches
from sim.runner.api import run
from sim.scenario import loading
from tests.conftest import SCENARIOS

# sorted key lists with many ties (keys from a small range), one per file, some empty
files = st.lists(st.lists(st.integers(0, 6), max_size=25).map(sorted), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(keys=files, batch_rows=st.integers(1, 5))
def test_merge_is_a_stable_sort_by_key_then_file(keys, batch_rows, tmp_path_factory):
    d = tmp_path_factory.mktemp("sorted")
    paths = []
    for i, ks in enumerate(keys):
        paths.append(d / f"{i}.parquet")
        pq.write_table(pa.table({"k": pa.array(ks, pa.int64()),
                                 "row": pa.array(range(len(ks)), pa.int64())}),
                       paths[-1], row_group_size=max(1, batch_rows))
    out = list(merged_batches(paths, "k", batch_rows=batch_rows))
    got = [(k, int(s), r) for rows, src in out
           for k, s, r in zip(rows["k"].to_pylist(), src, rows["row"].to_pylist(), strict=True)]
    want = sorted((k, i, r) for i, ks in enumerate(keys) for r, k in enumerate(ks))
    assert got == want


def test_sharded_run_streamed_to_files_equals_merged_in_memory(tmp_path):
    s = loading.load(SCENARIOS / "modern_two_stage.toml",
                     ["run.duration_s=120", "run.warmup_s=20", "run.shards=3", "run.jobs=2"])
    kept = run(s)
    streamed = run(s, tables="file", stream_to=tmp_path)
    assert streamed.summary == kept.summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["queries.parquet",
                                                           "requests.parquet"]
    for kind in ("queries", "requests"):
        on_disk = pq.read_table(tmp_path / f"{kind}.parquet")
        in_memory = getattr(kept, kind)
        assert on_disk.num_rows == in_memory.num_rows > 1000
        assert on_disk.schema.equals(in_memory.schema)
        assert on_disk.to_pandas().equals(in_memory.to_pandas()), kind


def test_sampled_run_streamed_to_files_equals_merged_in_memory(tmp_path):
    s = loading.load(SCENARIOS / "modern_two_stage.toml",
                     ["run.duration_s=600", "run.warmup_s=60", "run.shards=8", "llm.replicas=16",
                      "run.sample_shards=3", "run.jobs=2"])
    kept = run(s)
    streamed = run(s, tables="file", stream_to=tmp_path)
    assert streamed.summary == kept.summary
    for kind in ("queries", "requests"):
        on_disk = pq.read_table(tmp_path / f"{kind}.parquet")
        assert on_disk.num_rows > 1000
        assert on_disk.to_pandas().equals(getattr(kept, kind).to_pandas()), kind
    assert not (tmp_path / "shards").exists()


def test_a_sharded_run_with_no_queries_still_writes_its_tables(tmp_path):
    s = loading.load(SCENARIOS / "modern_two_stage.toml",
                     ["run.duration_s=3", "run.warmup_s=0", "workload.rate_qps=0.5",
                      "run.shards=3"])
    kept = run(s)
    run(s, tables="file", stream_to=tmp_path)
    for kind in ("queries", "requests"):
        on_disk = pq.read_table(tmp_path / f"{kind}.parquet")
        assert on_disk.num_rows == getattr(kept, kind).num_rows == 0
        assert on_disk.schema.equals(getattr(kept, kind).schema)
