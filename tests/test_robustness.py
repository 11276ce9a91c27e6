"""Robustness: fuzzed scenario and trace input, interrupted runs, determinism across
processes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.errors import SearchsimError
from sim.scenario import loading
from sim.scenario.schema import Scenario
from sim.traces import formats, reader, stats
from tests.conftest import ROOT, SCENARIOS

SECTIONS = ["run", "workload", "cache", "retrieval", "llm", "architecture", "limits",
            "economics", "runn", "extra"]
KEYS = ["duration_s", "warmup_s", "seed", "rate_qps", "arrival", "policy", "capacity",
        "hit_rate", "servers", "model", "hardware", "tp", "replicas", "max_batch", "mfu",
        "kind", "k", "samples", "deadline_s", "price", "batching", "query_tokens", "dist",
        "mean", "cv", "value", "profile", "bogus"]
scalars = st.one_of(st.integers(-10, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.text(max_size=12),
                    st.sampled_from(["poisson", "trace", "lru", "gpt3_175b", "h100", "static",
                                     "continuous", "two_stage", "partial", "lognormal"]))
values = st.one_of(scalars, st.lists(scalars, max_size=4),
                   st.dictionaries(st.sampled_from(KEYS), scalars, max_size=4))
documents = st.dictionaries(st.sampled_from(SECTIONS),
                            st.dictionaries(st.sampled_from(KEYS), values, max_size=5),
                            max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents)
def test_random_scenarios_give_a_scenario_or_our_error(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("fuzz") / "s.toml"
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    try:
        s = loading.load(path)
    except SearchsimError as exc:
        assert exc.lines and all("\n" not in line for line in exc.lines)
        return
    assert isinstance(s, Scenario)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_random_text_as_toml(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "s.toml"
    path.write_text(text, encoding="utf-8")
    try:
        s = loading.load(path)
    except SearchsimError as exc:
        assert exc.lines
        return
    assert isinstance(s, Scenario)


cells = st.one_of(st.integers(-5, 10**5).map(str), st.floats(allow_nan=True).map(str),
                  st.sampled_from(["", "x", "nan", "2023-11-16 18:17:03.97", "1e3", "-0",
                                   "2023-13-45 99:99:99", '"q,uoted"']))
rows = st.lists(st.tuples(cells, cells, cells), min_size=0, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows, header=st.sampled_from(["TIMESTAMP,ContextTokens,GeneratedTokens",
                                          "timestamp,query", "timestamp,query_id",
                                          "Timestamp,Model,Request tokens,Response tokens,"
                                          "Total tokens,Log Type"]),
       trailing_newline=st.booleans())
def test_random_trace_rows_give_a_trace_or_our_error(tmp_path_factory, rows, header,
                                                     trailing_newline):
    width = len(header.split(","))
    lines = [",".join((list(r) * 2)[:width]) for r in rows]
    path = tmp_path_factory.mktemp("fuzz") / "t.csv"
    path.write_text(header + "\n" + "\n".join(lines) + ("\n" if trailing_newline else ""),
                    encoding="utf-8")
    try:
        fmt = formats.resolve(path)
        summary = stats.inspect(reader.read_batches(path, fmt))
    except SearchsimError as exc:
        assert exc.lines and all("\n" not in line for line in exc.lines)
        return
    assert summary["requests"] >= 1


def _searchsim(*args, env=None, **kw):
    cmd = [sys.executable, "-c", "from cli.main import app; app()", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint, **kw)


def _default_sigint() -> None:
    """A shell's background job ignores SIGINT and its children inherit that (Python then
    installs no Ctrl-C handler): give the child the default, as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_cpu(proc, seconds: float, limit: float = 60.0) -> None:
    """Wait until the child has used `seconds` of CPU (Linux /proc), or `limit` wall-seconds."""
    stat = Path(f"/proc/{proc.pid}/stat")
    tick = os.sysconf("SC_CLK_TCK")
    start = time.monotonic()
    while time.monotonic() - start < limit and proc.poll() is None:
        if not stat.exists():
            time.sleep(seconds + 2)
            return
        fields = stat.read_text().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / tick >= seconds:
            return
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_leaves_no_result(tmp_path, sig):
    out = tmp_path / "run"
    proc = _searchsim("run", str(SCENARIOS / "two_stage.toml"), "--set",
                      "run.duration_s=500000", "--out", str(out))
    _wait_for_cpu(proc, 3.0)  # imports and set-up take about one CPU-second: now simulating
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: stopped cleanly, no result was written" in err
    assert "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_same_seed_same_bytes_across_processes(tmp_path):
    runs = []
    for i, hashseed in enumerate(["1", "12345"]):
        out = tmp_path / f"r{i}"
        proc = _searchsim("run", str(SCENARIOS / "modern_two_stage.toml"), "--set",
                          "run.duration_s=120", "--set", "run.warmup_s=10", "--out", str(out),
                          env={"PYTHONHASHSEED": hashseed})
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        runs.append(out)
    for name in ("summary.json", "queries.parquet", "requests.parquet", "timeseries.parquet",
                 "scenario.toml"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name
    assert Path(runs[0] / "summary.json").stat().st_size > 0


def _wait_for_children(proc, limit: float = 60.0) -> None:
    """Wait until the child has children of its own (Linux /proc), or `limit` seconds."""
    listing = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    start = time.monotonic()
    while time.monotonic() - start < limit and proc.poll() is None:
        if not listing.exists():  # no /proc: give it time
            time.sleep(8.0)
            return
        if listing.read_text().split():
            return
        time.sleep(0.1)


def test_sigterm_stops_a_parallel_size_at_once():
    """SIGTERM during a sizing on a process pool: pending jobs cancelled, workers
    terminated, exit 130 within 5 s (the pool used to wait for every job to end)."""
    proc = _searchsim("size", str(SCENARIOS / "modern_two_stage.toml"), "--jobs", "2",
                      "--hardware", "h100,h200", "--tp", "4", "--replicas", "4:12",
                      "--set", "limits.slo_s=25", "--set", "limits.deadline_s=25")
    _wait_for_children(proc)  # the pool's workers are up
    time.sleep(2.0)  # and simulating
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - sent < 5.0
    assert "no result was written" in err and "Traceback" not in err
