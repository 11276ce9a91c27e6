"""Scenario schema: every section, key and default of a scenario.

The sections and their defaults, as frozen pydantic models: types and ranges are checked here;
catalog keys, fit in memory and trace files are checked when a scenario is loaded
(`sim.scenario.loading`).
"""

from __future__ import annotations

from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.errors import Problem, SearchsimError
from sim.model import catalog, pricing
from sim.model import distributions as d
from sim.model import engine as engine_data
from sim.model import precision as precisions
from sim.model.defaults import ARTICLE_MFU
from sim.model.economics import OwnedCost
from sim.units import TOKENS_PER_WORD


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
        # `_needs` has checked that the fields this kind uses are present
        k = TOKENS_PER_WORD if self.unit == "words" else 1.0
        if self.dist == "fixed":
            return d.Fixed(cast(float, self.value) * k)
        if self.dist == "exponential":
            return d.Exponential(cast(float, self.mean) * k)
        if self.dist == "empirical":
            values = cast(tuple[float, ...], self.values)
            return d.Empirical(tuple(v * k for v in values), self.weights)
        return d.KINDS[self.dist](cast(float, self.mean) * k, self.cv)


class Run(_Section):
    duration_s: float = Field(3600.0, gt=0)
    warmup_s: float = Field(300.0, ge=0)
    drain_s: float = Field(600.0, ge=0)  # after arrivals stop, how long in-flight work may finish
    seed: int = Field(1, ge=0)
    interval_s: float = Field(60.0, gt=0)  # time-series bin width
    shards: int = Field(1, ge=1)  # split traffic by query hash into independent shards
    jobs: int = Field(1, ge=1)  # processes running shards at once (results do not depend on it)
    # simulate only this many of the shards (chosen by the seed) and estimate the fleet from
    # them, with intervals (docs: sampled shards); None: every shard
    sample_shards: int | None = Field(None, ge=1)
    sample_seed: int | None = Field(None, ge=0)  # which shards are sampled (default: seed)
    # where shards run: a local process pool, or Ray (the `ray` extra; a local instance, or
    # the cluster at `ray_address`); results are the same either way
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    # stability verdict: unstable when more than this share of the window's queries is
    # unfinished after the drain ...
    unstable_unfinished_share: float = Field(0.01, ge=0, le=1)
    # ... or when the LLM queue's mean over the window's last quarter exceeds this many times
    # its first quarter's (plus one full batch per replica): a queue growing without bound
    unstable_queue_growth: float = Field(3.0, gt=1)
    # refuse a scenario expected to submit more LLM requests than this (a typo such as
    # rate_qps = 1e9 would otherwise run for days); raise it for a deliberately huge run
    max_llm_requests: float = Field(2e8, gt=0)

    @model_validator(mode="after")
    def _warmup_before_end(self):
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"@warmup_s: a warm-up shorter than duration_s ({self.duration_s})")
        if self.sample_shards is not None and self.sample_shards > self.shards:
            raise ValueError(f"@sample_shards: at most run.shards ({self.shards})")
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
    # what the file holds, "llm" requests or "query" arrivals: read from its format when the
    # scenario loads, so nothing downstream opens the file to decide
    kind: Literal["auto", "llm", "query"] = "auto"

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
    start_hour: float = Field(0.0, ge=0, lt=24)  # the profile's hour at which the run starts
    distinct_queries: int = Field(1_000_000, ge=1)
    zipf_alpha: float = Field(0.9, ge=0)
    one_off_share: float = Field(0.0, ge=0, le=1)
    query_tokens: Dist = Dist(dist="fixed", value=50, unit="words")
    response_tokens: Dist = Dist(dist="fixed", value=400, unit="words")
    # a fixed instruction (system prompt) before every generated request's prompt, laid
    # out [instruction][passage][query]: shared by all, so cacheable with llm.prefix_cache
    instruction_tokens: int = Field(0, ge=0)

    @property
    def replayed(self) -> Trace | None:
        """The trace this workload replays, or None for a synthetic arrival process."""
        return self.trace if self.arrival == "trace" else None

    @model_validator(mode="after")
    def _trace(self):
        if self.arrival == "trace" and self.trace is None:
            raise ValueError("@trace: a [workload.trace] table with `path` (arrival = trace)")
        if self.arrival != "trace" and self.trace is not None:
            raise ValueError(f"@arrival: \"trace\" (a [workload.trace] table is given; it is "
                             f"replayed only with arrival = \"trace\", not \"{self.arrival}\")")
        return self

    @model_validator(mode="after")
    def _profile(self):
        p = self.profile
        bad = p is None or len(p) != 24 or min(p) < 0 or max(p) <= 0
        if self.arrival == "diurnal" and bad:
            raise ValueError("@profile: 24 non-negative hourly rate multipliers, not all "
                             "zero (diurnal arrivals)")
        return self


