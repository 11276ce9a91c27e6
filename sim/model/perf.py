"""Step-time models: how long one iteration of a batch takes on one replica.

An iteration processes `prefill_tokens` prompt tokens (whose attention spans
`prefill_attn` token-context pairs) and one new token for each of `decode_seqs` running
sequences (whose contexts sum to `decode_context` tokens). Every argument may be a numpy array,
so a scheduler can price many iterations at once. Schedulers never compute FLOPs themselves.

- `article`: every token costs 2N FLOPs at a fixed MFU of peak (the article's framework).
- `roofline`: prefill compute-bound, decode max(compute, weight + KV bytes / bandwidth), with
  efficiency factors, a fixed per-iteration overhead and a tensor-parallel all-reduce term
  (docs/modelling.md section 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from sim.model.catalog import Accelerator, Model


class StepModel(Protocol):
    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        """Seconds for one iteration (scalars or numpy arrays, elementwise)."""


def useful_flops(model: Model, tokens) -> float:
    """The 2N FLOPs per token the article counts, for MFU accounting."""
    return 2.0 * model.params * tokens


@dataclass(frozen=True)
class ArticleStep:
    """Time proportional to tokens: 2N FLOPs each at `mfu` of the replica's peak."""

    model: Model
    hardware: Accelerator
    tp: int
    mfu: float

    @property
    def seconds_per_token(self) -> float:
        return 2.0 * self.model.params / (self.hardware.peak_flops * self.tp * self.mfu)

    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        return (prefill_tokens + decode_seqs) * self.seconds_per_token


@dataclass(frozen=True)
class RooflineStep:
    """max(compute, memory) per iteration, plus overhead and tensor-parallel communication.

    Defaults reproduce FasterTransformer's 13B measurements on one A100 40GB (prefill of 512
    tokens 63.2 ms, decode step at context 512 22.0 ms) within a few percent.
    """

    model: Model
    hardware: Accelerator
    tp: int
    eta_flops: float = 0.69
    eta_bw: float = 0.78
    overhead_s: float = 0.0
    link_bytes_per_s: float = 300e9  # per-direction NVLink-class bandwidth between chips
    link_latency_s: float = 5e-6  # per all-reduce
    bytes_per_param: float = 2.0
    kv_bytes_per_element: float = 2.0

    # Every term is linear in the iteration's counts, so the coefficients are computed once
    # and the same arithmetic serves scalars (one iteration) and numpy arrays (many).

    @cached_property
    def _flops_per_token(self) -> float:
        return 2.0 * self.model.params

    @cached_property
    def _flops_per_pair(self) -> float:
        m = self.model
        return 4.0 * m.layers * m.heads * m.head_dim

    @cached_property
    def _kv_bytes(self) -> float:
        return self.model.kv_bytes_per_token(self.kv_bytes_per_element)

    @cached_property
    def _weight_bytes(self) -> float:
        return self.model.weight_bytes(self.bytes_per_param)

    @cached_property
    def _flop_rate(self) -> float:
        return self.hardware.peak_flops * self.tp * self.eta_flops

    @cached_property
    def _byte_rate(self) -> float:
        return self.hardware.hbm_bytes_per_s * self.tp * self.eta_bw

    @cached_property
    def _comm(self) -> tuple[float, float]:
        """(fixed seconds, seconds per token) of the all-reduces, two per layer."""
        if self.tp == 1:
            return 0.0, 0.0
        count = 2 * self.model.layers
        per_token = self.model.d_model * 2.0 * 2.0 * (self.tp - 1) / self.tp
        return count * self.link_latency_s, count * per_token / self.link_bytes_per_s

    def flops(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        return (self._flops_per_token * (prefill_tokens + decode_seqs)
                + self._flops_per_pair * (prefill_attn + decode_context))

    def bytes_moved(self, prefill_tokens, decode_seqs, decode_context):
        """Weights once, the KV cache read, and the new tokens' KV written."""
        return self._weight_bytes + self._kv_bytes * (decode_context + prefill_tokens
                                                      + decode_seqs)

    def communication_time(self, tokens):
        fixed, per_token = self._comm
        return fixed + per_token * tokens if fixed else 0.0 * tokens

    def compute_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        return self.flops(prefill_tokens, prefill_attn, decode_seqs,
                          decode_context) / self._flop_rate

    def memory_time(self, prefill_tokens, decode_seqs, decode_context):
        return self.bytes_moved(prefill_tokens, decode_seqs, decode_context) / self._byte_rate

    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        compute = self.compute_time(prefill_tokens, prefill_attn, decode_seqs, decode_context)
        memory = self.memory_time(prefill_tokens, decode_seqs, decode_context)
        longer = np.maximum(compute, memory) if isinstance(compute, np.ndarray) or \
            isinstance(memory, np.ndarray) else max(compute, memory)
        comm = self.communication_time(prefill_tokens + decode_seqs)
        return longer + self.overhead_s + comm

    def bound(self, prefill_tokens, prefill_attn, decode_seqs, decode_context) -> str:
        compute = self.compute_time(prefill_tokens, prefill_attn, decode_seqs, decode_context)
        memory = self.memory_time(prefill_tokens, decode_seqs, decode_context)
        return "compute" if compute >= memory else "memory"


def decode_times(step: StepModel, seqs: int, context: float, steps: int) -> np.ndarray:
    """Times of `steps` decode iterations of `seqs` sequences whose contexts total `context`
    tokens at the first and grow by one token each per iteration. Broadcast because a model
    that ignores context (the article's) returns one scalar for the whole range."""
    times = step.iteration_time(0, 0, seqs, context + seqs * np.arange(steps))
    return np.broadcast_to(times, (steps,))


def prefill_pairs(prompt_tokens, already: int = 0):
    """Token-context pairs of attention when `prompt_tokens` are prefilled after `already`."""
    p = np.asarray(prompt_tokens, dtype=float)
    return p * (already + (p + 1) / 2.0)


def make(kind: str, model: Model, hardware: Accelerator, tp: int, mfu: float = 0.213,
         bytes_per_param: float = 2.0) -> StepModel:
    if kind == "roofline":
        return RooflineStep(model, hardware, tp, bytes_per_param=bytes_per_param)
    return ArticleStep(model, hardware, tp, mfu)


def build(cfg, model: Model, hardware: Accelerator) -> StepModel:
    """The step model an `[llm]` section asks for."""
    return make(cfg.step_model, model, hardware, cfg.tp, cfg.mfu, cfg.bytes_per_param)
