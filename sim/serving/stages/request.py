"""One LLM request: a prompt to prefill and an output to generate, with its timestamps."""

from __future__ import annotations

import math
from collections.abc import Callable

import simpy


class Countdown(simpy.Event):
    """Succeeds when `n` requests have finished: what a query waits on for its responses
    (one event, where a condition over n request events would take n + 1)."""

    def __init__(self, env: simpy.Environment, n: int):
        super().__init__(env)
        self.left = n

    def count(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.succeed()


class Callback:
    """Calls `then` when `n` requests have finished, at the moment the last one does: what
    a query no process waits on needs (no event at all)."""

    __slots__ = ("left", "then")

    def __init__(self, n: int, then: Callable[[], None]):
        self.left, self.then = n, then

    def count(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.then()


class Request:
    __slots__ = ("rid", "qid", "prompt", "output", "submitted", "started", "first_token",
                 "finished", "replica", "accel_s", "waiter", "generated", "prefilled",
                 "cancelled", "preemptions", "kv", "refused", "seq", "decoding", "tick0",
                 "acc0", "arrival", "lost", "retries", "swapped", "chain", "reused", "cached",
                 "transferred", "transfer_s")

    def __init__(self, env: simpy.Environment, rid: int, qid: int, prompt: int, output: int,
                 waiter: Countdown | Callback | None = None, arrival: float = math.nan,
                 chain: tuple[int, ...] = ()):
        self.rid, self.qid, self.prompt, self.output = rid, qid, prompt, output
        self.submitted = env.now
        self.started = math.nan
        self.first_token = math.nan
        self.finished = math.nan
        self.replica = -1
        self.accel_s = 0.0
        self.waiter = waiter  # told when this request finishes
        self.arrival = arrival  # its query's
        self.lost = False  # its replica failed and the fault policy gave it up
        self.retries = 0  # times its replica failed under it and it started over elsewhere
        self.generated = 0  # output tokens produced so far
        self.prefilled = 0  # prefill tokens processed, recomputation after preemption included
        self.kv = 0  # tokens whose keys and values are in the replica's memory now
        self.cancelled = False
        self.refused = False  # could never fit in the replica's KV memory
        self.preemptions = 0
        self.swapped = 0  # KV tokens held in host memory after a swapping preemption
        # prefix caching: the prompt's cacheable blocks, the tokens of them read from the
        # replica's prefix cache while it runs (in its `kv`, not in its own memory), and the
        # tokens reused over all its admissions (prefill it skipped)
        self.chain = chain
        self.reused = 0
        self.cached = 0
        # disaggregated serving: KV tokens that arrived from the prefill pool, waiting for a
        # decode replica to admit them; and the seconds spent moving KV between the pools
        self.transferred = 0
        self.transfer_s = 0.0
        # a continuous replica's bookkeeping: admission order, and while decoding, the
        # replica's decode tick and chip-seconds-per-token accumulator when last synced
        self.seq = -1
        self.decoding = False
        self.tick0 = 0
        self.acc0 = 0.0

    @property
    def is_done(self) -> bool:
        """Finished, cancelled or refused."""
        return self.finished == self.finished  # not NaN

    @property
    def pending_prefill(self) -> int:
        """Tokens to prefill before decoding: the prompt, plus what was generated before a
        preemption discarded the KV cache (recomputed, as vLLM does)."""
        return self.prompt + self.generated - self.kv