class SemanticCaching(_Section):
    """A semantic cache in front of the LRU result cache (sim/serving/semantic.py)."""

    threshold: float = Field(0.9, gt=0, le=1)  # similarity to serve at; 1: off
    # queries per cluster of near-duplicates (consecutive query ranks)
    cluster_size: Dist = Dist(dist="fixed", value=4)
    paraphrase_share: float = Field(0.6, ge=0, le=1)  # same-cluster pairs of the same intent
    # embedding distance (1 - cosine similarity) of a paraphrase and of a related query
    paraphrase_distance: Dist = Dist(dist="exponential", mean=0.04)
    other_distance: Dist = Dist(dist="exponential", mean=0.2)
    lookup_s: float = Field(0.005, ge=0)  # embedding + vector search, on every exact miss
    usd_per_lookup: float = Field(0.0, ge=0)  # its cost (embedding model and index)


class Cache(_Section):
    policy: Literal["none", "lru", "bernoulli"] = "none"
    capacity: int = Field(100_000, ge=0)
    ttl_s: float | None = Field(None, gt=0)
    hit_rate: float = Field(0.0, ge=0, le=1)  # `bernoulli` only
    hit_latency_s: float = Field(0.01, ge=0)
    # index updates (`lru` only): at these times and/or every `flush_every_s` seconds, each
    # entry is invalidated with probability `flush_fraction` (1: the cache is emptied)
    flush_at_s: tuple[float, ...] = ()
    flush_every_s: float | None = Field(None, gt=0)
    flush_fraction: float = Field(1.0, gt=0, le=1)
    semantic: SemanticCaching | None = None  # none unless the table is given (lru only)

    @property
    def semantic_on(self) -> bool:
        """A semantic cache that can serve anything (a threshold of 1 admits nothing)."""
        return self.semantic is not None and self.semantic.threshold < 1.0

    @model_validator(mode="after")
    def _flush_times(self):
        if any(not t >= 0 for t in self.flush_at_s):
            raise ValueError("@flush_at_s: times of at least 0 s")
        return self


class Retrieval(_Section):
    servers: int = Field(8, ge=1)
    service_s: Dist = Dist(dist="exponential", mean=0.05, unit="seconds")
    passage_tokens: Dist = Dist(dist="fixed", value=1000, unit="words")
    usd_per_server_hour: float = Field(0.0, ge=0)
    # a call not done this long after it started (queueing included) is abandoned and
    # retried up to `retries` times; a query whose calls all fail is answered with plain
    # results (`on_failure = "degrade"`: no summaries) or not at all ("fail")
    timeout_s: float | None = Field(None, gt=0)
    retries: int = Field(0, ge=0)
    on_failure: Literal["degrade", "fail"] = "degrade"
    # passages as objects: the K passages of a query are a fixed function of its key, drawn
    # from Zipf(passage_zipf_alpha) over this many passages, each of a fixed length (from
    # passage_tokens); None: every request's passage is a fresh draw of passage_tokens
    corpus_passages: int | None = Field(None, ge=1, le=50_000_000)
    passage_zipf_alpha: float = Field(0.9, ge=0)


# what an older key is when neither it nor the engine says
_LEGACY_DEFAULTS = {"max_wait_s": 0.0, "max_batch": 8}


class Group(_Section):
    """A group of identical replicas: `replicas` of the model, each on `dp` data-parallel
    attention ranks of `tp` accelerators, its routed experts (a mixture of experts) split
    over `ep` expert-parallel groups (DEP 8: tp 1, dp 8, ep 8)."""

    hardware: str
    tp: int = Field(ge=1)
    replicas: int = Field(ge=1)
    dp: int = Field(1, ge=1)
    ep: int = Field(1, ge=1)

    @property
    def chips_per_replica(self) -> int:
        return self.tp * self.dp

    @property
    def chips(self) -> int:
        return self.chips_per_replica * self.replicas


