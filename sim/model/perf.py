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
        """2N FLOPs, N the parameters a token computes with (a mixture of experts: active)."""
        return 2.0 * self.model.compute_params / (self.hardware.peak_flops * self.tp * self.mfu)

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
    dp: int = 1  # attention data-parallel ranks of `tp` GPUs each (DEP: tp 1, dp = ep)
    ep: int = 1  # expert-parallel groups the routed experts are split over (1: TP-sliced)
    # the routed experts' bytes per weight, peak FLOP/s per chip and precision fit, where
    # they differ from the rest's (None: the same)
    expert_bytes_per_param: float | None = None
    expert_peak: float | None = None
    expert_gemm_precision: str | None = None

    @cached_property
    def _fit(self) -> FamilyFit:
        return self.profile.family(self.hardware, self.gemm_precision)

    @cached_property
    def _flop_rate(self) -> float:
        """FLOP/s the replica's dense GEMMs achieve."""
        return self._gemm_peak * self.tp * self._fit.flops_efficiency

    @cached_property
    def _s_per_token(self) -> float:
        """GEMM seconds per token of everything but the routed experts (all of a dense
        model)."""
        m = self.model
        routed = (m.experts_per_token or 0) * m.expert_params
        return 2.0 * (m.compute_params - routed) / self._flop_rate

    @cached_property
    def _s_per_routed(self) -> float:
        """GEMM seconds per (token, routed expert) pair: grouped expert GEMMs reach
        `moe_efficiency` of a dense GEMM's efficiency at large tokens per expert."""
        fit = self.expert_fit
        rate = (self.expert_peak or self._gemm_peak) * self.tp * fit.flops_efficiency
        width = self.model.expert_width / (self.tp * self.dp // self.ep)  # TP-sliced
        shape = width / (width + self.profile.moe_half_width)
        return 2.0 * self.model.expert_params / (rate * (fit.moe_efficiency or 1.0) * shape)

    def _expert_compute(self, tokens, touched):
        """Routed-expert GEMM seconds for `tokens` tokens reaching `touched` experts: each
        pair at `_s_per_routed`, and each touched expert's GEMM padded by `moe_half_tokens`
        (its efficiency is n / (n + h) at n tokens, exactly this offset)."""
        pairs = (self.model.experts_per_token or 0) * tokens
        return self._imbalance * self._s_per_routed * (
            pairs + self.profile.moe_half_tokens * touched) / self.dp

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
        """Bytes/s one data-parallel rank's `tp` GPUs read."""
        return self.hardware.hbm_bytes_per_s * self.tp * self._fit.memory_efficiency

    @cached_property
    def _gpus(self) -> int:
        return self.tp * self.dp

    @cached_property
    def _s_weights(self) -> float:
        """Reading the weights every iteration reads (a mixture of experts: all but its
        routed experts, whose reads depend on the tokens: `_s_per_expert`)."""
        return self.model.resident_params() * self.bytes_per_param / self._byte_rate

    @cached_property
    def _moe(self) -> bool:
        return self.model.is_moe

    @cached_property
    def _s_per_expert(self) -> float:
        """Reading one routed expert (every MoE layer's copy), spread over every GPU: each
        holds 1 / (tp dp) of the experts' weights, whole (EP) or sliced (TP)."""
        per_param = self.expert_bytes_per_param or self.bytes_per_param
        return self.model.expert_params * per_param / (self._byte_rate * self.dp)

    @cached_property
    def expert_fit(self) -> FamilyFit:
        """The profile's fit for the family at the precision the routed experts run."""
        return self.profile.family(self.hardware,
                                   self.expert_gemm_precision or self.gemm_precision)

    @cached_property
    def _imbalance(self) -> float:
        """The busiest GPU's share of routed tokens over the mean: 1 when every GPU holds a
        slice of every expert (TP), the profile's `expert_imbalance` under EP."""
        return self.profile.expert_imbalance if self.ep > 1 else 1.0

    @cached_property
    def _s_per_kv_token(self) -> float:
        return self.model.kv_bytes_per_token(self.kv_bytes_per_element) / (
            self._byte_rate * self.profile.kv_efficiency)

    @cached_property
    def _comm(self) -> tuple[float, float]:
        """(fixed seconds, seconds per token of the replica's batch) of the all-reduces, two
        per layer within each data-parallel rank (its tokens: 1 / dp of the batch)."""
        if self.tp == 1:
            return 0.0, 0.0
        count, steps = 2 * self.model.layers, 2 * (self.tp - 1)
        per_token = self.model.d_model * 2.0 * steps / self.tp
        return (count * steps * self._fit.allreduce_latency_us * 1e-6,
                count * per_token / (self._fit.allreduce_gb_s * 1e9) / self.dp)

    @cached_property
    def _all_to_all(self) -> tuple[float, float]:
        """(fixed seconds, seconds per token of the replica's batch) of expert parallelism's
        dispatch and combine, once each per MoE layer: each GPU sends its 1 / (tp dp) of the
        tokens' k routed copies, (ep - 1) / ep of them to other GPUs, at `dispatch_bytes`
        and `combine_bytes` an element over the scale-up link at the profile's all-to-all
        efficiency; `a2a_overlap` of it hidden under computation."""
        if self.ep == 1:
            return 0.0, 0.0
        m, p = self.model, self.profile
        layers = m.moe_layers
        link = self.hardware.interconnect.gb_s * 1e9 * p.a2a_efficiency
        copies = (m.experts_per_token or 0) * (self.ep - 1) / self.ep / self._gpus
        per_token = layers * copies * m.d_model * (p.dispatch_bytes + p.combine_bytes) / link
        exposed = 1.0 - p.a2a_overlap
        return exposed * layers * 2 * p.a2a_latency_us * 1e-6, exposed * per_token

    @cached_property
    def _s_per_seq(self) -> float:
        """Serial host seconds per decoding sequence per iteration (the engine's), each
        data-parallel rank its own."""
        return self.profile.seq_overhead_us * 1e-6 / self.dp

    @cached_property
    def _fixed(self) -> float:
        """Seconds every iteration pays whatever its size: launches, scheduling, GEMM tiles,
        all-reduce and all-to-all latency."""
        p, m = self.profile, self.model
        moe = m.moe_layers * p.moe_layer_overhead_us * 1e-6 if self._moe else 0.0
        return (m.layers * p.layer_overhead_us * 1e-6 + p.iteration_overhead_ms * 1e-3 + moe
                + p.gemm_half_tokens * self._s_per_token + self._comm[0] + self._all_to_all[0])

    @cached_property
    def _s_per_comm_token(self) -> float:
        return self._comm[1] + self._all_to_all[1]

    def flops(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        m = self.model
        return (2.0 * m.compute_params * (prefill_tokens + decode_seqs)
                + 4.0 * m.layers * m.heads * m.head_dim * (prefill_attn + decode_context))

    def _parts(self, tokens, pairs, kv_tokens):
        """(compute, memory) seconds of the busiest GPU for `tokens` new tokens, `pairs`
        token-context pairs of attention and `kv_tokens` KV entries read or written, the
        replica's whole batch split evenly over its data-parallel ranks (scalars or
        arrays, the same arithmetic for both)."""
        compute = (self._s_per_token * tokens + self._s_per_pair * pairs) / self.dp
        memory = self._s_weights + self._s_per_kv_token * kv_tokens / self.dp
        if self._moe:
            touched = self.model.experts_touched(tokens)
            compute = compute + self._expert_compute(tokens, touched)
            memory = memory + touched * self._s_per_expert
        return compute, memory

    def compute_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        return self._parts(prefill_tokens + decode_seqs, prefill_attn + decode_context,
                           decode_context + prefill_tokens + decode_seqs)[0]

    def memory_time(self, prefill_tokens, decode_seqs, decode_context):
        """Weights once (the experts the tokens touch), the KV cache read, and the new
        tokens' KV written."""
        tokens = prefill_tokens + decode_seqs
        return self._parts(tokens, 0.0, decode_context + tokens)[1]

    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        tokens = prefill_tokens + decode_seqs
        compute, memory = self._parts(tokens, prefill_attn + decode_context,
                                      decode_context + tokens)
        longer = np.maximum(compute, memory) if isinstance(compute, np.ndarray) or \
            isinstance(memory, np.ndarray) else max(compute, memory)
        return (longer + self._fixed + self._s_per_comm_token * tokens
                + self._s_per_seq * decode_seqs)

    def scalar_time(self, prefill_tokens: int, prefill_attn: float, decode_seqs: int,
                    decode_context: int) -> tuple[float, bool]:
        """`iteration_time` for one iteration on plain numbers (the scheduler's hot path):
        the same arithmetic in the same order, so the same result to the last bit; and
        whether the iteration is compute-bound (it then draws prompt-phase power)."""
        tokens = prefill_tokens + decode_seqs
        compute, memory = self._parts(tokens, prefill_attn + decode_context,
                                      decode_context + tokens)
        return (max(compute, memory) + self._fixed + self._s_per_comm_token * tokens
                + self._s_per_seq * decode_seqs), compute >= memory

    def decode_lines(self, seqs: int, context: float) -> tuple[float, ...]:
        """Decode iteration i of a run (context + seqs * i tokens) as two lines and a
        constant: compute, memory, and what every iteration pays besides (the same batch
        every iteration: the same experts touched)."""
        compute, memory = self._parts(seqs, context, context + seqs)
        return (compute, self._s_per_pair * seqs / self.dp, memory,
                self._s_per_kv_token * seqs / self.dp,
                self._fixed + self._s_per_comm_token * seqs + self._s_per_seq * seqs)

    def terms(self, prefill_tokens, prefill_attn, decode_seqs, decode_context
              ) -> dict[str, float]:
        """Seconds of each term of one iteration: compute and memory (the longer of the two
        is paid), the all-reduces, expert parallelism's all-to-all, and the engine's fixed
        and per-sequence overheads; the others add."""
        tokens = prefill_tokens + decode_seqs
        compute, memory = self._parts(tokens, prefill_attn + decode_context,
                                      decode_context + tokens)
        reduce = self._comm[0] + self._comm[1] * tokens
        a2a = self._all_to_all[0] + self._all_to_all[1] * tokens
        return {"compute": float(compute), "memory": float(memory), "all-reduce": reduce,
                "all-to-all": a2a, "overhead": (self._fixed - self._comm[0]
                                                - self._all_to_all[0]
                                                + self._s_per_seq * decode_seqs)}

    def bound(self, prefill_tokens, prefill_attn, decode_seqs, decode_context) -> str:
        """The largest term of the iteration (`terms`)."""
        t = self.terms(prefill_tokens, prefill_attn, decode_seqs, decode_context)
        return max(t, key=lambda k: t[k])

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
         precision: str = "bf16", dp: int = 1, ep: int = 1) -> StepModel:
    """A step model of `kind` for a replica of `dp` data-parallel ranks of `tp` chips, its
    routed experts split over `ep` groups."""
    if kind == "roofline":
        experts = model.expert_precision or precision
        return RooflineStep(model, hardware, tp, profile, bytes_per_param=bytes_per_param,
                            kv_bytes_per_element=kv_bytes,
                            compute_peak=precisions.compute_peak(hardware, precision),
                            gemm_precision=precisions.gemm_precision(hardware, precision),
                            dp=dp, ep=ep, expert_bytes_per_param=expert_bytes(model),
                            expert_peak=precisions.peak_of(
                                hardware, precisions.expert_gemm_precision(hardware, experts)),
                            expert_gemm_precision=precisions.expert_gemm_precision(
                                hardware, experts))
    return ArticleStep(model, hardware, tp * dp, mfu)  # the article: every chip alike


def build(cfg, model: Model, hardware: Accelerator, tp: int | None = None, dp: int = 1,
          ep: int = 1) -> StepModel:
    """The step model an `[llm]` section asks for (its profile named by `llm.profile`, with
    the engine's own software terms laid over it), for its first replica group or on
    `hardware` at `tp` (`dp` ranks, `ep` expert groups)."""
    profile = cfg.engine_spec.step_profile(cfg.profile)
    if tp is None:
        tp, dp, ep = cfg.tp, cfg.dp, cfg.ep
    return make(cfg.step_model, model, hardware, tp, cfg.mfu, cfg.weight_bytes, profile,
                cfg.kv_bytes, cfg.precision, dp, ep)


def expert_bytes(model: Model) -> float | None:
    """Bytes per routed-expert weight when the model ships its experts quantized (None:
    the scenario's precision)."""
    if model.expert_precision is None:
        return None
    return precisions.bytes_per_weight(model.expert_precision)


def weights_held(model: Model, bytes_per_param: float, dp: int = 1) -> float:
    """Bytes of weights a replica of `dp` data-parallel ranks holds: every rank its own copy
    of what every token uses (attention, dense layers, shared experts), the routed experts
    once, split over all its chips."""
    return (model.weight_bytes(bytes_per_param, expert_bytes(model))
            + (dp - 1) * model.resident_params() * bytes_per_param)


def kv_bytes_free(model: Model, hardware: Accelerator, tp: int, bytes_per_param: float,
                  fraction: float | None, utilization: float = 0.9,
                  reserve_gb: float = 0.0, dp: int = 1) -> float:
    """Bytes a replica (`dp` ranks of `tp` chips) gives its KV cache: `fraction` of what the
    weights leave, or (None) as vLLM sizes it, `utilization` of each GPU's memory less its
    share of the weights and `reserve_gb` of activations and CUDA graphs. Each rank caches
    its own sequences' KV (attention data parallelism does not shard it by rank)."""
    weights = weights_held(model, bytes_per_param, dp)
    if fraction is not None:
        return (hardware.hbm_bytes * tp * dp - weights) * fraction
    return (hardware.hbm_bytes * utilization - reserve_gb * 1e9) * tp * dp - weights


def kv_capacity(model: Model, hardware: Accelerator, tp: int, bytes_per_param: float,
                fraction: float | None, engine, kv_bytes: float = 2.0, dp: int = 1) -> int:
    """KV-cache tokens a replica holds under `engine`: whole blocks of its block size, at
    `kv_bytes` a key or value element."""
    free = kv_bytes_free(model, hardware, tp, bytes_per_param, fraction,
                         engine.get("gpu_memory_utilization", 0.9),
                         engine.get("reserve_gb", 0.0), dp)
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
