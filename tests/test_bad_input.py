"""Bad input through the CLI: each refused with its exact one-line message, exit status 2,
no traceback and nothing written."""

import pytest

from cli.main import app
from sim.model.catalog import accelerators, models
from tests.conftest import SCENARIOS

TWO_STAGE = str(SCENARIOS / "two_stage.toml")
MODELS = ", ".join(sorted(models()))
HARDWARE = ", ".join(sorted(accelerators()))

SCENARIO_CASES = [
    ("run.duraton_s=10", "run.duraton_s: unknown key (did you mean 'duration_s'?)"),
    ("wrkload.rate_qps=3", "wrkload: unknown key (did you mean 'workload'?)"),
    ('llm.replicas="two"', "llm.replicas: got 'two', expected an integer"),
    ("workload.rate_qps=-1", "workload.rate_qps: got -1, expected a number > 0"),
    ("workload.rate_qps=0", "workload.rate_qps: got 0, expected a number > 0"),
    ("architecture.k=0", "architecture.k: got 0, expected a number >= 1"),
    ("architecture.samples=0", "architecture.samples: got 0, expected a number >= 1"),
    ("llm.mfu=1.5", "llm.mfu: got 1.5, expected a number <= 1"),
    ("llm.mfu=0", "llm.mfu: got 0, expected a number > 0"),
    ("cache.capacity=-5", "cache.capacity: got -5, expected a number >= 0"),
    ("limits.deadline_s=0", "limits.deadline_s: got 0, expected a number > 0"),
    ("limits.deadline_s=-2.5", "limits.deadline_s: got -2.5, expected a number > 0"),
    ("run.warmup_s=4000",
     "run.warmup_s: got 4000, expected a warm-up shorter than duration_s (3600.0)"),
    ('llm.model="gpt5"', f"llm.model: got 'gpt5', expected one of: {MODELS}"),
    ('llm.hardware="a100"', f"llm.hardware: got 'a100', expected one of: {HARDWARE} "
                            "(did you mean 'a100_80gb'?)"),
    ('economics.price="spot"', "economics.price: got 'spot', expected a $/chip-hour, "
                               "'owned', or a price of a100_40gb: 1-year, on-demand, "
                               "aws-p4d-1y, aws-p4d-on-demand"),
    ('llm.hardware="tpu_v4"|economics.price="owned"|llm.model="llama2_7b"|llm.tp=1',
     "economics.owned.capex_usd: got None, expected a purchase price per chip (tpu_v4 has "
     "none in the catalog)"),
    ("economics.owned.pue=0.9", "economics.owned.pue: got 0.9, expected a number >= 1"),
    ("economics.price=-2", "economics.price: got -2.0, expected a positive $/chip-hour"),
    ("llm.tp=8", "llm.tp: got 8, expected enough a100_40gb to hold gpt3_175b's 350 GB of "
                 "weights (8 x 40 GB = 320 GB, 30 GB short)"),
    ('workload.arrival="trace"', "workload.trace: got None, expected a [workload.trace] "
                                 "table with `path` (arrival = trace)"),
    ('llm.router="random"',
     "llm.router: got 'random', expected one of 'round_robin', 'least_outstanding' or "
     "'prefix_affinity'"),
    ('limits.policy="drop"',
     "limits.policy: got 'drop', expected one of 'none', 'partial' or 'degrade'"),
    ('llm.batching="dynamic"',
     "llm.batching: got 'dynamic', expected one of 'static' or 'continuous'"),
    ('workload.response_tokens={dist="lognormal", mean=5}',
     "workload.response_tokens.cv: got None, expected a number (a 'lognormal' distribution "
     "needs cv)"),
    ('workload.response_tokens={dist="pareto", mean=5}',
     "workload.response_tokens.dist: got 'pareto', expected one of 'fixed', 'exponential', "
     "'gamma', 'lognormal' or 'empirical'"),
    ('workload.query_tokens={dist="empirical", values=[1,2], weights=[1]}',
     "workload.query_tokens.weights: got [1], expected one weight per value"),
    ("cache.hit_rate=1.5", "cache.hit_rate: got 1.5, expected a number <= 1"),
    ("workload.one_off_share=-0.1", "workload.one_off_share: got -0.1, expected a number >= 0"),
    ('workload.arrival="diurnal"', "workload.profile: got None, expected 24 non-negative "
                                   "hourly rate multipliers, not all zero (diurnal arrivals)"),
    ("run.duration_s=inf", "run.duration_s: got inf, expected a finite number"),
    ("run.seed=-1", "run.seed: got -1, expected a number >= 0"),
    ("llm.tp", "--set: got 'llm.tp', expected section.key=value"),
    ("llm=3", "llm: got 3, expected a table"),
    ('llm.batching="continuous"', None),  # valid: a control that the table is not vacuous
    ("workload.rate_qps=1e9", "workload.rate_qps: got 1000000000.0, expected a load of at most "
     "2e+08 LLM requests over the run (this one would submit ~3.6e+13; raise "
     "run.max_llm_requests if meant)"),
    ('workload.trace={path="x.csv"}', 'workload.arrival: got \'poisson\', expected "trace" (a '
     '[workload.trace] table is given; it is replayed only with arrival = "trace", not '
     '"poisson")'),
]


