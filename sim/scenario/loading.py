"""Loading a scenario: TOML text and `--set` overrides -> a validated, frozen `Scenario`.

One place validates everything a scenario says: types and ranges (pydantic, in `schema`),
catalog keys and whether the model fits its accelerators (`_check_catalog`), trace files
(`_check_trace`). Every problem becomes one line: the field path, the value seen and what was
expected.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Sequence
from pathlib import Path

import tomli_w
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from sim.errors import Problem, SearchsimError, unknown_key
from sim.model import catalog, perf, pricing
from sim.scenario.schema import Scenario


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


def _problem(err: ErrorDetails) -> Problem:
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


def _resolve_trace(s: Scenario) -> Scenario:
    """Check the trace file and record its kind (requests or queries) in the scenario."""
    t = s.workload.replayed
    if t is None:
        return s
    from sim.traces.formats import resolve  # only scenarios that replay a trace need it
    if not Path(t.path).is_file():
        raise SearchsimError(Problem("workload.trace.path", t.path, "an existing trace file"))
    fmt = resolve(Path(t.path), t.format, t.mapping, t.time_unit)
    if fmt.blocks and s.llm.prefix_cache is not None and \
            s.llm.prefix_block_tokens != fmt.block_tokens:
        raise SearchsimError(Problem(
            "llm.prefix_cache.block_tokens", s.llm.prefix_block_tokens,
            f"{fmt.block_tokens} (the {fmt.name} trace's {fmt.blocks} are blocks of "
            f"{fmt.block_tokens} tokens)"))
    trace = t.model_copy(update={"kind": fmt.kind})
    return s.model_copy(update={"workload": s.workload.model_copy(update={"trace": trace})})


def _check_catalog(s: Scenario) -> None:
    problems = []
    checks: list[tuple[str, str, dict]] = [
        ("llm.model", s.llm.model, catalog.models()),
        ("llm.hardware", s.llm.hardware, catalog.accelerators()),
        *((f"llm.groups[{i}].hardware", g.hardware, catalog.accelerators())
          for i, g in enumerate(s.llm.groups))]
    for field, key, table in checks:
        if key not in table:
            problems.append(unknown_key(field, key, list(table)).problems[0])
    if problems:
        raise SearchsimError(problems)
    hw = catalog.accelerator(s.llm.hardware)
    if s.llm.step_model == "roofline":
        from sim.model import profile
        profile.load(s.llm.profile)
    _check_price(s, hw)
    for i, g in enumerate(s.llm.fleet):
        _check_group(s, g, "llm" if i == 0 else f"llm.groups[{i - 1}]")


def _check_price(s: Scenario, hw) -> None:
    """The price names a kind (with a price of it by `price_date`), a key of the
    hardware's, or a positive $/chip-hour."""
    price, date = s.economics.price, s.economics.price_date
    if date is not None:
        pricing.month_index(date, "economics.price_date")
    if s.economics.is_owned:
        return
    kinds = sorted({p.kind for p in hw.prices})
    if isinstance(price, str) and price not in kinds and price not in [p.key for p in hw.prices]:
        valid = ", ".join([*kinds, *(p.key for p in hw.prices)]) or "none"
        raise SearchsimError(Problem("economics.price", price,
                                     f"a $/chip-hour, 'owned', or a price of {hw.key}: "
                                     f"{valid}"))
    pricing.quote(hw.key, price, date)  # a kind it has, by the date; a positive number


