"""Step-time profiles: the fitted parameters of the roofline step model, as data.

A profile holds what an inference engine adds to the hardware's roofline (per-layer and
per-iteration overheads, the tokens at which GEMMs reach half their efficiency, attention
efficiency) and, per chip family, the achieved compute and memory efficiency and the
all-reduce link (latency per ring step, bandwidth). `searchsim calibrate` writes profiles;
the shipped ones live in `sim/data/profiles/` with the command that produced them. A family a
profile does not cover falls back to the catalog's defaults for that accelerator.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path

from sim.errors import Problem, SearchsimError, unknown_key
from sim.model.catalog import Accelerator

SOFTWARE_KEYS = ("layer_overhead_us", "iteration_overhead_ms", "gemm_half_tokens",
                 "attention_efficiency")
# absent from older profile files: their values when absent
OPTIONAL_KEYS = {"seq_overhead_us": 0.0, "kv_efficiency": 1.0, "moe_half_tokens": 0.0,
                 "moe_half_width": 0.0, "moe_layer_overhead_us": 0.0, "expert_imbalance": 1.0,
                 "a2a_efficiency": 1.0, "a2a_latency_us": 0.0, "a2a_overlap": 0.0,
                 "dispatch_bytes": 2.0, "combine_bytes": 2.0}
FAMILY_KEYS = ("flops_efficiency", "memory_efficiency", "allreduce_latency_us",
               "allreduce_gb_s")


@dataclass(frozen=True)
class FamilyFit:
    flops_efficiency: float
    memory_efficiency: float
    allreduce_latency_us: float
    allreduce_gb_s: float
    # the share of `flops_efficiency` grouped routed-expert GEMMs reach (the MoE kernels of
    # this family at this precision: routing, permutes and quantizing included); None: not
    # fitted (the step model then takes 1, and a scenario must opt in to it)
    moe_efficiency: float | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    layer_overhead_us: float = 0.0
    iteration_overhead_ms: float = 0.0
    gemm_half_tokens: float = 0.0
    attention_efficiency: float = 0.69
    # serial host time per running sequence per iteration (scheduling, sampling, output
    # processing an engine does not overlap with the GPU); optional in profile files
    seq_overhead_us: float = 0.0
    # share of the memory efficiency that reading and writing the KV cache reaches (paged
    # attention gathers blocks; weights stream): 1 prices KV bytes like weight bytes
    kv_efficiency: float = 1.0
    # mixture of experts (docs/modelling.md section 16): the tokens per expert, and the
    # expert FFN width per GPU, at which a grouped expert GEMM reaches half its efficiency
    # (each family's `moe_efficiency`): small experts multiply small matrices
    moe_half_tokens: float = 0.0
    moe_half_width: float = 0.0
    # fixed time per MoE layer per iteration beside `layer_overhead_us`: the routing, permute
    # and finalize kernels a dense layer does not run
    moe_layer_overhead_us: float = 0.0
    # expert parallelism: the busiest GPU's routed tokens over the mean (EPLB or not), the
    # all-to-all's share of the scale-up link, its latency per dispatch or combine, the
    # share of it hidden under computation, and bytes an element dispatched and combined
    expert_imbalance: float = 1.0
    a2a_efficiency: float = 1.0
    a2a_latency_us: float = 0.0
    a2a_overlap: float = 0.0
    dispatch_bytes: float = 2.0
    combine_bytes: float = 2.0
    families: dict[str, FamilyFit] = field(default_factory=dict)
    description: str = ""
    provenance: dict = field(default_factory=dict)

    def family(self, hw: Accelerator, precision: str = "bf16") -> FamilyFit:
        """This profile's fit for the accelerator's family at the GEMMs' precision (a fit
        keyed "family:fp8" where the profile has one: low-precision GEMMs reach another
        share of their peak), else its fit for the family, or the catalog's defaults."""
        keyed = f"{hw.family}:{precision}"
        if precision != "bf16" and keyed in self.families:
            return self.families[keyed]
        if hw.family in self.families:
            return self.families[hw.family]
        link = hw.interconnect
        return FamilyFit(hw.flops_efficiency, hw.memory_efficiency, link.latency_us, link.gb_s)

    def with_terms(self, terms: dict[str, float]) -> Profile:
        """This profile with some software terms replaced (an engine's own)."""
        return replace(self, **terms) if terms else self  # type: ignore[arg-type]

    def covers(self, hw: Accelerator) -> bool:
        """Whether this profile has a fit for the accelerator's family (at some precision)."""
        return any(k.split(":")[0] == hw.family for k in self.families)


# The uncalibrated roofline: catalog efficiencies and links, no software overheads.
BARE = Profile("bare", description="catalog efficiencies and links, no fitted overheads")


def from_dict(name: str, raw: dict) -> Profile:
    sw = raw.get("software", {})
    fams = raw.get("families", {})
    try:
        families = {k: FamilyFit(**{key: float(v[key]) for key in FAMILY_KEYS},
                                 moe_efficiency=_optional(v.get("moe_efficiency")))
                    for k, v in fams.items()}
        software = {key: float(sw[key]) for key in SOFTWARE_KEYS}
        software.update({key: float(sw.get(key, absent)) for key, absent in
                         OPTIONAL_KEYS.items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise SearchsimError(Problem(f"profile {name}", str(exc),
                                     "software and families tables with every parameter")
                             ) from None
    return Profile(name, **software, families=families, description=raw.get("description", ""),
                   provenance=raw.get("provenance", {}))


def to_dict(p: Profile) -> dict:
    return {"name": p.name, "description": p.description, "provenance": p.provenance,
            "software": {k: getattr(p, k) for k in (*SOFTWARE_KEYS, *OPTIONAL_KEYS)},
            "families": {f: _family_dict(fit) for f, fit in sorted(p.families.items())}}


def _family_dict(fit: FamilyFit) -> dict:
    out = {k: getattr(fit, k) for k in FAMILY_KEYS}
    if fit.moe_efficiency is not None:
        out["moe_efficiency"] = fit.moe_efficiency
    return out


def _optional(value) -> float | None:
    return None if value is None else float(value)


def shipped() -> list[str]:
    folder = resources.files("sim").joinpath("data", "profiles")
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir()
                  if p.name.endswith(".toml"))


@cache
def load(name_or_path: str) -> Profile:
    """A shipped profile by name, or a profile TOML file by path."""
    if name_or_path == BARE.name:
        return BARE
    path = Path(name_or_path)
    if name_or_path.endswith(".toml"):
        if not path.is_file():
            raise SearchsimError(Problem("llm.profile", name_or_path, "an existing TOML file"))
        text = path.read_text(encoding="utf-8")
    elif name_or_path in shipped():
        text = resources.files("sim").joinpath("data", "profiles",
                                               f"{name_or_path}.toml").read_text("utf-8")
    else:
        raise unknown_key("llm.profile", name_or_path, [*shipped(), BARE.name])
    return from_dict(path.stem, tomllib.loads(text))
