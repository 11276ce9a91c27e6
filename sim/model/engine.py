"""Serving engines: everything an engine decides, as data (`sim/data/engines/*.toml`).

An engine bundles three things a fleet size depends on:
- its *scheduler*: static batches or continuous batching; for continuous, prompt chunks mixed
  into decode iterations (`mixed`: vLLM V1, SGLang, TensorRT-LLM in-flight batching) or
  prompt-only iterations that pause every decode (`prompt_first`: vLLM V0); the most
  sequences running and prompt tokens per iteration; preemption by recomputation or swapping;
- its *KV-cache management*: memory counted in blocks of `block_size` tokens, the share of
  the GPU it may use (`gpu_memory_utilization`, less the weights and `reserve_gb` per GPU for
  activations and CUDA graphs), or `kv_memory_fraction` of the memory the weights leave;
- its *step-time profile*: the name of a fitted roofline profile (`sim/data/profiles`), with
  the engine's own software terms (per-layer, per-iteration and per-sequence costs) on top.

Each engine file holds only the keys that engine has; a scenario overrides them key by key
(`[llm.engine_options]`), and a key the engine does not have is refused.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

from sim.errors import Problem, SearchsimError, unknown_key
from sim.model.profile import Profile
from sim.model.profile import load as load_profile

DEFAULT = "vllm-v1"

# key -> (section in the engine file, type, what a valid value is)
KEYS: dict[str, tuple[str, type, str]] = {
    "batching": ("scheduler", str, "'continuous' or 'static'"),
    "policy": ("scheduler", str, "'mixed' or 'prompt_first'"),
    "max_num_seqs": ("scheduler", int, "an integer >= 1"),
    "max_num_batched_tokens": ("scheduler", int, "an integer >= 1"),
    "max_wait_s": ("scheduler", float, "a number >= 0"),
    "preemption": ("scheduler", str, "'recompute' or 'swap'"),
    "swap_space_gb": ("scheduler", float, "a number >= 0"),
    "swap_gb_s": ("scheduler", float, "a number > 0"),
    "watermark": ("scheduler", float, "a number in [0, 1)"),
    "block_size": ("kv", int, "an integer >= 1"),
    "gpu_memory_utilization": ("kv", float, "a number in (0, 1]"),
    "reserve_gb": ("kv", float, "a number >= 0"),
    "kv_memory_fraction": ("kv", float, "a number in (0, 1]"),
    "prefix_caching": ("kv", bool, "true or false"),
    "profile": ("step", str, "a shipped profile name or a profile TOML file"),
    "layer_overhead_us": ("step", float, "a number >= 0"),
    "iteration_overhead_ms": ("step", float, "a number >= 0"),
    "seq_overhead_us": ("step", float, "a number >= 0"),
}

# what a value of the right type must also be (keys absent: any value of the type)
_VALID = {
    "batching": lambda v: v in ("continuous", "static"),
    "policy": lambda v: v in ("mixed", "prompt_first"),
    "preemption": lambda v: v in ("recompute", "swap"),
    **dict.fromkeys(("max_num_seqs", "max_num_batched_tokens", "block_size"),
                    lambda v: v >= 1),
    **dict.fromkeys(("max_wait_s", "swap_space_gb", "reserve_gb", "layer_overhead_us",
                     "iteration_overhead_ms", "seq_overhead_us"), lambda v: v >= 0),
    **dict.fromkeys(("gpu_memory_utilization", "kv_memory_fraction"), lambda v: 0 < v <= 1),
    "swap_gb_s": lambda v: v > 0,
    "watermark": lambda v: 0 <= v < 1,
}


@dataclass(frozen=True)
class Engine:
    """An engine's settings, each key the engine has (absent keys are None)."""

    name: str
    description: str = ""
    date: str = ""
    sources: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default=None):
        value = self.settings.get(key)
        return default if value is None else value

    @property
    def batching(self) -> str:
        return self.settings["batching"]

    @property
    def policy(self) -> str:
        return self.get("policy", "mixed")

    @property
    def block_size(self) -> int:
        return int(self.get("block_size", 1))

    def with_options(self, options: dict[str, Any], where: str = "llm.engine_options"
                     ) -> Engine:
        """This engine with some keys overridden; a key it does not have is refused."""
        merged = dict(self.settings)
        for key, value in options.items():
            if key not in self.settings:
                raise unknown_key(f"{where}.{key}", key, sorted(self.settings),
                                  what=f"a key engine '{self.name}' has")
            merged[key] = _checked(f"{where}.{key}", key, value)
        return replace(self, settings=merged)

    def step_profile(self, name: str | None = None) -> Profile:
        """The step-time profile this engine runs (or `name`, a shipped profile or a file)
        with the engine's own software terms laid over it."""
        return load_profile(name or self.get("profile")).with_terms(self.software_terms())

    def software_terms(self) -> dict[str, float]:
        """The engine's own step-time terms laid over its profile's."""
        return {k: float(self.settings[k]) for k in
                ("layer_overhead_us", "iteration_overhead_ms", "seq_overhead_us")
                if self.settings.get(k) is not None}


def _checked(where: str, key: str, value):
    """`value` as the key's type, within its range, or a one-line error."""
    _, kind, expected = KEYS[key]
    ok = isinstance(value, kind) or (kind is float and isinstance(value, int)
                                     and not isinstance(value, bool))
    if kind is int and isinstance(value, bool):
        ok = False
    if ok and kind is float:
        value = float(value)
        ok = math.isfinite(value)
    if ok and key in _VALID:
        ok = _VALID[key](value)
    if not ok:
        raise SearchsimError(Problem(where, value, expected))
    return value


def _folder():
    return resources.files("sim").joinpath("data", "engines")


def shipped() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in _folder().iterdir()
                  if p.name.endswith(".toml"))


def from_dict(name: str, raw: dict) -> Engine:
    settings: dict[str, Any] = {}
    for section in ("scheduler", "kv", "step"):
        for key, value in raw.get(section, {}).items():
            if key not in KEYS or KEYS[key][0] != section:
                raise SearchsimError(Problem(f"engine {name}.{section}.{key}", value,
                                             "a known engine key"))
            settings[key] = _checked(f"engine {name}.{section}.{key}", key, value)
    if "batching" not in settings or "profile" not in settings:
        raise SearchsimError(Problem(f"engine {name}", None,
                                     "scheduler.batching and step.profile"))
    return Engine(raw.get("name", name), raw.get("description", ""), raw.get("date", ""),
                  tuple(raw.get("sources", ())), settings)


@cache
def load(name: str) -> Engine:
    """A shipped engine by name."""
    if name not in shipped():
        raise unknown_key("llm.engine", name, shipped())
    text = _folder().joinpath(f"{name}.toml").read_text("utf-8")
    return from_dict(name, tomllib.loads(text))


def resolve(name: str, options: dict[str, Any] | None = None) -> Engine:
    return load(name).with_options(options or {})