@pytest.mark.parametrize("override, message", SCENARIO_CASES,
                         ids=[c[0][:40] for c in SCENARIO_CASES])
def test_bad_scenario(runner, tmp_path, override, message):
    out = tmp_path / "out"
    sets = [arg for one in override.split("|") for arg in ("--set", one)]
    res = runner.invoke(app, ["run", TWO_STAGE, *sets, "--set",
                              "run.duration_s=3600" if "duration" not in override else
                              "run.seed=1", "--out", str(out),
                              *(["--set", "run.duration_s=120", "--set", "run.warmup_s=10"]
                                if message is None else [])])
    if message is None:
        assert res.exit_code == 0, res.output
        return
    assert res.exit_code == 2, res.output
    assert res.stderr == f"error: {message}\n"
    assert "Traceback" not in res.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_several_problems_one_line_each(runner):
    res = runner.invoke(app, ["run", TWO_STAGE, "--set", "llm.mfu=2", "--set", "architecture.k=0"])
    assert res.exit_code == 2
    assert res.stderr.splitlines() == ["error: llm.mfu: got 2, expected a number <= 1",
                                       "error: architecture.k: got 0, expected a number >= 1"]


def test_missing_trace_file_in_a_scenario(runner, tmp_path):
    res = runner.invoke(app, ["run", TWO_STAGE, "--set", 'workload.arrival="trace"', "--set",
                              f'workload.trace={{path="{tmp_path}/nope.csv"}}'])
    assert res.exit_code == 2
    assert res.stderr == (f"error: workload.trace.path: got '{tmp_path}/nope.csv', expected "
                          "an existing trace file\n")


def test_scenario_files(runner, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\n")
    res = runner.invoke(app, ["run", str(bad)])
    assert res.exit_code == 2 and res.stderr == (
        f"error: scenario: got '{bad}', expected valid TOML (Expected ']' at the end of a "
        "table declaration (at line 1, column 5))\n")
    res = runner.invoke(app, ["run", str(tmp_path / "nothere.toml")])
    assert res.stderr == f"error: scenario: got '{tmp_path}/nothere.toml', expected an " \
                         "existing TOML file\n"
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'name = "caf\xe9"\n')
    res = runner.invoke(app, ["run", str(latin)])
    assert res.stderr == f"error: scenario: got '{latin}', expected a UTF-8 text file\n"


AZ = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
TRACE_CASES = [
    ("cols.csv", "a,b,c\n1,2,3\n", [], "{p}: unknown trace format, columns ['a', 'b', 'c']; "
     "expected one of (azure: TIMESTAMP, ContextTokens, GeneratedTokens; burstgpt: Timestamp, "
     "Request tokens, Response tokens; mooncake: timestamp, input_length, output_length; "
     "queries: timestamp, query; query_ids: timestamp, query_id; canonical: time_s, "
     "prompt_tokens, output_tokens, key), or give --format and a column mapping"),
    ("forced.csv", "a,b,c\n1,2,3\n", ["--format", "azure"], "{p}: format azure needs columns "
     "['TIMESTAMP', 'ContextTokens', 'GeneratedTokens'], the file has ['a', 'b', 'c']"),
    ("time.csv", AZ + "2023-11-16 18:17:03.97,10,5\nnot a time,10,5\n", [],
     "{p}:line 3: got 'not a time', expected a timestamp such as 2023-11-16 18:17:03.97"),
    ("back.csv", AZ + "2023-11-16 18:17:03.97,10,5\n2023-11-16 18:17:02.00,10,5\n", [],
     "{p}:line 3 (TIMESTAMP): timestamp goes backwards (-1.970000 s after the start, the row "
     "before was at 0.000000 s); sort the file or pass --sort"),
    ("neg.csv", AZ + "2023-11-16 18:17:03.97,10,5\n2023-11-16 18:17:04.00,-3,5\n", [],
     "{p}:line 3 (ContextTokens): got -3, expected a positive whole number of tokens"),
    ("zero.csv", AZ + "2023-11-16 18:17:03.97,10,0\n", [],
     "{p}:line 2 (GeneratedTokens): got 0, expected a positive whole number of tokens"),
    ("nan.csv", AZ + "2023-11-16 18:17:03.97,10,\n", [],
     "{p}:line 2 (GeneratedTokens): got nan, expected a positive whole number of tokens"),
    ("frac.csv", AZ + "2023-11-16 18:17:03.97,10,5.5\n", [],
     "{p}:line 2 (GeneratedTokens): got 5.5, expected a positive whole number of tokens"),
    ("word.csv", AZ + "2023-11-16 18:17:03.97,ten,5\n", [],
     "{p}:line 2 (ContextTokens): got 'ten', expected a number"),
    ("empty.csv", "", [], "{p}: empty file: no header row"),
    ("header.csv", AZ, [], "{p}: no requests: the file has a header but no data rows"),
    ("latin.csv", b"timestamp,query\n1,caf\xe9\n", [], "{p}: not UTF-8 text (re-encode it as "
     "UTF-8)"),
    ("trunc.csv", AZ + "2023-11-16 18:17:03.97,10,5\n2023-11-16 18:17:04.00,10", [],
     "{p}:line 3: truncated or malformed row: 2 field(s), expected 3"),
    ("mid.csv", AZ + "2023-11-16 18:17:03.97,10,5\n2023-11-16 18:17:04.00,10\n"
     "2023-11-16 18:17:05.00,10,3\n", [],
     "{p}:line 3: truncated or malformed row: 2 field(s), expected 3"),
    ("bad.jsonl", '{"timestamp": 1, "input_length": 2, "output_length": 3}\n'
     '{"timestamp": 2, "input_length": 2, "output_length": \n', [],
     "{p}:line 2: not valid JSON (Invalid value)"),
    ("notjson.jsonl", "hello\n", [], "{p}:1: got 'hello', expected a JSON object per line"),
    ("fmt.csv", "a,b\n1,2\n", ["--format", "foo"], "format: got 'foo', expected one of: auto, "
     "azure, burstgpt, mooncake, queries, query_ids, canonical"),
    ("map.csv", "a,b\n1,2\n", ["--map", "time=a,foo=b"],
     "mapping: got 'time=a,foo=b', expected time=COL plus any of prompt, output, query, "
     "query_id"),
    ("qid.csv", "timestamp,query_id\n1,5\n2,\n", [],
     "{p}:line 3 (query_id): got None, expected a query id"),
    ("notparquet.parquet", "hello", [], "{p}: not a Parquet file"),
    ("ms.csv", "timestamp,query_id\n0,1\n1500,2\n3600000,3\n", [],
     "{p} (timestamp): got '3.6e+06', expected timestamps in a stated unit: read as seconds "
     "they span 41.7 days (1.00 hours if milliseconds); set time_unit (--time-unit) to s, ms "
     "or us"),
]


