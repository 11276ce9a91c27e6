"""The `[llm]` section of a scenario: the model, its fleet (replica groups, their tensor,
attention-data and expert parallelism, a disaggregated split), the serving engine and its
older keys, precision, and the prefix cache."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.model import engine as engine_data
from sim.model import precision as precisions
from sim.model.defaults import ARTICLE_MFU
from sim.scenario.section import Section as _Section

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