class Disaggregated(_Section):
    """Prefill and decode on separate pools (DistServe, Splitwise, Mooncake): a request is
    prefilled on the prefill pool, its KV cache (and first token) moves over a link of
    `kv_link_gbps` to a decode replica, which admits it when its memory allows and decodes
    the rest. `layerwise`: the transfer runs layer by layer under the prefill, so only what
    the prefill iteration did not cover (at least one layer's share) waits after it."""

    prefill: Group
    decode: Group
    kv_link_gbps: float = Field(400.0, gt=0)  # per replica pair, gigabits per second
    kv_latency_s: float = Field(0.0005, ge=0)  # per transfer: setup and the first bytes
    layerwise: bool = True


class PrefixCaching(_Section):
    """Each replica keeps the KV blocks of prompt prefixes it computed (the instruction,
    passages) in `memory_fraction` of its KV budget, LRU by block; a request whose prompt
    starts with cached blocks skips their prefill (continuous batching only)."""

    memory_fraction: float = Field(0.2, gt=0, lt=1)
    block_tokens: int | None = Field(None, ge=1)  # None: the engine's KV block size
    # prefix_affinity router: the replica holding the longest prefix unless its load is
    # more than this many requests above the least loaded replica's
    affinity_slack: int = Field(4, ge=0)
    # a host-memory tier per replica (0: none): blocks evicted from HBM wait there, read back
    # over the host link at host_gb_s per chip (PCIe; the copy delays the next iteration)
    host_tokens: int = Field(0, ge=0)
    host_gb_s: float = Field(25.0, gt=0)