@pytest.mark.parametrize("name, content, args, message", TRACE_CASES,
                         ids=[c[0] for c in TRACE_CASES])
def test_bad_trace(runner, tmp_path, name, content, args, message):
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    res = runner.invoke(app, ["trace", "inspect", str(p), *args])
    assert res.exit_code == 2, res.output
    expected = "error: " + message.format(p=p)
    if name.endswith(".parquet"):
        assert res.stderr.startswith(expected)
    else:
        assert res.stderr == expected + "\n"


def test_missing_trace_and_sorting(runner, tmp_path):
    res = runner.invoke(app, ["trace", "inspect", str(tmp_path / "missing.csv")])
    assert res.exit_code == 2
    assert res.stderr == f"error: trace: got '{tmp_path}/missing.csv', expected an existing " \
                         "trace file\n"
    p = tmp_path / "back.csv"
    p.write_text(AZ + "2023-11-16 18:17:03.97,10,5\n2023-11-16 18:17:02.00,10,5\n")
    res = runner.invoke(app, ["trace", "inspect", str(p), "--sort", "--json"])
    assert res.exit_code == 0
    assert res.stderr == f"warning: {p}: 1 out-of-order row(s) sorted by time\n"
    assert '"span_s": 1.97' in res.stdout


def test_an_empty_scenario_file_is_refused(runner, tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    res = runner.invoke(app, ["run", str(empty), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and res.stderr.startswith(f"error: scenario: got '{empty}', "
                                                        "expected a scenario with at least")
    assert not (tmp_path / "out").exists()


def test_compare_refuses_two_scenarios_with_one_name(runner, tmp_path):
    res = runner.invoke(app, ["compare", TWO_STAGE, TWO_STAGE, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: scenario name: got 'two_stage', expected a "
                                 "different name")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["size", "scenarios/modern_two_stage.toml", "--jobs", "0"], "--jobs: got 0, expected an "
                                                                 "integer >= 1"),
    (["sweep", "scenarios/modern_two_stage.toml", "--vary", "llm.replicas=2,3", "--jobs", "0"],
     "--jobs: got 0, expected an integer >= 1"),
    (["run", "scenarios/modern_two_stage.toml", "--set", "llm.hardware='H100'"],
     "(did you mean 'h100'?)"),
    (["run", "scenarios/modern_two_stage.toml", "--set", "llm.model='llama3-70b'"],
     "(did you mean 'llama3_70b'?)"),
    (["run", "scenarios/modern_two_stage.toml", "--set", "llm.tp=3"],
     "llm.tp: got 3, expected a tensor-parallel degree that divides llama3_70b's 64 "
     "attention heads"),
])
def test_bad_options_are_refused_before_any_work(args, message, tmp_path):
    from typer.testing import CliRunner
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert message in res.output
