"""Trace readers, inspection, stack distances, replay and synthesis."""

import json

import numpy as np
import pyarrow as pa
import pytest

from cli.main import app
from sim.errors import SearchsimError
from sim.io import tracefiles
from sim.runner.api import run
from sim.scenario import loading, schema
from sim.serving import cache
from sim.traces import formats, reader, stats
from sim.traces.replay import trace_chunks
from tests.conftest import SCENARIOS, TRACES

AZURE = TRACES / "azure-llm-2023"


def _table(path, fmt="auto", **kw):
    f = formats.resolve(path, fmt, **kw)
    return f, pa.Table.from_batches(list(reader.read_batches(path, f)))


@pytest.mark.parametrize("name, n, span_min, rate, cv, prompt, output", [
    ("code", 8819, 57, 2.6, 13, (2048, 1469, 7436), (28, 13, 249)),
    ("conv", 19366, 58, 5.5, 1.1, (1155, 1020, 4142), (211, 129, 601)),
])
def test_azure_2023_as_its_readme_says(name, n, span_min, rate, cv, prompt, output):
    path = AZURE / f"AzureLLMInferenceTrace_{name}.csv"
    f = formats.resolve(path)
    assert f.name == "azure" and f.kind == "llm"
    s = stats.inspect(reader.read_batches(path, f))
    assert s["requests"] == n
    assert s["span_s"] / 60 == pytest.approx(span_min, abs=1)
    assert s["mean_rate_per_s"] == pytest.approx(rate, rel=0.05)
    assert s["interarrival_cv"] == pytest.approx(cv, rel=0.05)
    for got, (mean, p50, p99) in ((s["prompt_tokens"], prompt), (s["output_tokens"], output)):
        assert got["mean"] == pytest.approx(mean, rel=0.01)
        assert got["p50"] == p50
        assert got["p99"] == pytest.approx(p99, rel=0.02)


def test_replay_into_a_never_busy_pool_reproduces_the_trace(tmp_path):
    path = AZURE / "AzureLLMInferenceTrace_code.csv"
    _, trace = _table(path)
    s = loading.from_dict({
        "run": {"duration_s": 4000.0, "warmup_s": 1.0, "drain_s": 100.0},
        "workload": {"arrival": "trace", "trace": {"path": str(path)}},
        "llm": {"model": "llama2_7b", "hardware": "h200", "tp": 1, "replicas": 400,
                "batching": "continuous", "max_batch": 512, "step_model": "article",
                "mfu": 1.0},
        "economics": {"price": 3.0}})
    res = run(s)
    assert res.summary["architecture"] == "llm_trace"
    req = res.requests.sort_by("request_id")
    assert req["submitted"].to_numpy().tolist() == trace["time_s"].to_numpy().tolist()
    assert req["prompt_tokens"].equals(trace["prompt_tokens"])
    assert req["output_tokens"].equals(trace["output_tokens"])
    assert req["generated_tokens"].equals(trace["output_tokens"])
    assert (req["started"].to_numpy() == req["submitted"].to_numpy()).all()  # never waited