class LLM(_Section):
    model: str = "gpt3_175b"
    hardware: str = "a100_40gb"
    tp: int = Field(16, ge=1)  # accelerators per rank (tensor/model-parallel degree)
    replicas: int = Field(1, ge=1)
    # a mixture of experts served wide: `dp` attention data-parallel ranks of `tp` chips in
    # one replica (each rank its own sequences and KV cache), the routed experts split over
    # `ep` expert-parallel groups (DEP 8: tp 1, dp 8, ep 8; docs/modelling.md section 16)
    dp: int = Field(1, ge=1)
    ep: int = Field(1, ge=1)
    router: Literal["round_robin", "least_outstanding", "prefix_affinity"] = \
        "least_outstanding"
    # the serving engine (`searchsim engines`): scheduler, KV-cache management and step-time
    # profile, as data in sim/data/engines; `engine_options` overrides its keys one by one
    engine: str = engine_data.DEFAULT
    engine_options: dict[str, bool | int | float | str] = {}
    # The keys below are the engine's under their older names: unset, they take the
    # engine's value (filled in when the scenario is validated); set, they override it.
    batching: Literal["static", "continuous"] | None = None
    max_batch: int | None = Field(None, ge=1)  # the engine's max_num_seqs
    max_wait_s: float | None = Field(None, ge=0)  # static: wait this long for a batch to fill
    # continuous, mixed policy: prefill token budget per iteration (the engine's
    # max_num_batched_tokens); None with an engine that has no budget: whole prompts
    chunk_tokens: int | None = Field(None, ge=1)
    # share of the HBM the weights leave given to the KV cache; None: the engine's rule
    # (gpu_memory_utilization of the HBM, less weights and its activation reserve)
    kv_memory_fraction: float | None = Field(None, gt=0, le=1)
    step_model: Literal["article", "roofline"] = "article"
    # roofline: a shipped step-time profile (`searchsim validate` lists them) or a TOML file
    # written by `searchsim calibrate`; None: the engine's
    profile: str | None = None
    mfu: float = Field(ARTICLE_MFU, gt=0, le=1)  # article step model: fixed share of peak
    # numeric precision of the weights (and so which tensor-core peak the GEMMs run at) and
    # of the KV cache (None: FP8 with FP8/FP4 weights, else BF16); `bytes_per_param`
    # overrides the precision's bytes per weight
    precision: Literal["bf16", "fp16", "fp8", "fp4", "mxfp4", "int4"] = "bf16"
    kv_precision: Literal["bf16", "fp16", "fp8"] | None = None
    bytes_per_param: float | None = Field(None, gt=0)
    # accept a mixture-of-experts model: its step terms (active-parameter FLOPs, the experts
    # a batch touches) exist but are not validated (docs/engines.md), so it is opt-in
    experimental_moe: bool = False
    # a mixed fleet: further groups of replicas on other hardware or tensor-parallel degrees
    # in the same pool, beside the first (hardware, tp, replicas); the router weighs each
    # replica by its speed
    groups: tuple[Group, ...] = ()
    prefix_cache: PrefixCaching | None = None  # none unless the table is given
    # prefill and decode on separate pools: the fleet is then the prefill pool (hardware,
    # tp, replicas as resolved) and the decode pool (the one group)
    disaggregated: Disaggregated | None = None

    @property
    def prefix_block_tokens(self) -> int:
        """Tokens per cached block: the table's, else the engine's KV block."""
        given = self.prefix_cache.block_tokens if self.prefix_cache is not None else None
        return given or self.engine_spec.block_size

    @model_validator(mode="after")
    def _resolve_engine(self):
        """Fill the engine's keys: the engine's values under `engine_options`, under the
        older keys set here. `engine_options` is left holding every key the engine has, as
        resolved, so the resolved scenario says what the engine does."""
        # an unknown engine or key is a SearchsimError, which pydantic lets through as is
        spec = engine_data.resolve(self.engine, dict(self.engine_options))
        legacy = {"batching": "batching", "max_batch": "max_num_seqs",
                  "max_wait_s": "max_wait_s", "profile": "profile",
                  "kv_memory_fraction": "kv_memory_fraction"}
        chunked = spec.batching == "continuous" and spec.policy == "mixed"
        if "chunk_tokens" not in self.model_fields_set and chunked:
            object.__setattr__(self, "chunk_tokens", spec.get("max_num_batched_tokens"))
        settings = dict(spec.settings)
        for mine, theirs in legacy.items():
            given = getattr(self, mine)
            if given is None:
                object.__setattr__(self, mine, spec.get(theirs, _LEGACY_DEFAULTS.get(mine)))
            elif theirs in settings:
                settings[theirs] = given
        if "max_num_batched_tokens" in settings and self.chunk_tokens:
            settings["max_num_batched_tokens"] = self.chunk_tokens
        object.__setattr__(self, "engine_options", settings)
        return self

    @model_validator(mode="after")
    def _resolve_disaggregated(self):
        """A disaggregated fleet is two groups with roles: the prefill pool first (as the
        primary hardware, tp and replicas), the decode pool as the one further group."""
        d = self.disaggregated
        if d is None:
            return self
        if self.groups and self.groups != (d.decode,):
            raise ValueError("@groups: none beside [llm.disaggregated] (its prefill and "
                             "decode pools are the fleet)")
        object.__setattr__(self, "hardware", d.prefill.hardware)
        object.__setattr__(self, "tp", d.prefill.tp)
        object.__setattr__(self, "replicas", d.prefill.replicas)
        object.__setattr__(self, "dp", d.prefill.dp)
        object.__setattr__(self, "ep", d.prefill.ep)
        object.__setattr__(self, "groups", (d.decode,))
        return self

    @model_validator(mode="after")
    def _resolve_precision(self):
        if self.kv_precision is None:
            object.__setattr__(self, "kv_precision", precisions.default_kv(self.precision))
        if self.bytes_per_param is None:
            object.__setattr__(self, "bytes_per_param",
                               precisions.bytes_per_weight(self.precision))
        return self

    @property
    def weight_bytes(self) -> float:
        """Bytes per parameter, as resolved."""
        return float(self.bytes_per_param or 2.0)

    @property
    def kv_bytes(self) -> float:
        """Bytes per KV-cache element, as resolved."""
        return precisions.kv_bytes_per_element(self.kv_precision or "bf16")

    @property
    def batch_size(self) -> int:
        """`max_batch` as resolved (the validator has filled it)."""
        return int(self.max_batch or 1)

    @property
    def engine_spec(self) -> engine_data.Engine:
        """The engine as resolved (every key, the older keys' values included)."""
        return engine_data.resolve(self.engine, dict(self.engine_options))

    @property
    def fleet(self) -> tuple[Group, ...]:
        """Every replica group, the first being (hardware, tp, replicas)."""
        return (Group(hardware=self.hardware, tp=self.tp, replicas=self.replicas, dp=self.dp,
                      ep=self.ep), *self.groups)

    @property
    def chips(self) -> int:
        return sum(g.chips for g in self.fleet)

    @property
    def chips_per_replica(self) -> int:
        return self.tp * self.dp

    @property
    def replica_count(self) -> int:
        return sum(g.replicas for g in self.fleet)


