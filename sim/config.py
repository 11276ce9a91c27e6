"""Scenario schema: TOML -> validated, frozen config objects, with clear errors.

One place validates everything a scenario says: types and ranges (pydantic), catalog keys and
whether the model fits its accelerators (`_check_catalog`). Every problem becomes one line:
the field path, the value seen and what was expected.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim import catalog
from sim import distributions as d
from sim.economics import TOKENS_PER_WORD
from sim.errors import Problem, SearchsimError


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Dist(_Section):
    """A distribution as a scenario states it; `unit = "words"` converts at 1000/750."""

    dist: Literal["fixed", "exponential", "gamma", "lognormal", "empirical"]
    value: float | None = Field(default=None, gt=0)
    mean: float | None = Field(default=None, gt=0)
    cv: float | None = Field(default=None, gt=0)
    values: tuple[float, ...] | None = Field(default=None, min_length=1)
    weights: tuple[float, ...] | None = None
    unit: Literal["tokens", "words", "seconds"] = "tokens"

    @model_validator(mode="after")
    def _needs(self):
        need = {"fixed": ["value"], "exponential": ["mean"], "gamma": ["mean", "cv"],
                "lognormal": ["mean", "cv"], "empirical": ["values"]}[self.dist]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"@{missing[0]}: a number (a '{self.dist}' distribution needs "
                             f"{', '.join(missing)})")
        if self.values is not None and min(self.values) <= 0:
            raise ValueError("@values: positive values")
        if self.weights is not None and (min(self.weights) < 0 or sum(self.weights) <= 0):
            raise ValueError("@weights: non-negative weights, not all zero")
        if self.weights is not None and (self.values is None
                                         or len(self.weights) != len(self.values)):
            raise ValueError("@weights: one weight per value")
        return self

    def build(self) -> d.Distribution:
        k = TOKENS_PER_WORD if self.unit == "words" else 1.0
        if self.dist == "fixed":
            return d.Fixed(self.value * k)
        if self.dist == "exponential":
            return d.Exponential(self.mean * k)
        if self.dist == "empirical":
            return d.Empirical(tuple(v * k for v in self.values), self.weights)
        return d.KINDS[self.dist](self.mean * k, self.cv)


class Run(_Section):
    duration_s: float = Field(3600.0, gt=0)
    warmup_s: float = Field(300.0, ge=0)
    drain_s: float = Field(600.0, ge=0)  # after arrivals stop, how long in-flight work may finish
    seed: int = Field(1, ge=0)
    interval_s: float = Field(60.0, gt=0)  # time-series bin width
    shards: int = Field(1, ge=1)  # split traffic by query hash into independent shards
    jobs: int = Field(1, ge=1)  # processes running shards at once (results do not depend on it)

    @model_validator(mode="after")
    def _warmup_before_end(self):
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"@warmup_s: a warm-up shorter than duration_s ({self.duration_s})")
        return self


class Trace(_Section):
    """Replay of a trace file (see `searchsim trace inspect`)."""

    path: str
    format: str = "auto"  # auto-detected from the header, or a known format's name
    mapping: str | None = None  # generic files: "time=COL,prompt=COL,output=COL,query=COL"
    time_unit: Literal["auto", "datetime", "s", "ms", "us"] = "auto"
    speed: float = Field(1.0, gt=0)  # 2 replays twice as fast
    scale: float = Field(1.0, gt=0)  # rate multiplier: thinning (< 1) or shifted copies (> 1)
    copy_offset_s: float = Field(60.0, gt=0)
    loop: bool = False
    start_s: float = Field(0.0, ge=0)  # window in trace time
    end_s: float | None = Field(None, gt=0)
    sort: bool = False  # sort out-of-order rows instead of refusing the file

    @model_validator(mode="after")
    def _window(self):
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"@end_s: a window end after start_s ({self.start_s})")
        return self


class Workload(_Section):
    arrival: Literal["poisson", "bursty", "diurnal", "trace"] = "poisson"
    trace: Trace | None = None
    rate_qps: float = Field(1.0, gt=0)
    cv: float = Field(1.0, gt=0)  # inter-arrival CV for `bursty`
    profile: tuple[float, ...] | None = None  # 24 hourly rate multipliers for `diurnal`
    day_s: float = Field(86400.0, gt=0)  # length of one profile day (compress it to test)
    distinct_queries: int = Field(1_000_000, ge=1)
    zipf_alpha: float = Field(0.9, ge=0)
    one_off_share: float = Field(0.0, ge=0, le=1)
    query_tokens: Dist = Dist(dist="fixed", value=50, unit="words")
    response_tokens: Dist = Dist(dist="fixed", value=400, unit="words")

    @model_validator(mode="after")
    def _trace(self):
        if self.arrival == "trace" and self.trace is None:
            raise ValueError("@trace: a [workload.trace] table with `path` (arrival = trace)")
        return self

    @model_validator(mode="after")
    def _profile(self):
        p = self.profile
        bad = p is None or len(p) != 24 or min(p) < 0 or max(p) <= 0
        if self.arrival == "diurnal" and bad:
            raise ValueError("@profile: 24 non-negative hourly rate multipliers, not all "
                             "zero (diurnal arrivals)")
        return self


class Cache(_Section):
    policy: Literal["none", "lru", "bernoulli"] = "none"
    capacity: int = Field(100_000, ge=0)
    ttl_s: float | None = Field(None, gt=0)
    hit_rate: float = Field(0.0, ge=0, le=1)  # `bernoulli` only
    hit_latency_s: float = Field(0.01, ge=0)


class Retrieval(_Section):
    servers: int = Field(8, ge=1)
    service_s: Dist = Dist(dist="exponential", mean=0.05, unit="seconds")
    passage_tokens: Dist = Dist(dist="fixed", value=1000, unit="words")
    usd_per_server_hour: float = Field(0.0, ge=0)


class LLM(_Section):
    model: str = "gpt3_175b"
    hardware: str = "a100_40gb"
    tp: int = Field(16, ge=1)  # accelerators per replica (tensor/model-parallel degree)
    replicas: int = Field(1, ge=1)
    router: Literal["round_robin", "least_outstanding"] = "least_outstanding"
    batching: Literal["static", "continuous"] = "static"
    max_batch: int = Field(8, ge=1)
    max_wait_s: float = Field(0.0, ge=0)  # static: wait this long for a batch to fill
    chunk_tokens: int | None = Field(None, ge=1)  # continuous: prefill token budget/iteration
    kv_memory_fraction: float = Field(0.9, gt=0, le=1)  # share of free HBM given to KV cache
    step_model: Literal["article", "roofline"] = "article"
    mfu: float = Field(0.213, gt=0, le=1)  # article step model: fixed share of peak
    bytes_per_param: float = Field(2.0, gt=0)


class Architecture(_Section):
    kind: Literal["chatgpt_equivalent", "two_stage"] = "two_stage"
    samples: int = Field(5, ge=1)  # chatgpt_equivalent: n responses, best kept
    k: int = Field(10, ge=1)  # two_stage: top-K results summarized


class Limits(_Section):
    slo_s: float = Field(10.0, gt=0)  # latency target for slo_attainment
    deadline_s: float | None = Field(None, gt=0)
    policy: Literal["none", "partial", "degrade"] = "none"


class Economics(_Section):
    price: str | float = "aws-p4d-1y"  # catalog price key of llm.hardware, or $/chip-hour
    revenue_per_query: float = Field(0.0476, gt=0)


class Scenario(_Section):
    name: str = "scenario"
    description: str = ""
    run: Run = Run()
    workload: Workload = Workload()
    cache: Cache = Cache()
    retrieval: Retrieval = Retrieval()
    llm: LLM = LLM()
    architecture: Architecture = Architecture()
    limits: Limits = Limits()
    economics: Economics = Economics()

    @property
    def usd_per_chip_hour(self) -> float:
        return catalog.price_per_chip_hour(self.llm.hardware, self.economics.price)


# --- loading -------------------------------------------------------------------------------

def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The valid keys at the place an unknown key was found, for a "did you mean"."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


_EXPECTED = {
    "greater_than": "a number > {gt}", "greater_than_equal": "a number >= {ge}",
    "less_than": "a number < {lt}", "less_than_equal": "a number <= {le}",
    "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "an integer",
    "float_parsing": "a number", "float_type": "a number", "string_type": "a string",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "model_type": "a table", "dict_type": "a table", "tuple_type": "a list",
    "list_type": "a list", "too_short": "at least {min_length} item(s)",
    "literal_error": "one of {expected}",
    "finite_number": "a finite number",
}


def _problem(err: dict) -> Problem:
    loc = tuple(p for p in err["loc"] if not str(p).startswith("function-after"))
    path = ".".join(map(str, loc)) or "scenario"
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        near = difflib.get_close_matches(str(loc[-1]), _fields_at(Scenario, loc), n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        return Problem(path, value, "", message=f"unknown key{hint}")
    msg = err["msg"].removeprefix("Value error, ")
    if msg.startswith("@"):  # a model validator naming its own field
        key, msg = msg[1:].split(": ", 1)
        path = f"{path}.{key}" if loc else key
        value = value.get(key) if isinstance(value, dict) else value
    elif err["type"] in _EXPECTED:
        ctx = {k: f"{v:g}" if isinstance(v, int | float) else v
               for k, v in err.get("ctx", {}).items()}
        msg = _EXPECTED[err["type"]].format(**ctx)
    return Problem(path, value, msg)


def _check_trace(s: Scenario) -> None:
    if s.workload.arrival != "trace":
        return
    from sim.traces.formats import resolve  # only scenarios that replay a trace need it
    t = s.workload.trace
    if not Path(t.path).is_file():
        raise SearchsimError(Problem("workload.trace.path", t.path, "an existing trace file"))
    resolve(Path(t.path), t.format, t.mapping, t.time_unit)


def _check_catalog(s: Scenario) -> None:
    problems = []
    for field, key, table in (("llm.model", s.llm.model, catalog.models()),
                              ("llm.hardware", s.llm.hardware, catalog.accelerators())):
        if key not in table:
            problems.append(Problem(field, key, "one of: " + ", ".join(sorted(table))))
    if problems:
        raise SearchsimError(problems)
    hw, model = catalog.accelerator(s.llm.hardware), catalog.model(s.llm.model)
    price = s.economics.price
    if isinstance(price, str) and price not in [p.key for p in hw.prices]:
        valid = ", ".join(p.key for p in hw.prices) or "none"
        raise SearchsimError(Problem("economics.price", price,
                                     f"a $/chip-hour or a price of {hw.key}: {valid}"))
    if isinstance(price, int | float) and not 0 < price < float("inf"):
        raise SearchsimError(Problem("economics.price", price, "a positive $/chip-hour"))
    weights = model.weight_bytes(s.llm.bytes_per_param)
    hbm = hw.hbm_bytes * s.llm.tp
    if weights > hbm:
        raise SearchsimError(Problem(
            "llm.tp", s.llm.tp,
            f"enough {hw.key} to hold {model.key}'s {weights / 1e9:.0f} GB of weights "
            f"({s.llm.tp} x {hw.hbm_gb:g} GB = {hbm / 1e9:.0f} GB, "
            f"{(weights - hbm) / 1e9:.0f} GB short)"))
    kv_free = (hbm - weights) * s.llm.kv_memory_fraction
    if s.llm.batching == "continuous" and kv_free < model.kv_bytes_per_token():
        raise SearchsimError(Problem(
            "llm.tp", s.llm.tp, f"room for a KV cache beside the weights (continuous batching "
            f"needs {model.kv_bytes_per_token() / 1e6:.2f} MB per token; "
            f"{max(kv_free, 0) / 1e6:.2f} MB is left)"))


def parse_override(text: str) -> tuple[list[str], object]:
    """`section.key=value`; the value is read as TOML (numbers, strings, lists, tables)."""
    if "=" not in text or not text.split("=", 1)[0].strip():
        raise SearchsimError(Problem("--set", text, "section.key=value"))
    path, raw = (p.strip() for p in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return path.split("."), value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for k in keys[:-1]:
            if not isinstance(node.setdefault(k, {}), dict):
                raise SearchsimError(Problem("--set", text, f"'{k}' to be a section"))
            node = node[k]
        node[keys[-1]] = value
    return raw


def from_dict(raw: dict) -> Scenario:
    try:
        s = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise SearchsimError([_problem(e) for e in exc.errors()]) from None
    _check_catalog(s)
    _check_trace(s)
    return s


def read_toml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise SearchsimError(Problem("scenario", str(p), "an existing TOML file"))
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SearchsimError(Problem("scenario", str(p), "a UTF-8 text file")) from None
    except tomllib.TOMLDecodeError as exc:
        raise SearchsimError(Problem("scenario", str(p), f"valid TOML ({exc})")) from None


def _anchor_trace_path(raw: dict, scenario_dir: Path) -> None:
    """A relative trace path is read relative to the scenario file, if it is there."""
    trace = raw.get("workload", {}).get("trace") if isinstance(raw.get("workload"), dict) \
        else None
    if isinstance(trace, dict) and isinstance(trace.get("path"), str):
        p = Path(trace["path"]).expanduser()
        if not p.is_absolute() and (scenario_dir / p).exists():
            trace["path"] = str((scenario_dir / p).resolve())


def load(path: str | Path, overrides: list[str] = ()) -> Scenario:
    raw = apply_overrides(read_toml(path), list(overrides))
    raw.setdefault("name", Path(path).stem)
    _anchor_trace_path(raw, Path(path).parent)
    return from_dict(raw)


def to_dict(s: Scenario) -> dict:
    """The scenario as resolved: every default filled in, None values dropped (TOML has none)."""
    return s.model_dump(mode="json", exclude_none=True)
