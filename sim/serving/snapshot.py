"""What a finished simulation leaves besides its tables: the pools' levels over time and the
replicas' counters, as plain picklable data (so shards can run in other processes and be
summed afterwards)."""

from __future__ import annotations

from dataclasses import dataclass

from sim.serving.monitor import AnyLevel, total


@dataclass(frozen=True)
class ReplicaStats:
    capacity: int | None  # KV-cache tokens, where the scheduler counts them
    kv_peak: int
    batch_peak: int
    outstanding: int  # queued or running at the end
    busy_s: float = 0.0  # busy (an iteration running or about to) over the whole run
    role: str = ""  # a disaggregated fleet's "prefill" or "decode" replica


@dataclass(frozen=True)
class Snapshot:
    busy_chips: AnyLevel
    busy_replicas: AnyLevel
    busy_flops: AnyLevel  # peak FLOP/s of the busy chips
    waiting: AnyLevel
    running: AnyLevel
    power_w: AnyLevel  # watts drawn by the LLM pool's accelerators
    up: AnyLevel  # LLM replicas up (not failed)
    retrieval_busy: AnyLevel
    retrieval_queue: AnyLevel
    retrieval_up: AnyLevel  # retrieval servers up (not failed)
    replicas: tuple[ReplicaStats, ...]
    preemptions: int
    refusals: int
    submitted: int
    end: float

    @classmethod
    def merge(cls, parts: list[Snapshot]) -> Snapshot:
        if len(parts) == 1:
            return parts[0]
        levels = {name: total([getattr(p, name) for p in parts]) for name in
                  ("busy_chips", "busy_replicas", "busy_flops", "waiting", "running",
                   "power_w", "up", "retrieval_busy",
                   "retrieval_queue", "retrieval_up")}
        return cls(**levels, replicas=tuple(r for p in parts for r in p.replicas),
                   preemptions=sum(p.preemptions for p in parts),
                   refusals=sum(p.refusals for p in parts),
                   submitted=sum(p.submitted for p in parts), end=max(p.end for p in parts))