def test_stack_distance_curve_equals_simulated_lru():
    rng = np.random.default_rng(7)
    keys = (rng.zipf(1.3, 20000) % 3000).tolist()
    sd = stats.StackDistances(capacity_hint=64)  # small: exercises the tree's growth
    sd.add(keys[:7000])
    sd.add(keys[7000:])
    for cap in (1, 5, 50, 400, 2999, 5000):
        lru = cache.LRU(cap)
        hits = 0
        for i, k in enumerate(keys):
            if lru.lookup(k, float(i)):
                hits += 1
            else:
                lru.insert(k, float(i))
        assert sd.hit_rate(np.array([cap]))[0] == pytest.approx(hits / len(keys), abs=1e-12)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_burstgpt_mooncake_queries_and_mapped_formats(tmp_path):
    b = _write(tmp_path / "b.csv", "Timestamp,Model,Request tokens,Response tokens,Total tokens,"
               "Log Type\n5,ChatGPT,10,20,30,Conversation log\n7.5,GPT-4,11,21,32,API log\n")
    f, t = _table(b)
    assert f.name == "burstgpt" and t["time_s"].to_pylist() == [0.0, 2.5]
    assert t["output_tokens"].to_pylist() == [20, 21]
    m = _write(tmp_path / "m.jsonl", '{"timestamp": 1000, "input_length": 5, "output_length": 6,'
               ' "hash_ids": [1, 2]}\n{"timestamp": 1500, "input_length": 7, "output_length": 8,'
               ' "hash_ids": [3]}\n')
    f, t = _table(m)
    assert f.name == "mooncake" and t["time_s"].to_pylist() == [0.0, 0.5]
    # a time unit given is honoured for a detected or named format too (it was ignored)
    f, t = _table(m, time_unit="s")
    assert f.time_unit == "s" and t["time_s"].to_pylist() == [0.0, 500.0]
    f, t = _table(m, fmt="mooncake", time_unit="us")
    assert t["time_s"].to_pylist() == [0.0, 0.0005]
    q = _write(tmp_path / "q.csv", "timestamp,query\n2024-01-01 00:00:00,cats\n"
               "2024-01-01 00:00:01.5,dogs\n2024-01-01 00:00:03,cats\n")
    f, t = _table(q)
    assert f.kind == "query" and t["time_s"].to_pylist() == [0.0, 1.5, 3.0]
    k = t["key"].to_pylist()
    assert k[0] == k[2] != k[1] and k[0] == reader.query_key("cats")
    g = _write(tmp_path / "g.csv", "ts_ms,in,out,qid\n100,1,2,9\n350,3,4,9\n")
    f, t = _table(g, mapping="time=ts_ms,prompt=in,output=out,query_id=qid", time_unit="ms")
    assert t["time_s"].to_pylist() == [0.0, 0.25] and t["key"].to_pylist() == [9, 9]


def test_convert_to_canonical_parquet_and_back(tmp_path):
    src = _write(tmp_path / "b.csv", "Timestamp,Model,Request tokens,Response tokens,"
                 "Total tokens,Log Type\n1,x,10,20,30,c\n2,x,11,21,32,c\n")
    out = tmp_path / "b.parquet"
    assert tracefiles.convert(src, formats.resolve(src), out) == 2
    f, t = _table(out)
    assert f.name == "canonical" and t["prompt_tokens"].to_pylist() == [10, 11]


class Opts:
    def __init__(self, path, **kw):
        self.path, self.format, self.mapping, self.time_unit = str(path), "auto", None, "auto"
        self.speed, self.scale, self.copy_offset_s, self.loop = 1.0, 1.0, 60.0, False
        self.start_s, self.end_s, self.sort = 0.0, None, False
        self.__dict__.update(kw)


def _times(opts, horizon=1e9, seed=0):
    chunks = list(trace_chunks(opts, horizon, np.random.default_rng(seed)))
    return np.concatenate([c["time"] for c in chunks]) if chunks else np.array([])


def test_replay_speed_window_loop_and_scale(tmp_path):
    rows = "".join(f"{i},x,5,5,10,c\n" for i in range(0, 100, 10))  # t = 0, 10, ..., 90
    p = _write(tmp_path / "t.csv", "Timestamp,Model,Request tokens,Response tokens,"
               "Total tokens,Log Type\n" + rows)
    assert _times(Opts(p)).tolist() == list(range(0, 100, 10))
    assert _times(Opts(p, speed=2.0)).tolist() == list(range(0, 50, 5))
    assert _times(Opts(p, start_s=20.0, end_s=50.0)).tolist() == [0, 10, 20]
    looped = _times(Opts(p, loop=True), horizon=250.0)
    assert looped.tolist() == list(range(0, 250, 10))  # period = span + one mean gap = 100
    doubled = _times(Opts(p, scale=2.0, copy_offset_s=3.0))
    assert sorted(doubled.tolist()) == sorted(list(range(0, 100, 10)) +
                                              list(range(3, 103, 10)))
    assert np.all(np.diff(doubled) >= 0)
    many = _write(tmp_path / "many.csv", "Timestamp,Model,Request tokens,Response tokens,"
                  "Total tokens,Log Type\n" + "".join(f"{i},x,5,5,10,c\n" for i in range(20000)))
    thinned = _times(Opts(many, scale=0.25))
    assert len(thinned) == pytest.approx(5000, rel=0.05)
    assert len(_times(Opts(many, scale=1.5))) == pytest.approx(30000, rel=0.03)


