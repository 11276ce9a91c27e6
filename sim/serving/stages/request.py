"""One LLM request: a prompt to prefill and an output to generate, with its timestamps."""

from __future__ import annotations

import math

import simpy


class Request:
    __slots__ = ("rid", "qid", "prompt", "output", "submitted", "started", "first_token",
                 "finished", "replica", "accel_s", "done", "generated", "prefilled",
                 "cancelled", "preemptions", "kv", "refused", "seq", "decoding", "tick0",
                 "acc0")

    def __init__(self, env: simpy.Environment, rid: int, qid: int, prompt: int, output: int):
        self.rid, self.qid, self.prompt, self.output = rid, qid, prompt, output
        self.submitted = env.now
        self.started = math.nan
        self.first_token = math.nan
        self.finished = math.nan
        self.replica = -1
        self.accel_s = 0.0
        self.done = env.event()
        self.generated = 0  # output tokens produced so far
        self.prefilled = 0  # prefill tokens processed, recomputation after preemption included
        self.kv = 0  # tokens whose keys and values are in the replica's memory now
        self.cancelled = False
        self.refused = False  # could never fit in the replica's KV memory
        self.preemptions = 0
        # a continuous replica's bookkeeping: admission order, and while decoding, the
        # replica's decode tick and chip-seconds-per-token accumulator when last synced
        self.seq = -1
        self.decoding = False
        self.tick0 = 0
        self.acc0 = 0.0

    @property
    def pending_prefill(self) -> int:
        """Tokens to prefill before decoding: the prompt, plus what was generated before a
        preemption discarded the KV cache (recomputed, as vLLM does)."""
        return self.prompt + self.generated - self.kv