def _check_group(s: Scenario, g, where: str) -> None:
    """A replica group holds the weights, has room for a KV cache, and has a price."""
    hw, model = catalog.accelerator(g.hardware), catalog.model(s.llm.model)
    if s.economics.is_owned:
        s.economics.owned.cost(hw.key)  # refuses hardware with no purchase price
    elif g.hardware != s.llm.hardware:
        s.group_usd_per_chip_hour(g.hardware)  # refuses hardware with no price of the kind
    if model.is_moe and not s.llm.experimental_moe:
        _check_moe_fitted(s, model, hw, g)
    if model.heads % g.tp or (model.kv_heads % g.tp and g.tp % model.kv_heads):
        raise SearchsimError(Problem(
            f"{where}.tp", g.tp, f"a tensor-parallel degree that divides {model.key}'s "
            f"{model.heads} attention heads (and its {model.kv_heads} KV heads, or is a "
            "multiple of them)"))
    _check_parallel(model, g, where)
    weights = perf.weights_held(model, s.llm.weight_bytes, g.dp)
    chips = g.chips_per_replica
    hbm = hw.hbm_bytes * chips
    if weights > hbm:
        raise SearchsimError(Problem(
            f"{where}.tp", g.tp,
            f"enough {hw.key} to hold {model.key}'s {weights / 1e9:.0f} GB of weights "
            f"({chips} x {hw.hbm_gb:g} GB = {hbm / 1e9:.0f} GB, "
            f"{(weights - hbm) / 1e9:.0f} GB short)"))
    kv_free = perf.kv_bytes_free(model, hw, g.tp, s.llm.weight_bytes,
                                 s.llm.kv_memory_fraction,
                                 s.llm.engine_spec.get("gpu_memory_utilization", 0.9),
                                 s.llm.engine_spec.get("reserve_gb", 0.0), g.dp)
    if s.llm.batching == "continuous" and kv_free < model.kv_bytes_per_token(s.llm.kv_bytes):
        raise SearchsimError(Problem(
            f"{where}.tp", g.tp, f"room for a KV cache beside the weights (continuous "
            f"batching needs {model.kv_bytes_per_token(s.llm.kv_bytes) / 1e6:.2f} MB per token; "
            f"{max(kv_free, 0) / 1e6:.2f} MB is left)"))


def _check_moe_fitted(s: Scenario, model, hw, g) -> None:
    """A mixture of experts runs on a profile whose grouped-expert efficiency was fitted for
    the hardware's family at the precision its experts run (docs/accuracy.md), unless the
    scenario opts in to uncalibrated expert terms."""
    if s.llm.step_model != "roofline":
        return  # the article's framework: 2N active FLOPs at a fixed MFU, no expert terms
    step = perf.make("roofline", model, hw, g.tp, profile=s.llm.engine_spec.step_profile(
        s.llm.profile), precision=s.llm.precision)
    assert isinstance(step, perf.RooflineStep)
    if step.expert_fit.moe_efficiency is None:
        key = f"{hw.family}:{step.expert_gemm_precision}"
        raise SearchsimError(Problem(
            "llm.model", model.key, f"a dense model, or an engine profile with mixture-of-"
            f"experts terms fitted for {key} (profile {step.profile.name} has none; "
            "engine trtllm has them for Hopper and Blackwell); set llm.experimental_moe = "
            "true to run on uncalibrated expert terms"))


def _check_parallel(model, g, where: str) -> None:
    """Attention data parallelism and expert parallelism are for a mixture of experts, its
    expert groups dividing both its chips and its experts, within one scale-up domain (an
    all-to-all across nodes is not modelled)."""
    if (g.dp > 1 or g.ep > 1) and not model.is_moe:
        name = "dp" if g.dp > 1 else "ep"
        raise SearchsimError(Problem(
            f"{where}.{name}", getattr(g, name), f"1 for a dense model ({model.key}): "
            "attention data parallelism and expert parallelism serve a mixture of experts; "
            "a dense model scales out with replicas"))
    chips = g.tp * g.dp
    if g.ep > 1 and (chips % g.ep or (model.experts or 0) % g.ep):
        raise SearchsimError(Problem(
            f"{where}.ep", g.ep, f"a divisor of the replica's {chips} chips (tp x dp) and of "
            f"{model.key}'s {model.experts} experts"))
    domain = catalog.accelerator(g.hardware).interconnect.domain
    if g.ep > 1 and chips > domain:
        raise SearchsimError(Problem(
            f"{where}.dp", g.dp, f"a replica within one scale-up domain ({domain} x "
            f"{g.hardware}; tp x dp = {chips}): expert parallelism across nodes is not "
            "modelled"))


