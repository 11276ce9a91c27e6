"""The LLM pool's replica groups as the simulation builds them: each group's step model, KV
capacity, power, peak and, in a mixed fleet, its speed relative to the first group."""

from __future__ import annotations

import dataclasses

from sim.model import catalog
from sim.scenario import capacity
from sim.scenario.schema import Scenario
from sim.serving.stages.continuous import Scheduling
from sim.serving.stages.pool import KVTransfer, ReplicaGroup


def replica_groups(s: Scenario, model) -> list[ReplicaGroup]:
    """The pool's replica groups: each group's step model, KV capacity, power and peak; in a
    mixed fleet each also gets its speed, requests per second at full batches relative to the
    first group's (mean lengths from the scenario's distributions)."""
    out = []
    for g in s.llm.fleet:
        hw = catalog.accelerator(g.hardware)
        kv = capacity.kv_tokens(s, model, hw, g.tp, g.dp)
        out.append(ReplicaGroup(capacity.step_of(s, model, g), g.chips_per_replica,
                                g.replicas, kv, hw.power, hw.peak_flops,
                                scheduling=scheduling(s, model, g.chips_per_replica, kv or 0,
                                                      g.dp),
                                prefix=prefix_cache(s, model, g.chips_per_replica),
                                ranks=g.dp))
    if len(out) > 1 and s.llm.disaggregated is None:  # a disaggregated fleet's pools do
        prompt, output = mean_lengths(s)                  # not share requests: no speeds
        per_request = [capacity.seconds_per_request(s, model, g, prompt, output, r.step)
                       for g, r in zip(s.llm.fleet, out, strict=True)]
        out = [dataclasses.replace(g, speed=per_request[0] / p)
               for g, p in zip(out, per_request, strict=True)]
    return out


def prefix_cache(s: Scenario, model, chips: int) -> tuple[float, int, int, float] | None:
    """A replica's prefix cache: (share of its KV memory, tokens per block, blocks its host
    memory keeps, seconds to copy one back over the host link of its chips)."""
    c = s.llm.prefix_cache
    if c is None:
        return None
    block = s.llm.prefix_block_tokens
    per_block = block * model.kv_bytes_per_token(s.llm.kv_bytes) / (c.host_gb_s * 1e9 * chips)
    return c.memory_fraction, block, c.host_tokens // block, per_block


def kv_transfer(s: Scenario, model) -> KVTransfer | None:
    """How a disaggregated fleet moves KV from its prefill to its decode pool."""
    d = s.llm.disaggregated
    if d is None:
        return None
    return KVTransfer(model.kv_bytes_per_token(s.llm.kv_bytes), d.kv_link_gbps * 1e9 / 8,
                      d.kv_latency_s, model.layers, d.layerwise)


def scheduling(s: Scenario, model, chips: int, kv_tokens: int, ranks: int = 1) -> Scheduling:
    """The engine's scheduling rules for a replica of `chips` chips holding `kv_tokens`, in
    `ranks` data-parallel ranks each with the engine's prompt budget."""
    e = s.llm.engine_spec
    watermark = int(e.get("watermark", 0.0) * (kv_tokens // e.block_size))
    swap_s = swap_tokens = None
    if e.get("preemption") == "swap":
        per_token = model.kv_bytes_per_token(s.llm.kv_bytes)
        swap_s = per_token / (e.get("swap_gb_s", 12.0) * 1e9 * chips)
        swap_tokens = int(e.get("swap_space_gb", 4.0) * 1e9 * chips // per_token)
    budget = e.get("max_num_batched_tokens") * ranks if e.policy == "prompt_first" else None
    return Scheduling(e.policy, budget, e.block_size, watermark, swap_s, swap_tokens or 0)


def mean_lengths(s: Scenario) -> tuple[float, float]:
    """Mean prompt and output tokens of an LLM request, from the scenario's distributions."""
    prompt = s.workload.query_tokens.build().mean
    if s.architecture.kind == "two_stage":
        prompt += s.retrieval.passage_tokens.build().mean
    return prompt, s.workload.response_tokens.build().mean