class Architecture(_Section):
    kind: Literal["chatgpt_equivalent", "two_stage"] = "two_stage"
    samples: int = Field(5, ge=1)  # chatgpt_equivalent: n responses, best kept
    k: int = Field(10, ge=1)  # two_stage: top-K results summarized


class Limits(_Section):
    slo_s: float = Field(10.0, gt=0)  # latency target: complete answers within it meet the SLO
    # answer_quality is "complete" when at least this share of the window's queries got every
    # response (partial and degraded answers are not complete)
    complete_share_target: float = Field(0.99, gt=0, le=1)
    deadline_s: float | None = Field(None, gt=0)
    policy: Literal["none", "partial", "degrade"] = "none"

    @property
    def watches(self) -> bool:
        """Whether a policy acts at the deadline (else a query just waits for everything)."""
        return self.policy != "none" and self.deadline_s is not None


def _owning(field: str, **bounds):
    """A field whose default is the ownership data's."""
    return Field(default_factory=lambda: getattr(catalog.ownership(), field), **bounds)


class Owned(_Section):
    """Owning the fleet: capital amortized straight-line plus the energy the simulation
    measures, at the facility's PUE. Defaults from sim/data/ownership.toml."""

    capex_usd: float | None = Field(None, gt=0)  # per accelerator (default: the catalog's)
    server_usd: float = Field(0.0, ge=0)  # per server: host, network, chassis
    # per server: what its host draws besides the accelerators (CPUs, memory, NICs, fans),
    # constant while it is provisioned; 0: not counted
    server_w: float = Field(0.0, ge=0)
    chips_per_server: int = _owning("chips_per_server", gt=0)
    years: float = _owning("years", gt=0)
    pue: float = _owning("pue", ge=1)  # facility energy per unit of IT energy
    usd_per_kwh: float = _owning("usd_per_kwh", ge=0)

    def cost(self, hardware: str) -> OwnedCost:
        hw = catalog.accelerator(hardware)
        capex = self.capex_usd if self.capex_usd is not None else hw.purchase_usd
        if capex is None:
            raise SearchsimError(Problem("economics.owned.capex_usd", None,
                                         f"a purchase price per chip ({hw.key} has none in "
                                         "the catalog)"))
        return OwnedCost.of(capex, self.server_usd / self.chips_per_server, self.years,
                            self.pue, self.usd_per_kwh)

    def chip_hour_at_full_power(self, hardware: str) -> float:
        """An owned chip-hour drawing its full (prompt-phase) power and its share of its
        host's: the one figure a ranking or a pre-run price of an owned fleet uses."""
        return pricing.owned_chip_hour(self.cost(hardware), hardware,
                                       self.server_w / self.chips_per_server)


