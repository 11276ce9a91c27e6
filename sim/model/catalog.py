"""Hardware and model catalogs: dated, sourced data loaded from `sim/data/*.toml`.

Nothing here is a constant of a scenario: specs and prices live in the TOML files with their
date and source, and this module only loads, validates and converts units.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.errors import Problem, SearchsimError, unknown_key


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Price(_Frozen):
    key: str
    provider: str
    kind: str = Field(pattern="^(on-demand|1-year|3-year|in-house|spot)$")
    usd_per_hour: float = Field(gt=0)
    chips: int = Field(gt=0)
    date: str
    source: str

    @property
    def usd_per_chip_hour(self) -> float:
        return self.usd_per_hour / self.chips


class Interconnect(_Frozen):
    """The tensor-parallel link of one chip: per-direction bandwidth, one ring step's latency."""

    kind: str
    gb_s: float = Field(gt=0)
    domain: int = Field(ge=1)  # chips joined at `gb_s` (scale-up domain)
    latency_us: float = Field(ge=0)
    source: str


class Power(_Frozen):
    """Watts per chip by state: idle, prompt-phase (prefill) and token-phase (decode-only)
    iterations."""

    idle_w: float = Field(ge=0)
    prefill_w: float = Field(gt=0)
    decode_w: float = Field(gt=0)
    date: str
    source: str


class Ownership(_Frozen):
    """Defaults for owning a fleet (`sim/data/ownership.toml`)."""

    years: float = Field(gt=0)
    pue: float = Field(ge=1)
    usd_per_kwh: float = Field(ge=0)
    chips_per_server: int = Field(gt=0)
    date: str
    years_source: str
    pue_source: str
    usd_per_kwh_source: str
    chips_per_server_source: str


class Accelerator(_Frozen):
    key: str
    name: str
    peak_tflops: float = Field(gt=0)
    # dense peaks at lower precision where published (not yet used by the step model)
    peak_tflops_fp8: float | None = Field(default=None, gt=0)
    peak_tflops_fp4: float | None = Field(default=None, gt=0)
    hbm_tb_s: float = Field(gt=0)
    hbm_gb: float = Field(gt=0)
    board_power_w: float = Field(gt=0)
    purchase_usd: float | None = Field(default=None, gt=0)
    source: str
    family: str
    flops_efficiency: float = Field(gt=0, le=1)
    memory_efficiency: float = Field(gt=0, le=1)
    interconnect: Interconnect
    power: Power
    prices: tuple[Price, ...] = ()
    aliases: tuple[str, ...] = ()  # names measurements use for it (device names, short names)

    @property
    def peak_flops(self) -> float:
        return self.peak_tflops * 1e12

    @property
    def hbm_bytes_per_s(self) -> float:
        return self.hbm_tb_s * 1e12

    @property
    def hbm_bytes(self) -> float:
        return self.hbm_gb * 1e9

    def price(self, key: str) -> Price:
        for p in self.prices:
            if p.key == key:
                return p
        raise unknown_key(f"price[{self.key}]", key, [p.key for p in self.prices])


