"""Continuous (iteration-level) batching, as in Orca and vLLM, with optional chunked prefill
(Sarathi-Serve).

Between iterations the scheduler drops cancelled requests, admits waiting ones while the
batch size and the KV-cache memory allow, and prices the next iteration with the step-time
model. Memory is counted in tokens: a running request holds its context's keys and values.
When decoding would overflow memory, the most recently admitted request is preempted: its KV
is discarded and it rejoins the head of the queue, to be recomputed (a counted preemption). A
request that could never fit (prompt + output above capacity) is refused, also counted.

While the batch only decodes and nothing can change it, many iterations are priced at once
and slept through in one event; an arrival or a cancellation wakes the replica, which then
stops at the next iteration boundary. The result is identical to stepping one iteration at a
time, at a fraction of the events.
"""

from __future__ import annotations

import numpy as np

from sim.perf import prefill_pairs
from sim.stages.replica import Replica


class ContinuousReplica(Replica):
    def __init__(self, *args, kv_capacity_tokens: int, chunk_tokens: int | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.capacity = kv_capacity_tokens
        self.chunk_tokens = chunk_tokens
        self.kv_used = 0
        self.paused = False  # after a preemption, admit nothing until memory is freed

    # --- memory -----------------------------------------------------------------------

    def _hold(self, req, tokens: int) -> None:
        req.kv += tokens
        self.kv_used += tokens
        self.kv_peak = max(self.kv_peak, self.kv_used)
        self.levels.kv_tokens.add(self.env.now, tokens)

    def _release(self, req) -> None:
        self.kv_used -= req.kv
        self.levels.kv_tokens.add(self.env.now, -req.kv)
        req.kv = 0

    # --- admission, removal, preemption --------------------------------------------------

    def _remove(self, req, freed: bool = True) -> None:
        self.running.remove(req)
        self._release(req)
        self.levels.running.add(self.env.now, -1)
        if freed:
            self.paused = False

    def _drop_cancelled(self) -> None:
        for req in [r for r in self.running if r.cancelled]:
            self._remove(req)
            self.finish(req)

    def _committed(self) -> int:
        """Memory held plus memory promised to admitted requests' pending prefill."""
        return self.kv_used + sum(r.pending_prefill for r in self.running)

    def _admit(self) -> None:
        committed = self._committed()
        while self.queue and len(self.running) < self.max_batch and not self.paused:
            head = self.queue[0]
            if head.cancelled or head.prompt + head.output > self.capacity:
                self.take_waiting(1) if head.cancelled else self._refuse()
                continue
            if committed + head.pending_prefill + 1 > self.capacity:
                return
            committed += head.pending_prefill
            self.queue.popleft()
            self.levels.waiting.add(self.env.now, -1)
            if head.started != head.started:  # NaN: first admission
                head.started = self.env.now
            self.running.append(head)
            self.levels.running.add(self.env.now, 1)
        self.batch_peak = max(self.batch_peak, len(self.running))

    def _refuse(self) -> None:
        req = self.queue.popleft()
        self.levels.waiting.add(self.env.now, -1)
        req.refused = req.cancelled = True
        self.levels.refusals += 1
        self.finish(req)

    def _preempt_for_decode(self) -> None:
        """Free memory for the next decode step by preempting the newest admitted requests."""
        while len(self.running) > 1 and self._committed() + sum(
                1 for r in self.running if r.pending_prefill == 0) > self.capacity:
            victim = self.running[-1]
            self._remove(victim, freed=False)
            self.paused = True
            victim.preemptions += 1
            self.levels.preemptions += 1
            self.queue.appendleft(victim)
            self.levels.waiting.add(self.env.now, 1)

    # --- the scheduler loop ----------------------------------------------------------------

    def loop(self):
        while True:
            self._drop_cancelled()
            self._admit()
            if not self.running:
                yield self.sleep()
                continue
            self._preempt_for_decode()
            if any(r.pending_prefill for r in self.running):
                yield from self._mixed_iteration()
            else:
                yield from self._decode_run()

    def _begin(self) -> float:
        self.levels.busy_chips.add(self.env.now, self.chips)
        return self.env.now

    def _end(self, start: float, work: list[tuple[object, int]]) -> None:
        """Share the elapsed chip-time among requests in proportion to tokens processed."""
        elapsed = (self.env.now - start) * self.chips
        total = sum(n for _, n in work)
        for req, n in work:
            req.accel_s += elapsed * n / total
        self.levels.busy_chips.add(self.env.now, -self.chips)

    def _prefill_plan(self, decode_count: int) -> list[tuple[object, int]]:
        budget = None if self.chunk_tokens is None else max(0, self.chunk_tokens - decode_count)
        plan = []
        for req in self.running:
            need = req.pending_prefill
            if need == 0:
                continue
            take = need if budget is None else min(need, budget)
            if take > 0:
                plan.append((req, take))
            if budget is not None:
                budget -= take
                if budget <= 0:
                    break
        return plan

    def _mixed_iteration(self):
        env, start = self.env, self._begin()
        decoding = [r for r in self.running if r.pending_prefill == 0]
        plan = self._prefill_plan(len(decoding))
        if not plan and not decoding:  # a chunk budget smaller than the decodes
            plan = [(next(r for r in self.running if r.pending_prefill), 1)]
        pf_tokens = sum(n for _, n in plan)
        pf_pairs = sum(float(prefill_pairs(n, r.kv)) for r, n in plan)
        context = sum(r.kv for r in decoding)
        dt = float(self.step.iteration_time(pf_tokens, pf_pairs, len(decoding), context))
        for req, n in plan:
            self._hold(req, n)
            req.prefilled += n
        for req in decoding:
            self._hold(req, 1)
        yield env.timeout(dt)
        self._end(start, plan + [(r, 1) for r in decoding])
        self._emit(decoding, 1)

    def _decode_run(self):
        """Decode-only iterations until the first completion, an arrival or a cancellation."""
        env, start, n = self.env, self._begin(), len(self.running)
        left = min(r.output - r.generated for r in self.running)
        room = (self.capacity - self.kv_used) // n  # iterations before memory runs out
        steps = max(1, min(left, room))
        context = sum(r.kv for r in self.running)
        times = np.cumsum(np.broadcast_to(
            self.step.iteration_time(0, 0, n, context + n * np.arange(steps)), (steps,)))
        wake = self.sleep()
        yield wake | env.timeout(float(times[-1]))
        done = steps
        if wake.triggered and env.now - start < times[-1]:
            done = int(np.searchsorted(times, env.now - start, side="right")) + 1
            done = min(done, steps)
            yield env.timeout(max(0.0, start + float(times[done - 1]) - env.now))
        running = list(self.running)
        for req in running:
            self._hold(req, done)
        self._end(start, [(r, done) for r in running])
        self._emit(running, done, first_at=start + float(times[0]))

    def _emit(self, reqs, tokens: int, first_at: float | None = None) -> None:
        now = self.env.now
        for req in reqs:
            if req.generated == 0:
                req.first_token = now if first_at is None else first_at
            req.generated += tokens
            if req.generated >= req.output:
                self._remove(req)
                self.finish(req)
