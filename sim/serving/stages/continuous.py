"""Continuous (iteration-level) batching, as in Orca and vLLM, with optional chunked prefill
(Sarathi-Serve).

Between iterations the scheduler drops cancelled requests, admits waiting ones while the
batch size and the KV-cache memory allow, and prices the next iteration with the step-time
model. Memory is counted in tokens: a running request holds its context's keys and values,
and admission promises it room for its whole prompt. When decoding would overflow memory, the
most recently admitted request is preempted: its KV is discarded and it rejoins the head of
the queue, to be recomputed later (a counted preemption); nothing is admitted again until a
request leaves. A request that could never fit (prompt + output above capacity) is refused,
also counted.

While the batch only decodes and nothing can change it, many iterations are priced at once
and slept through in one event; an arrival or a cancellation wakes the replica, which then
stops at the next iteration boundary. The result is identical to stepping one iteration at a
time, at a fraction of the events.
"""

from __future__ import annotations

import numpy as np

from sim.model.perf import decode_times, prefill_pairs
from sim.serving.stages.replica import Replica
from sim.serving.stages.request import Request


class ContinuousReplica(Replica):
    # Iterations priced per decode-run event; 1 forces iteration-by-iteration stepping (the
    # oracle the fast path is tested against). None: as many as nothing can interrupt.
    max_run_steps: int | None = None
    # Debug mode: check the scheduler's invariants before every iteration (tests turn it on).
    check_invariants: bool = False

    def __init__(self, *args, kv_capacity_tokens: int, chunk_tokens: int | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.capacity: int = kv_capacity_tokens
        self.chunk_tokens = chunk_tokens
        self.kv_used = 0  # tokens held now
        self.committed = 0  # tokens held plus promised: sum of prompt + generated, running
        self._kv_logged = 0
        self.paused = False  # after a preemption, admit nothing until a request leaves

    def kv_capacity(self) -> int | None:
        return self.capacity

    # --- memory ----------------------------------------------------------------------------

    def _log_kv(self) -> None:
        self.kv_peak = max(self.kv_peak, self.kv_used)
        if self.kv_used != self._kv_logged:
            self.levels.kv_tokens.add(self.env.now, self.kv_used - self._kv_logged)
            self._kv_logged = self.kv_used

    def _enter(self, req) -> None:
        self.running.append(req)
        self.committed += req.prompt + req.generated
        self.levels.running.add(self.env.now, 1)

    def _leave(self, req, freed: bool = True) -> None:
        self.running.remove(req)
        self.committed -= req.prompt + req.generated
        self.kv_used -= req.kv
        req.kv = 0
        self.levels.running.add(self.env.now, -1)
        self.paused = self.paused and not freed

    # --- admission, removal, preemption ------------------------------------------------------

    def _drop_cancelled(self) -> None:
        for req in [r for r in self.running if r.cancelled]:
            self._leave(req)
            self.finish(req)

    def _admit(self) -> None:
        while self.queue and len(self.running) < self.max_batch and not self.paused:
            head = self.queue[0]
            if head.cancelled:
                self.take_waiting(1)
                continue
            if head.prompt + head.output > self.capacity:
                self._refuse()
                continue
            if self.committed + head.pending_prefill + 1 > self.capacity:
                break
            self.queue.popleft()
            self.levels.waiting.add(self.env.now, -1)
            if head.started != head.started:  # NaN: first admission
                head.started = self.env.now
            self._enter(head)
        self.batch_peak = max(self.batch_peak, len(self.running))

    def _refuse(self) -> None:
        req = self.queue.popleft()
        self.levels.waiting.add(self.env.now, -1)
        req.refused = req.cancelled = True
        self.levels.refusals += 1
        self.finish(req)

    def _next_iteration(self, decoding: list) -> list[tuple[Request, int]]:
        """The next iteration's prefill plan (empty when every request decodes), preempting
        the newest admitted until memory holds its new tokens: one per decoding request and
        one per request whose prefill it completes (that iteration samples a token)."""
        while True:
            plan = self._prefill_plan(len(decoding)) if len(decoding) < len(self.running) \
                else []
            new = len(decoding) + sum(1 for req, n in plan if n == req.pending_prefill)
            if len(self.running) <= 1 or self.committed + new <= self.capacity:
                return plan
            victim = self.running[-1]
            self._leave(victim, freed=False)
            self.paused = True
            victim.preemptions += 1
            self.levels.preemptions += 1
            self.queue.appendleft(victim)
            self.levels.waiting.add(self.env.now, 1)
            if victim in decoding:
                decoding.remove(victim)

    # --- the scheduler loop ------------------------------------------------------------------

    def loop(self):
        while True:
            self._drop_cancelled()
            self._admit()
            if not self.running:
                self._log_kv()
                yield self.sleep()
                continue
            decoding = [r for r in self.running if r.pending_prefill == 0]
            plan = self._next_iteration(decoding)  # may preempt: trims `decoding` in place
            self._log_kv()
            if self.check_invariants:
                self._check(decoding, plan)
            if len(decoding) < len(self.running):
                yield from self._mixed_iteration(decoding, plan)
            else:
                yield from self._decode_run()

    def _check(self, decoding: list, plan: list) -> None:
        """Raise if the state about to be priced breaks an invariant: batch within bounds,
        memory within capacity, token counts conserved."""
        running = self.running
        problems = [
            (len(running) <= self.max_batch, "batch above max_batch"),
            (self.kv_used == sum(r.kv for r in running), "kv_used is not the requests' KV"),
            (self.committed == sum(r.prompt + r.generated for r in running),
             "committed is not prompt + generated over running requests"),
            (self.kv_used <= self.committed <= self.capacity, "KV above the commitment or "
                                                              "the commitment above capacity"),
            (all(0 <= r.kv <= r.prompt + r.generated and r.generated < r.output
                 for r in running), "a request's KV or generated count out of range"),
            (all(r.pending_prefill == 0 for r in decoding), "a decoding request has prefill "
                                                            "left"),
            (all(0 < n <= r.pending_prefill for r, n in plan), "a prefill chunk past the "
                                                              "prompt"),
        ]
        broken = [what for ok, what in problems if not ok]
        if broken:
            raise AssertionError(f"replica {self.index} at t={self.env.now}: "
                                 + "; ".join(broken))

    def _begin(self) -> float:
        self.levels.busy_chips.add(self.env.now, self.chips)
        return self.env.now

    def _end(self, start: float, work: list[tuple[Request, int]], total: int) -> None:
        """Share the elapsed chip-time among requests in proportion to tokens processed."""
        per_token = (self.env.now - start) * self.chips / total
        for req, n in work:
            req.accel_s += per_token * n
        self.levels.busy_chips.add(self.env.now, -self.chips)

    def _prefill_plan(self, decode_count: int) -> list[tuple[Request, int]]:
        budget = None if self.chunk_tokens is None else self.chunk_tokens - decode_count
        plan = []
        for req in self.running:
            need = req.pending_prefill
            if need == 0:
                continue
            take = need if budget is None else min(need, budget)
            if take <= 0:
                break
            plan.append((req, take))
            if budget is not None:
                budget -= take
        if not plan and decode_count == 0:  # a budget smaller than one token: progress anyway
            plan = [(next(r for r in self.running if r.pending_prefill), 1)]
        return plan

    def _mixed_iteration(self, decoding: list, plan: list):
        env, start = self.env, self._begin()
        pf_tokens = sum(n for _, n in plan)
        pf_pairs = sum(float(prefill_pairs(n, r.kv)) for r, n in plan)
        context = sum(r.kv for r in decoding)
        dt = float(self.step.iteration_time(pf_tokens, pf_pairs, len(decoding), context))
        for req, n in plan:
            req.kv += n
            req.prefilled += n
        for req in decoding:
            req.kv += 1
        self.kv_used += pf_tokens + len(decoding)
        yield env.timeout(dt)
        self._end(start, plan + [(r, 1) for r in decoding], pf_tokens + len(decoding))
        # as in vLLM, TensorRT-LLM and SGLang, the iteration that completes a prefill samples
        # the request's first token (its KV slot is held from now, like a decoded token's)
        prefilled = [r for r, _ in plan if r.pending_prefill == 0]
        for req in prefilled:
            req.kv += 1
        self.kv_used += len(prefilled)
        self._emit(decoding + prefilled, 1)

    def _decode_run(self):
        """Decode-only iterations until the first completion, an arrival or a cancellation."""
        env, start, n = self.env, self._begin(), len(self.running)
        left = min(r.output - r.generated for r in self.running)
        room = (self.capacity - self.committed) // n  # iterations before memory runs out
        steps = max(1, min(left, room, self.max_run_steps or left))
        times = np.cumsum(decode_times(self.step, n, self.kv_used, steps))
        wake = self.sleep()
        yield wake | env.timeout(float(times[-1]))
        done = steps
        if wake.triggered and env.now - start < times[-1]:
            done = min(steps, int(np.searchsorted(times, env.now - start, side="right")) + 1)
            yield env.timeout(max(0.0, start + float(times[done - 1]) - env.now))
        running = list(self.running)
        for req in running:
            req.kv += done
        self.kv_used += done * n
        self._end(start, [(r, done) for r in running], done * n)
        self._emit(running, done)

    def _emit(self, reqs, tokens: int) -> None:
        now = self.env.now
        self.committed += tokens * len(reqs)
        self.kv_peak = max(self.kv_peak, self.kv_used)
        for req in reqs:
            if req.generated == 0:
                req.first_token = now
            req.generated += tokens
            if req.generated >= req.output:
                self._leave(req)
                self.finish(req)