def test_synth_is_deterministic_and_replays_as_the_simulated_stream(tmp_path, runner):
    over = ["--set", "run.duration_s=120", "--set", "run.warmup_s=10"]
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for out in (a, b):
        res = runner.invoke(app, ["trace", "synth", str(SCENARIOS / "modern_two_stage.toml"),
                                  "--out", str(out), *over])
        assert res.exit_code == 0, res.output
    assert a.read_bytes() == b.read_bytes()
    s = loading.load(SCENARIOS / "modern_two_stage.toml", ["run.duration_s=120",
                                                          "run.warmup_s=10"])
    original = run(s)
    replay = run(s.model_copy(update={"workload": s.workload.model_copy(update={
        "arrival": "trace", "trace": schema.Trace(path=str(a))})}))
    for col in ("arrival", "key"):
        assert replay.queries[col].equals(original.queries[col])


def test_trace_inspect_cli(runner, tmp_path):
    q = _write(tmp_path / "q.csv", "timestamp,query_id\n" + "".join(
        f"{i * 0.5},{k}\n" for i, k in enumerate([1, 2, 1, 3, 1, 2, 4, 1])))
    res = runner.invoke(app, ["trace", "inspect", str(q), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["requests"] == 8 and data["cache"]["distinct_queries"] == 4
    assert data["cache"]["infinite_cache_hit_bound"] == pytest.approx(0.5)
    curve = {p["capacity"]: p["hit_rate"] for p in data["cache"]["lru_curve"]}
    assert curve[4] == pytest.approx(0.5)
    res = runner.invoke(app, ["trace", "inspect", str(q)])
    assert res.exit_code == 0 and "LRU hit rate" in res.stdout


def test_inspect_plot_with_the_plot_extra(runner, tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    q = _write(tmp_path / "q.csv", "timestamp,query_id\n" + "".join(
        f"{i},{k}\n" for i, k in enumerate([1, 2, 1, 3, 1, 2])))
    png = tmp_path / "lru.png"
    res = runner.invoke(app, ["trace", "inspect", str(q), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_zipf_fit_recovers_the_exponent():
    rng = np.random.default_rng(3)
    from sim.serving.arrivals import QueryKeys
    keys = QueryKeys(100_000, 1.0, 0.0, rng).sample(200_000)
    _, counts = np.unique(keys, return_counts=True)
    fit = stats.zipf_fit(counts)
    assert fit["alpha"] == pytest.approx(1.0, abs=0.01) and fit["r2"] > 0.95
    # the fit solves the likelihood's score equation over the ranks it keeps
    f = np.sort(counts)[::-1][:fit["ranks_fitted"]].astype(float)
    log_rank = np.log(np.arange(1, len(f) + 1))
    w = np.arange(1, len(f) + 1, dtype=float) ** -fit["alpha"]
    assert (w * log_rank).sum() / w.sum() == pytest.approx((f * log_rank).sum() / f.sum(),
                                                           rel=1e-9)


def test_zipf_fit_is_nearly_unbiased_on_the_head():
    """Over five streams at alpha 1.0 the mean estimate is within 0.006 (a least-squares
    line on the log-log plot reads 0.985, low by 0.015: it weighs the noisy ranks at the
    cut as much as the head)."""
    from sim.serving.arrivals import QueryKeys
    fits = []
    for seed in range(5):
        keys = QueryKeys(100_000, 1.0, 0.0, np.random.default_rng(seed)).sample(200_000)
        fits.append(stats.zipf_fit(np.unique(keys, return_counts=True)[1])["alpha"])
    assert abs(np.mean(fits) - 1.0) < 0.006


def test_a_trace_shorter_than_the_run_shortens_the_window_not_dilutes_it():
    path = SCENARIOS / "azure_conv_replay.toml"
    s = loading.load(path, ["run.duration_s=1200", "run.warmup_s=100", "run.drain_s=300",
                            "workload.trace.end_s=600"])
    res = run(s)
    summ = res.summary
    assert 599 < summ["duration_s"] < 601  # the trace's last arrival plus one mean gap
    arrival = res.queries["arrival"].to_numpy()
    in_window = ((arrival >= 100) & (arrival < summ["duration_s"])).sum()
    assert summ["offered_qps"] == pytest.approx(in_window / (summ["duration_s"] - 100))
    assert summ["offered_qps"] > 4  # ~5.5/s, not diluted by 600 empty seconds
    looped = run(loading.load(path, ["run.duration_s=1200", "run.warmup_s=100",
                                     "run.drain_s=300", "workload.trace.end_s=600",
                                     "workload.trace.loop=true"]))
    assert looped.summary["duration_s"] == 1200
    with pytest.raises(SearchsimError, match="lasts past run.warmup_s"):
        run(loading.load(path, ["run.duration_s=1200", "run.warmup_s=700",
                                "workload.trace.end_s=600"]))
