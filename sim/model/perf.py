"""Step-time models: how long one iteration of a batch takes on one replica.

An iteration processes `prefill_tokens` prompt tokens (whose attention spans
`prefill_attn` token-context pairs) and one new token for each of `decode_seqs` running
sequences (whose contexts sum to `decode_context` tokens). Every argument may be a numpy array,
so a scheduler can price many iterations at once. Schedulers never compute FLOPs themselves.

- `article`: every token costs 2N FLOPs at a fixed MFU of peak (the article's framework).
- `roofline`: max(compute, memory) with achieved efficiencies, ring all-reduces and the
  engine's fixed costs, all from a calibrated `Profile` (docs/modelling.md section 7;
  docs/accuracy.md for how well it predicts published measurements).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from sim.model import precision as precisions
from sim.model.catalog import Accelerator, Model
from sim.model.defaults import ARTICLE_MFU
from sim.model.profile import BARE, FamilyFit, Profile


class StepModel(Protocol):
    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        """Seconds for one iteration (scalars or numpy arrays, elementwise)."""


# A step model may also offer `decode_lines(seqs, context) -> (a_c, b_c, a_m, b_m, extra)`:
# decode iteration i of a run then takes max(a_c + b_c i, a_m + b_m i) + extra seconds, so a
# run of any length is priced in closed form (`DecodeRun`); without it, runs are priced
# iteration by iteration through `iteration_time`.


def useful_flops(model: Model, tokens) -> float:
    """The 2N FLOPs per token the article counts (N active, for a mixture of experts), for
    MFU accounting."""
    return 2.0 * model.compute_params * tokens


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

    def scalar_time(self, prefill_tokens: int, prefill_attn: float, decode_seqs: int,
                    decode_context: int) -> tuple[float, bool]:
        """One iteration's seconds, and whether it draws prompt-phase power: this model has
        no memory term, so an iteration with prompt tokens does."""
        return (prefill_tokens + decode_seqs) * self.seconds_per_token, prefill_tokens > 0

    def decode_lines(self, seqs: int, context: float) -> tuple[float, ...]:
        t = seqs * self.seconds_per_token  # context costs nothing: every iteration alike
        return t, 0.0, t, 0.0, 0.0


@dataclass(frozen=True)
class RooflineStep:
    """max(compute, memory) per iteration, plus tensor-parallel all-reduces and the engine's
    fixed costs, with every efficiency and overhead taken from a `Profile`:

    - compute: 2N FLOPs per token at the family's achieved FLOP/s, plus a fixed GEMM term of
      `gemm_half_tokens` tokens (GEMM efficiency n / (n + h) for n tokens is exactly this
      offset), plus attention at 4 x layers x heads x head_dim FLOPs per token-context pair
      at `attention_efficiency` of peak;
    - memory: weights once, plus the KV cache read and written, at the family's achieved
      bandwidth;
    - all-reduce: two per layer, a ring of tp chips: 2(tp - 1) steps of latency, and
      2(tp - 1)/tp of tokens x d_model x 2 bytes over the link;
    - fixed: `layer_overhead_us` per layer (kernel launches) and `iteration_overhead_ms`
      (scheduling, sampling) per iteration.
    Every term is linear in the iteration's counts, so the coefficients are computed once and
    the same arithmetic serves scalars (one iteration) and numpy arrays (many).
    """

    model: Model
    hardware: Accelerator
    tp: int
    profile: Profile = BARE
    bytes_per_param: float = 2.0
    kv_bytes_per_element: float = 2.0
    compute_peak: float | None = None  # per chip, the GEMMs' precision (None: BF16 peak)
    gemm_precision: str = "bf16"  # which of the profile's fits applies (docs/engines.md)

    @cached_property
    def _fit(self) -> FamilyFit:
        return self.profile.family(self.hardware, self.gemm_precision)

    @cached_property
    def _s_per_token(self) -> float:
        flop_rate = self._gemm_peak * self.tp * self._fit.flops_efficiency
        return 2.0 * self.model.compute_params / flop_rate

    @cached_property
    def _gemm_peak(self) -> float:
        return self.compute_peak or self.hardware.peak_flops

    @cached_property
    def _s_per_pair(self) -> float:
        m = self.model
        rate = self.hardware.peak_flops * self.tp * self.profile.attention_efficiency
        return 4.0 * m.layers * m.heads * m.head_dim / rate

    @cached_property
    def _byte_rate(self) -> float:
        return self.hardware.hbm_bytes_per_s * self.tp * self._fit.memory_efficiency

    @cached_property
    def _s_weights(self) -> float:
        """Reading the weights every iteration reads (a mixture of experts: all but its
        routed experts, whose reads depend on the tokens: `_expert_s`)."""
        return self.model.resident_params() * self.bytes_per_param / self._byte_rate

    @cached_property
    def _moe(self) -> bool:
        return self.model.is_moe

    @cached_property
    def _s_per_expert(self) -> float:
        return self.model.expert_params * self.bytes_per_param / self._byte_rate

    def _expert_s(self, tokens):
        """Reading the routed experts `tokens` tokens touch (scalars or arrays): nearly all
        of them at a decode batch's size (Model.experts_touched)."""
        m = self.model
        e, k = m.experts or 1, m.experts_per_token or 0
        return e * (1.0 - (1.0 - k / e) ** tokens) * self._s_per_expert

    @cached_property
    def _s_per_kv_token(self) -> float:
        return self.model.kv_bytes_per_token(self.kv_bytes_per_element) / (
            self._byte_rate * self.profile.kv_efficiency)

    @cached_property
    def _comm(self) -> tuple[float, float]:
        """(fixed seconds, seconds per token) of the all-reduces, two per layer."""
        if self.tp == 1:
            return 0.0, 0.0
        count, steps = 2 * self.model.layers, 2 * (self.tp - 1)
        per_token = self.model.d_model * 2.0 * steps / self.tp
        return (count * steps * self._fit.allreduce_latency_us * 1e-6,
                count * per_token / (self._fit.allreduce_gb_s * 1e9))

    @cached_property
    def _s_per_seq(self) -> float:
        """Serial host seconds per decoding sequence per iteration (the engine's)."""
        return self.profile.seq_overhead_us * 1e-6

    @cached_property
    def _fixed(self) -> float:
        """Seconds every iteration pays whatever its size: launches, scheduling, GEMM tiles,
        all-reduce latency."""
        p = self.profile
        return (self.model.layers * p.layer_overhead_us * 1e-6 + p.iteration_overhead_ms * 1e-3
                + p.gemm_half_tokens * self._s_per_token + self._comm[0])

    def flops(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        m = self.model
        return (2.0 * m.compute_params * (prefill_tokens + decode_seqs)
                + 4.0 * m.layers * m.heads * m.head_dim * (prefill_attn + decode_context))

    def compute_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        return (self._s_per_token * (prefill_tokens + decode_seqs)
                + self._s_per_pair * (prefill_attn + decode_context))

    def memory_time(self, prefill_tokens, decode_seqs, decode_context):
        """Weights once (the experts the tokens touch), the KV cache read, and the new
        tokens' KV written."""
        weights = self._s_weights
        if self._moe:
            weights = weights + self._expert_s(prefill_tokens + decode_seqs)
        return weights + self._s_per_kv_token * (decode_context + prefill_tokens + decode_seqs)

    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        compute = self.compute_time(prefill_tokens, prefill_attn, decode_seqs, decode_context)
        memory = self.memory_time(prefill_tokens, decode_seqs, decode_context)
        longer = np.maximum(compute, memory) if isinstance(compute, np.ndarray) or \
            isinstance(memory, np.ndarray) else max(compute, memory)
        return (longer + self._fixed + self._comm[1] * (prefill_tokens + decode_seqs)
                + self._s_per_seq * decode_seqs)

    def scalar_time(self, prefill_tokens: int, prefill_attn: float, decode_seqs: int,
                    decode_context: int) -> tuple[float, bool]:
        """`iteration_time` for one iteration on plain numbers (the scheduler's hot path):
        the same arithmetic in the same order, so the same result to the last bit; and
        whether the iteration is compute-bound (it then draws prompt-phase power)."""
        tokens = prefill_tokens + decode_seqs
        compute = self._s_per_token * tokens + self._s_per_pair * (prefill_attn + decode_context)
        weights = self._s_weights
        if self._moe:
            weights = weights + self._expert_s(tokens)
        memory = weights + self._s_per_kv_token * (decode_context + prefill_tokens + decode_seqs)
        return (max(compute, memory) + self._fixed + self._comm[1] * tokens
                + self._s_per_seq * decode_seqs), compute >= memory

    def decode_lines(self, seqs: int, context: float) -> tuple[float, ...]:
        """Decode iteration i of a run (context + seqs * i tokens) as two lines and a
        constant: compute, memory, and what every iteration pays besides."""
        weights = self._s_weights
        if self._moe:  # the same batch every iteration: the same experts touched
            weights = weights + self._expert_s(seqs)
        return (self._s_per_token * seqs + self._s_per_pair * context, self._s_per_pair * seqs,
                weights + self._s_per_kv_token * (context + seqs),
                self._s_per_kv_token * seqs,
                self._fixed + self._comm[1] * seqs + self._s_per_seq * seqs)

    def bound(self, prefill_tokens, prefill_attn, decode_seqs, decode_context) -> str:
        compute = self.compute_time(prefill_tokens, prefill_attn, decode_seqs, decode_context)
        memory = self.memory_time(prefill_tokens, decode_seqs, decode_context)
        return "compute" if compute >= memory else "memory"

    @property
    def ridge_flops_per_byte(self) -> float:
        fit = self._fit
        return (self._gemm_peak * fit.flops_efficiency
                / (self.hardware.hbm_bytes_per_s * fit.memory_efficiency))


def decode_times(step: StepModel, seqs: int, context: float, steps: int) -> np.ndarray:
    """Times of `steps` decode iterations of `seqs` sequences whose contexts total `context`
    tokens at the first and grow by one token each per iteration. Broadcast because a model
    that ignores context (the article's) returns one scalar for the whole range."""
    times = step.iteration_time(0, 0, seqs, context + seqs * np.arange(steps))
    return np.broadcast_to(times, (steps,))


def pairs_of_chunk(tokens: int, already: int) -> float:
    """`prefill_pairs` of one chunk, on plain floats (the scheduler's hot path)."""
    p = float(tokens)
    return p * (already + (p + 1) / 2.0)


def prefill_pairs(prompt_tokens, already: float = 0):
    """Token-context pairs of attention when `prompt_tokens` are prefilled after `already`."""
    p = np.asarray(prompt_tokens, dtype=float)
    return p * (already + (p + 1) / 2.0)


def make(kind: str, model: Model, hardware: Accelerator, tp: int, mfu: float = ARTICLE_MFU,
         bytes_per_param: float = 2.0, profile: Profile = BARE, kv_bytes: float = 2.0,
         precision: str = "bf16") -> StepModel:
    if kind == "roofline":
        return RooflineStep(model, hardware, tp, profile, bytes_per_param=bytes_per_param,
                            kv_bytes_per_element=kv_bytes,
                            compute_peak=precisions.compute_peak(hardware, precision),
                            gemm_precision=precisions.gemm_precision(hardware, precision))
    return ArticleStep(model, hardware, tp, mfu)


def build(cfg, model: Model, hardware: Accelerator, tp: int | None = None) -> StepModel:
    """The step model an `[llm]` section asks for (its profile named by `llm.profile`, with
    the engine's own software terms laid over it), for its first replica group or on
    `hardware` at `tp`."""
    profile = cfg.engine_spec.step_profile(cfg.profile)
    return make(cfg.step_model, model, hardware, cfg.tp if tp is None else tp, cfg.mfu,
                cfg.weight_bytes, profile, cfg.kv_bytes, cfg.precision)


def kv_bytes_free(model: Model, hardware: Accelerator, tp: int, bytes_per_param: float,
                  fraction: float | None, utilization: float = 0.9,
                  reserve_gb: float = 0.0) -> float:
    """Bytes a replica gives its KV cache: `fraction` of what the weights leave, or (None)
    as vLLM sizes it, `utilization` of each GPU's memory less its share of the weights and
    `reserve_gb` of activations and CUDA graphs."""
    weights = model.weight_bytes(bytes_per_param)
    if fraction is not None:
        return (hardware.hbm_bytes * tp - weights) * fraction
    return (hardware.hbm_bytes * utilization - reserve_gb * 1e9) * tp - weights


def kv_capacity(model: Model, hardware: Accelerator, tp: int, bytes_per_param: float,
                fraction: float | None, engine, kv_bytes: float = 2.0) -> int:
    """KV-cache tokens a replica holds under `engine`: whole blocks of its block size, at
    `kv_bytes` a key or value element."""
    free = kv_bytes_free(model, hardware, tp, bytes_per_param, fraction,
                         engine.get("gpu_memory_utilization", 0.9),
                         engine.get("reserve_gb", 0.0))
    block = engine.block_size
    return max(0, int(free // (model.kv_bytes_per_token(kv_bytes) * block))) * block


def full_batch(step: StepModel, max_batch: int, kv: int | None, prompt: float,
               output: float) -> tuple[int, float]:
    """(batch, replica-seconds per request) of a replica running full batches of requests of
    `prompt` and `output` tokens: B = min(max_batch, the requests whose whole context fits
    the KV cache); a prefill iteration samples the first token, output - 1 decodes follow."""
    batch, prefill, decode = full_batch_parts(step, max_batch, kv, prompt, output)
    return batch, prefill + decode


def full_batch_parts(step: StepModel, max_batch: int, kv: int | None, prompt: float,
                     output: float, reused: float = 0.0) -> tuple[int, float, float]:
    """`full_batch` in its two parts: (batch, prefill and decode replica-seconds per
    request). `reused`: prompt tokens a request reads from a prefix cache, not prefilled
    (its prefill attends over them)."""
    batch = max_batch if not kv else max(1, min(max_batch, int(kv // (prompt + output))))
    new = prompt - reused
    prefill = float(step.iteration_time(batch * new, batch * prefill_pairs(new, reused), 0, 0))
    steps = max(1, round(output - 1))
    decode = float(decode_times(step, batch, batch * (prompt + 1), steps).sum()) * (
        output - 1) / steps
    return batch, prefill / batch, decode / batch