class Faults(_Section):
    """Replica failures, each replica on its own: up for a time drawn from
    `time_to_failure_s` (exponential with mean `mtbf_s` unless given), then down for one from
    `time_to_repair_s` (exponential with mean `mttr_s` unless given). On a failure the
    requests running or queued there start over on another replica (`retry`: their prefill
    and output are recomputed) or are lost (`lose`). A zero repair time is no failure.

    Correlated failures: with `domain_replicas`, consecutive replicas in groups of that many
    share a failure domain (a rack, a power feed, a top-of-rack switch) that fails and is
    repaired as a whole on its own clock (`domain_mtbf_s`, `domain_mttr_s` or the
    `domain_time_to_*` distributions), independently of its replicas' own failures; a
    replica is down while either keeps it down."""

    mtbf_s: float = Field(3 * 86400.0, gt=0)  # mean time between failures, per replica
    mttr_s: float = Field(3600.0, ge=0)  # mean time to repair
    time_to_failure_s: Dist | None = None
    time_to_repair_s: Dist | None = None
    domain_replicas: int | None = Field(None, ge=1)  # replicas per failure domain
    domain_mtbf_s: float = Field(30 * 86400.0, gt=0)  # per domain
    domain_mttr_s: float = Field(4 * 3600.0, ge=0)
    domain_time_to_failure_s: Dist | None = None
    domain_time_to_repair_s: Dist | None = None
    # retrieval servers, each on its own (absent: they never fail): a call in service on a
    # server that fails is cut, a failed call (retried within `retrieval.retries`)
    retrieval_mtbf_s: float | None = Field(None, gt=0)
    retrieval_mttr_s: float = Field(600.0, ge=0)
    retrieval_time_to_failure_s: Dist | None = None
    retrieval_time_to_repair_s: Dist | None = None
    policy: Literal["retry", "lose"] = "retry"
    enabled: bool = True

    @property
    def replicas_fail(self) -> bool:
        return self.enabled and (self.time_to_repair_s is not None or self.mttr_s > 0)

    @property
    def domains_fail(self) -> bool:
        return self.enabled and self.domain_replicas is not None and (
            self.domain_time_to_repair_s is not None or self.domain_mttr_s > 0)

    @property
    def active(self) -> bool:
        return self.replicas_fail or self.domains_fail

    @property
    def retrieval_fails(self) -> bool:
        return self.enabled and (self.retrieval_mtbf_s is not None or
                                 self.retrieval_time_to_failure_s is not None) and (
            self.retrieval_time_to_repair_s is not None or self.retrieval_mttr_s > 0)

    def retrieval_up_time(self) -> d.Distribution:
        assert self.retrieval_time_to_failure_s is not None or self.retrieval_mtbf_s
        return _or_exponential(self.retrieval_time_to_failure_s, self.retrieval_mtbf_s or 0.0)

    def retrieval_down_time(self) -> d.Distribution:
        return _or_exponential(self.retrieval_time_to_repair_s, self.retrieval_mttr_s)

    def up_time(self) -> d.Distribution:
        return _or_exponential(self.time_to_failure_s, self.mtbf_s)

    def down_time(self) -> d.Distribution:
        return _or_exponential(self.time_to_repair_s, self.mttr_s)

    def domain_up_time(self) -> d.Distribution:
        return _or_exponential(self.domain_time_to_failure_s, self.domain_mtbf_s)

    def domain_down_time(self) -> d.Distribution:
        return _or_exponential(self.domain_time_to_repair_s, self.domain_mttr_s)


def _or_exponential(given: Dist | None, mean: float) -> d.Distribution:
    return given.build() if given is not None else d.Exponential(mean)


class Economics(_Section):
    # a price kind ("on-demand", "1-year", "3-year", "in-house", "spot": each accelerator's
    # latest price of that kind), a catalog price key of llm.hardware, $ per chip-hour, or
    # "owned": the fleet is owned, priced by `owned` (capital + measured energy)
    price: str | float = "on-demand"
    # YYYY-MM: a price kind picks each accelerator's latest price dated on or before it, so
    # accelerators are compared at one date (default: the latest prices in the catalog)
    price_date: str | None = None
    revenue_per_query: float = Field(0.0476, gt=0)
    owned: Owned = Field(default_factory=Owned)  # also reported beside a rented price

    @property
    def is_owned(self) -> bool:
        return self.price == "owned"


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
    faults: Faults | None = None  # none unless the table is given

    def group_usd_per_chip_hour(self, hardware: str) -> float:
        """A chip-hour of `hardware` before a run: rented (a catalog key of the first group's
        hardware prices the others by its kind), or owned at full (prefill) power."""
        if self.economics.is_owned:
            return self.economics.owned.chip_hour_at_full_power(hardware)
        price = self.economics.price
        if hardware != self.llm.hardware:
            price = pricing.basis_of(self.llm.hardware, price)
        return pricing.chip_hour(hardware, price, self.economics.price_date)

    @property
    def accelerators_usd_per_hour(self) -> float:
        """The LLM fleet's accelerators, per hour, before a run."""
        return sum(g.chips * self.group_usd_per_chip_hour(g.hardware) for g in self.llm.fleet)

    @property
    def usd_per_chip_hour(self) -> float:
        """The chip-hour price before a run (a mixed fleet's chip-weighted mean)."""
        if not self.llm.groups:
            return self.group_usd_per_chip_hour(self.llm.hardware)
        return self.accelerators_usd_per_hour / self.llm.chips
