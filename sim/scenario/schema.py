"""Scenario schema: every section, key and default of a scenario.

The sections and their defaults, as frozen pydantic models: types and ranges are checked here;
catalog keys, fit in memory and trace files are checked when a scenario is loaded
(`sim.scenario.loading`).
"""

from __future__ import annotations

from typing import Literal, cast

from pydantic import Field, model_validator

from sim.errors import Problem, SearchsimError
from sim.model import catalog, pricing
from sim.model import distributions as d
from sim.model.economics import OwnedCost
from sim.scenario.llm import LLM as LLM  # the [llm] section, part of the schema
from sim.scenario.llm import Disaggregated as Disaggregated
from sim.scenario.llm import Group as Group
from sim.scenario.llm import PrefixCaching as PrefixCaching
from sim.scenario.section import Section as _Section
from sim.units import TOKENS_PER_WORD


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