class Model(_Frozen):
    key: str
    name: str
    params_b: float = Field(gt=0)
    layers: int = Field(gt=0)
    d_model: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    training_tokens_b: float | None = Field(default=None, gt=0)
    # mixture of experts: routed experts, active per token, shared experts every token
    # uses, parameters one token uses, leading dense layers
    experts: int | None = Field(default=None, gt=1)
    experts_per_token: int | None = Field(default=None, gt=0)
    shared_experts: int = Field(default=0, ge=0)
    active_params_b: float | None = Field(default=None, gt=0)
    dense_layers: int = Field(default=0, ge=0)  # layers without routed experts
    # routed experts shipped quantized (gpt-oss: "mxfp4"): engines run them so whatever the
    # precision of the rest (docs/modelling.md section 16)
    expert_precision: str | None = None
    # multi-head latent attention (DeepSeek): the cache holds this many elements per layer
    # per token (the compressed latent and the rotary key), not keys and values per head
    kv_latent_dim: int | None = Field(default=None, gt=0)
    # sliding-window attention on alternate layers (gpt-oss): those layers keep this many
    # tokens of KV
    sliding_window: int | None = Field(default=None, gt=0)
    aliases: tuple[str, ...] = ()  # names measurements use for it (Hugging Face ids)
    source: str

    @property
    def params(self) -> float:
        return self.params_b * 1e9

    @property
    def is_moe(self) -> bool:
        return self.experts is not None

    @property
    def training_tokens(self) -> float | None:
        return None if self.training_tokens_b is None else self.training_tokens_b * 1e9

    def kv_bytes_per_token(self, bytes_per_element: float = 2.0) -> float:
        """Key and value vectors of every layer for one token (docs/modelling.md section 7);
        with latent attention, the latent each layer caches instead."""
        if self.kv_latent_dim is not None:
            return self.layers * self.kv_latent_dim * bytes_per_element
        return 2 * self.full_attention_layers * self.kv_heads * self.head_dim * \
            bytes_per_element

    @property
    def full_attention_layers(self) -> int:
        """Layers whose KV grows with the context: with sliding-window attention on
        alternate layers (gpt-oss), half of them; the windowed layers hold `sliding_window`
        tokens a sequence, which at the contexts served (thousands of tokens) is neglected."""
        return self.layers // 2 if self.sliding_window else self.layers

    @property
    def compute_params(self) -> float:
        """Parameters one token computes with: the active ones of a mixture of experts."""
        return self.active_params_b * 1e9 if self.active_params_b else self.params

    @property
    def expert_params(self) -> float:
        """One routed expert's parameters over every MoE layer: total and active parameters
        differ by E - k of them."""
        if self.experts is None or self.experts_per_token is None or not self.active_params_b:
            return 0.0
        return (self.params - self.compute_params) / (self.experts - self.experts_per_token)

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers

    @property
    def expert_width(self) -> float:
        """A routed expert's FFN width: its parameters over its three d_model-wide matrices
        (gate, up, down) in each MoE layer (DeepSeek-V3: 2,048; Qwen3-30B-A3B: 768)."""
        return self.expert_params / (3 * self.d_model * max(1, self.moe_layers))

    def resident_params(self) -> float:
        """Parameters every iteration reads whatever its tokens: all of a dense model; the
        attention, dense layers and shared experts of a mixture of experts."""
        return self.params - (self.experts or 0) * self.expert_params

    def experts_touched(self, tokens):
        """Routed experts a layer reads for `tokens` tokens (a number or a numpy array),
        each routed to k of E experts (uniformly): E (1 - (1 - k/E)^tokens). At 64 tokens,
        126 of 128 experts for top-8: a decode batch reads nearly every expert, not the
        active share."""
        if self.experts is None or self.experts_per_token is None:
            raise ValueError(f"{self.key} is not a mixture-of-experts model")
        e, k = self.experts, self.experts_per_token
        return e * (1.0 - (1.0 - k / e) ** tokens)

    def weight_bytes(self, bytes_per_param: float = 2.0,
                     expert_bytes: float | None = None) -> float:
        """Bytes of every weight at `bytes_per_param`, the routed experts' at `expert_bytes`
        when they differ."""
        routed = (self.experts or 0) * self.expert_params
        return (self.params - routed) * bytes_per_param + routed * (
            bytes_per_param if expert_bytes is None else expert_bytes)


def _read(name: str) -> dict:
    text = resources.files("sim").joinpath("data", name).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _build(kind, table: dict, section: str) -> dict:
    out = {}
    for key, body in table.get(section, {}).items():
        try:
            out[key] = kind(key=key, **body)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join([section, key, *map(str, err["loc"])])
            raise SearchsimError(Problem(field, err.get("input"), err["msg"])) from None
    return out


@cache
def accelerators() -> dict[str, Accelerator]:
    return _build(Accelerator, _read("accelerators.toml"), "accelerators")


@cache
def models() -> dict[str, Model]:
    return _build(Model, _read("models.toml"), "models")


@cache
def ownership() -> Ownership:
    try:
        return Ownership(**_read("ownership.toml"))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SearchsimError(Problem(f"ownership.{'.'.join(map(str, err['loc']))}",
                                     err.get("input"), err["msg"])) from None


def accelerator(key: str) -> Accelerator:
    table = accelerators()
    if key not in table:
        raise unknown_key("hardware", key, list(table))
    return table[key]


def model(key: str) -> Model:
    table = models()
    if key not in table:
        raise unknown_key("model", key, list(table))
    return table[key]


def find(table: dict, name: str):
    """The entry of a catalog table whose key or an alias is `name` (any case), or None."""
    want = name.strip().lower()
    for key, entry in table.items():
        if key == want or want in (a.lower() for a in entry.aliases):
            return entry
    return None

