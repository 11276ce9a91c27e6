"""Expert parallelism's all-to-all, calibrated on DeepEP's published kernel latencies.

A dispatch (or combine) sends each of a GPU's tokens to its k routed experts: tokens x k x
hidden x bytes an element. Within a scale-up domain (8 GPUs an H800 node) the bytes cross
NVLink; beyond it, the share bound for other nodes crosses the GPU's network card. One
operation takes

    latency + local bytes / (efficiency x link bandwidth) + remote bytes / network bandwidth

with local = copies for GPUs of the domain (itself included: DeepEP's bandwidth counts
them) and remote = the rest. `fit` finds the latency, the link efficiency and the network
bandwidth that best match `deepep_all_to_all.csv` (least squares on the latencies); the
step model uses the latency and the efficiency for all-to-alls within a domain
(docs/modelling.md section 16).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

# H800 SXM: NVLink 400 GB/s per GPU in both directions (200 each way), 8 GPUs a node; the
# DeepEP rows' nodes (NVIDIA H800 product brief; DeepEP docs/legacy.md)
H800_LINK_GB_S = 200.0
DOMAIN = 8


@dataclass(frozen=True)
class Kernel:
    op: str
    ep: int
    tokens: int
    hidden: int
    top_k: int
    bytes_per_element: float
    latency_us: float

    @property
    def bytes(self) -> float:
        return self.tokens * self.top_k * self.hidden * self.bytes_per_element

    @property
    def local_share(self) -> float:
        """The share of the copies bound for GPUs of this GPU's scale-up domain."""
        return min(self.ep, DOMAIN) / self.ep


@dataclass(frozen=True)
class AllToAllFit:
    latency_us: float
    link_efficiency: float  # of the scale-up link's per-direction bandwidth
    network_gb_s: float  # per GPU, beyond the domain

    def seconds(self, k: Kernel, link_gb_s: float = H800_LINK_GB_S) -> float:
        local = k.bytes * k.local_share / (self.link_efficiency * link_gb_s * 1e9)
        remote = k.bytes * (1 - k.local_share) / (self.network_gb_s * 1e9)
        return self.latency_us * 1e-6 + local + remote


def read(path: Path | None = None) -> list[Kernel]:
    path = path or Path(str(resources.files("sim").joinpath(
        "data", "measurements", "deepep_all_to_all.csv")))
    with path.open(encoding="utf-8") as f:
        return [Kernel(r["op"], int(r["expert_parallel"]), int(r["tokens"]), int(r["hidden"]),
                       int(r["top_k"]), float(r["bytes_per_element"]), float(r["latency_us"]))
                for r in csv.DictReader(f)]


def fit(kernels: list[Kernel]) -> AllToAllFit:
    """Least squares on log latencies (every row weighs alike)."""
    measured = np.log([k.latency_us * 1e-6 for k in kernels])

    def residuals(x):
        f = AllToAllFit(*x)
        return np.log([f.seconds(k) for k in kernels]) - measured

    sol = least_squares(residuals, [20.0, 0.5, 40.0], bounds=([0, 0.05, 1], [500, 1.0, 400]))
    return AllToAllFit(*map(float, sol.x))


def errors(f: AllToAllFit, kernels: list[Kernel]) -> list[float]:
    """(predicted - measured) / measured of each row."""
    return [f.seconds(k) / (k.latency_us * 1e-6) - 1 for k in kernels]


# how engines using DeepEP-like kernels dispatch and combine: FP8 out, BF16 back, not
# overlapped with computation (TensorRT-LLM's default)
A2A_BYTES = {"dispatch_bytes": 1.0, "combine_bytes": 2.0, "a2a_overlap": 0.0}


def profile_terms() -> dict[str, float]:
    """A step profile's all-to-all terms, from the fit to the shipped DeepEP rows."""
    f = fit(read())
    return {"a2a_latency_us": f.latency_us, "a2a_efficiency": f.link_efficiency, **A2A_BYTES}


def summary() -> dict:
    """The fit to the shipped rows and how well it matches them (`searchsim validate`)."""
    kernels = read()
    f = fit(kernels)
    errs = errors(f, kernels)
    return {"latency_us": f.latency_us, "link_efficiency": f.link_efficiency,
            "network_gb_s": f.network_gb_s, "rows": len(kernels),
            "mape": sum(abs(e) for e in errs) / len(errs), "worst": max(errs, key=abs)}