def parse_value(raw: str):
    """A value as TOML reads it (numbers, strings, lists, tables); bare words stay strings."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def value_text(value) -> str:
    """A value as TOML text, so that `parse_value` reads it back unchanged."""
    return tomli_w.dumps({"v": value}).removeprefix("v = ").strip()


def parse_override(text: str) -> tuple[list[str], object]:
    """`section.key=value`; the value is read as TOML (numbers, strings, lists, tables)."""
    if "=" not in text or not text.split("=", 1)[0].strip():
        raise SearchsimError(Problem("--set", text, "section.key=value"))
    path, raw = (p.strip() for p in text.split("=", 1))
    return path.split("."), parse_value(raw)


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
    _check_size(s)
    _check_prefix(s)
    return _resolve_trace(s)


def _check_prefix(s: Scenario) -> None:
    """Prefix caching runs on continuous batching; affinity routing needs a prefix cache; a
    corpus holds at least K distinct passages."""
    if s.llm.prefix_cache is not None and s.llm.batching != "continuous":
        raise SearchsimError(Problem("llm.prefix_cache", "a table",
                                     f"continuous batching (the engine '{s.llm.engine}' "
                                     f"batches {s.llm.batching})"))
    if s.llm.disaggregated is not None and s.llm.batching != "continuous":
        raise SearchsimError(Problem("llm.disaggregated", "a table",
                                     f"continuous batching (the engine '{s.llm.engine}' "
                                     f"batches {s.llm.batching})"))
    if s.llm.router == "prefix_affinity" and s.llm.prefix_cache is None:
        raise SearchsimError(Problem("llm.router", "prefix_affinity",
                                     "an [llm.prefix_cache] table to route by"))
    if s.cache.semantic is not None and s.cache.policy != "lru":
        raise SearchsimError(Problem("cache.semantic", "a table", "cache.policy = 'lru' (it "
                                     f"serves the LRU cache's entries; the policy is "
                                     f"'{s.cache.policy}')"))
    corpus = s.retrieval.corpus_passages
    if corpus is not None and s.architecture.kind == "two_stage" and corpus < s.architecture.k:
        raise SearchsimError(Problem("retrieval.corpus_passages", corpus,
                                     f"at least architecture.k = {s.architecture.k} "
                                     "passages (a query's passages are distinct)"))


def _check_size(s: Scenario) -> None:
    """Refuse synthetic loads whose expected LLM requests exceed `run.max_llm_requests`."""
    if s.workload.arrival == "trace":
        return  # a trace's size is its own
    peak = max(s.workload.profile) if s.workload.arrival == "diurnal" and s.workload.profile \
        else 1.0
    fanout = s.architecture.k if s.architecture.kind == "two_stage" else \
        s.architecture.samples
    expected = s.workload.rate_qps * peak * s.run.duration_s * fanout
    if s.run.sample_shards is not None:  # only the sampled shards' share is simulated
        expected *= min(1.0, s.run.sample_shards / s.run.shards)
    if expected > s.run.max_llm_requests:
        raise SearchsimError(Problem(
            "workload.rate_qps", s.workload.rate_qps,
            f"a load of at most {s.run.max_llm_requests:.3g} LLM requests over the run "
            f"(this one would submit ~{expected:.3g}; raise run.max_llm_requests if meant)"))


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


def load(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    text = read_toml(path)
    if not text:
        raise SearchsimError(Problem("scenario", str(path), "a scenario with at least one "
                                     "section (the file is empty; every key has a default, "
                                     "but an empty file is more likely a mistake)"))
    raw = apply_overrides(text, list(overrides))
    raw.setdefault("name", Path(path).stem)
    _anchor_trace_path(raw, Path(path).parent)
    return from_dict(raw)


def dumps(s: Scenario) -> str:
    """The scenario as resolved, as TOML text that `from_dict(tomllib.loads(...))` reads back
    to an equal scenario."""
    return tomli_w.dumps(to_dict(s))


def to_dict(s: Scenario) -> dict:
    """The scenario as resolved: every default filled in, None values dropped (TOML has none)."""
    return s.model_dump(mode="json", exclude_none=True)
