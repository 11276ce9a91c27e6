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
(in closed form, `DecodeRun`) and slept through in one event; an arrival or a cancellation
interrupts the replica, which then stops at the next iteration boundary. The result is the
same as stepping one iteration at a time, at a fraction of the events.

Bookkeeping is O(1) per iteration whatever the batch: the decoding requests advance as one
group (`DecodingGroup`), and requests with prompt left are a list in admission order.

With a prefix cache (`prefix`), a share of the KV memory keeps the blocks of prompt prefixes
the replica computed. A request admitted with leading blocks cached reads them from there:
its prefill starts after them (attending over them), they count in its context (`kv`) but
not in its own memory (`reused`), and they are pinned until it leaves. Blocks are kept when
a prefill completes. A request reading cached blocks is preempted by recomputation, never
swapped.
"""

from __future__ import annotations

from dataclasses import dataclass

from simpy.events import Timeout

from sim.model.decoderun import DecodeRun
from sim.model.perf import pairs_of_chunk
from sim.serving.prefixcache import PrefixCache
from sim.serving.stages.decoding import DecodingGroup
from sim.serving.stages.replica import DECODE, IDLE, PREFILL, Replica
from sim.serving.stages.request import Request

# The clock is read as `env._now`, SimPy's own attribute behind its `now` property: this
# module reads it millions of times a run, and the property call costs 3% of the run
# (simpy is pinned below 5 in pyproject.toml for this and `Process._resume`).


@dataclass(frozen=True)
class Scheduling:
    """What the engine's scheduler decides beyond batch size and chunk budget (engine.py):

    - `policy`: "mixed" prices prompt chunks and decodes in the same iterations; with
      "prompt_first", an iteration with prompts to prefill is prompt-only (every decode
      waits), taking whole prompts up to `prompt_budget` tokens (vLLM V0);
    - `block_size`: admission counts KV memory in blocks of this many tokens (a request holds
      ceil(tokens / block) of them) and leaves `watermark_blocks` free;
    - `swap_s_per_token`: preemption moves the victim's KV to host memory over the host link
      at this many seconds per token (None: preemption discards it, to be recomputed), while
      the `swap_tokens` of host swap space last; the transfer delays the next iteration.
    """

    policy: str = "mixed"
    prompt_budget: int | None = None
    block_size: int = 1
    watermark_blocks: int = 0
    swap_s_per_token: float | None = None
    swap_tokens: int = 0


class ContinuousReplica(Replica):
    # a disaggregated prefill replica hands each request on once its prompt is prefilled:
    # handoff(request, KV tokens, seconds of the iteration that completed it)
    handoff = None

    # Iterations priced per decode-run event; 1 forces iteration-by-iteration stepping (the
    # oracle the fast path is tested against). None: as many as nothing can interrupt.
    max_run_steps: int | None = None
    # Debug mode: check the scheduler's invariants before every iteration (tests turn it on).
    check_invariants: bool = False

    def __init__(self, *args, kv_capacity_tokens: int, chunk_tokens: int | None = None,
                 scheduling: Scheduling | None = None,
                 prefix: tuple[float, int, int, float] | None = None, **kwargs):
        """`prefix`: (share of the KV memory, tokens per block, host-memory blocks, seconds
        to copy a block back from host memory) of a prefix cache."""
        super().__init__(*args, **kwargs)
        self.capacity: int = kv_capacity_tokens
        self.reused = 0  # tokens running requests read from the prefix cache
        self._host_s_per_block = 0.0
        if prefix is not None:
            share, block, host, self._host_s_per_block = prefix
            kept = int(kv_capacity_tokens * share) // block
            self.prefix = PrefixCache(kept, block, host)
            self.capacity -= kept * block
        self.chunk_tokens = chunk_tokens
        self.rules = scheduling or Scheduling()
        self.prompt_first = self.rules.policy == "prompt_first"
        self.blocks = self.capacity // self.rules.block_size  # KV blocks in all
        self._by_blocks = self.rules.block_size > 1 or self.rules.watermark_blocks > 0
        self._swap_s = 0.0  # swap transfers waiting to delay the next iteration
        self.kv_used = 0  # tokens held now
        self.committed = 0  # tokens held plus promised: sum of prompt + generated, running
        self.paused = False  # after a preemption, admit nothing until a request leaves
        self.prefilling: list[Request] = []  # running with prompt left, in admission order
        self._admissions = 0
        self.group = DecodingGroup()
        self._run: tuple | None = None  # (timer, run, start) of a decode run not yet cut
        self._active: tuple | None = None  # (run, start) of the decode run in progress
        self._cut: int | None = None  # iterations a cut decode run stops after
        self.busy = False  # an iteration is running or about to

    def _time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context
              ) -> tuple[float, bool]:
        """One iteration's seconds and whether it is compute-bound: the step model's scalar
        path where it has one (else any prompt tokens make it compute-bound)."""
        fast = getattr(self.step, "scalar_time", None)
        if fast is None:
            return float(self.step.iteration_time(prefill_tokens, prefill_attn, decode_seqs,
                                                  decode_context)), prefill_tokens > 0
        self._time = fast  # type: ignore[method-assign]
        return fast(prefill_tokens, prefill_attn, decode_seqs, decode_context)

    def kv_capacity(self) -> int | None:
        return self.capacity

    def _credit_completed(self) -> None:
        """A decode run in progress stops here (the simulation ends or the replica fails):
        it credits the iterations it has completed, as stepping one at a time would have."""
        if self._active is None:
            return
        run, start = self._active
        self._active = None
        done = run.finished_by(self.env._now - start)
        if done:
            n = self.group.n
            self.kv_used += done * n
            self._advance(done, run.elapsed(done) * self.chips / (done * n) * done)

    def settle(self) -> None:
        """The run is ending: a decode run in progress credits what it completed, then
        every request settles."""
        self._credit_completed()
        for req in self.running:
            if req.decoding:
                self.group.sync(req)

    def _evacuate(self) -> list[Request]:
        """A failure: the running requests keep what they had settled (the iteration in
        progress is lost), lose their KV, and leave with the queued ones."""
        now = self.env._now
        self._credit_completed()
        for req in self.running:
            if req.decoding:
                self.group.sync(req)
                req.decoding = False
            req.kv = req.reused = 0
        if self.prefix is not None:  # the cache is lost with the replica's memory
            self.prefix.clear()
        self.reused = 0
        running, self.running, self.prefilling = self.running, [], []
        if running:
            self.levels.running.add(now, -len(running))
        self.kv_used = self.committed = 0
        self._swap_s = 0.0
        self.group.reset()
        self.paused = False
        self._run = self._active = self._cut = None
        if self.busy:
            self.busy = False
            self.busy_change(-1)
        out = running + super()._evacuate()
        for req in out:  # host copies are lost with the replica's host
            req.swapped = 0
        return out

    def wake(self) -> None:
        if self._run is not None:
            self._cut_run()
        else:
            super().wake()

    def _cut_run(self) -> None:
        """An arrival or a cancellation during a decode run: the run stops at the end of the
        iteration in progress. The scheduler's process is moved from the run's timer to one
        for that boundary (the old timer fires later with no one waiting): one event per
        cut, where an interrupt would take two and an exception."""
        timer, run, start = self._run  # type: ignore[misc]
        self._run = None
        elapsed = self.env._now - start
        if elapsed >= run.total:  # the run ends now anyway
            return
        self._cut = run.done_by(elapsed)
        boundary = Timeout(self.env, start + run.elapsed(self._cut) - self.env._now)
        resume = self.process._resume  # type: ignore[union-attr]
        timer.callbacks.remove(resume)
        boundary.callbacks.append(resume)
        self.waiting_on = boundary

    # --- memory and the decoding group ------------------------------------------------------

    def _enter(self, req: Request) -> None:
        req.seq = self._admissions
        self._admissions += 1
        self.running.append(req)
        self.committed += req.prompt + req.generated - req.reused
        self.levels.running.add(self.env._now, 1)
        if req.pending_prefill:
            self.prefilling.append(req)
        else:
            self.group.join(req)

    def _leave(self, req: Request, freed: bool = True) -> None:
        if req.decoding:
            self.group.leave(req)
        else:
            self.prefilling.remove(req)
        self.running.remove(req)
        self.committed -= req.prompt + req.generated - req.reused
        self.kv_used -= req.kv - req.reused
        if req.reused:
            self.prefix.release(req.chain,  # type: ignore[union-attr]
                                req.reused // self.prefix.block_tokens)  # type: ignore[union-attr]
            self.reused -= req.reused
            req.reused = 0
        req.kv = 0
        self.levels.running.add(self.env._now, -1)
        self.paused = self.paused and not freed

    # --- admission, removal, preemption ------------------------------------------------------

    def _drop_cancelled(self) -> None:
        self.cancels = 0
        for req in [r for r in self.running if r.cancelled]:
            self._leave(req)
            self.finish(req)

    def _admit(self) -> None:
        budget = self._prompt_room() if self.prompt_first else None
        while self.queue and len(self.running) < self.max_batch and not self.paused:
            head = self.queue[0]
            if head.cancelled:
                head.swapped = 0
                self.take_waiting(1)
                continue
            if head.prompt + head.output > self.capacity:
                self._refuse()
                continue
            hit = self._cached_blocks(head) if self.prefix is not None else 0
            reuse = hit * self.prefix.block_tokens if hit else 0  # type: ignore[union-attr]
            if self.committed + head.prompt + head.generated - reuse + 1 > self.capacity:
                break
            if self._by_blocks and not self._blocks_allow(head, reuse):
                break
            if budget is not None:  # prompt-first: whole prompts within the token budget
                need = head.prompt + head.generated - head.swapped - head.transferred - reuse
                if need > budget and self.prefilling:
                    break
                budget -= need
            self.queue.popleft()
            self.levels.waiting.add(self.env._now, -1)
            if head.started != head.started:  # NaN: first admission
                head.started = self.env._now
            if head.swapped:
                self._swap_in(head)
            elif head.transferred:  # its KV came from the prefill pool
                head.kv, head.transferred = head.transferred, 0
                self.kv_used += head.kv
            elif hit:
                self._read_cached(head, hit)
            self._enter(head)
            self.batch_peak = max(self.batch_peak, len(self.running))

    def _cached_blocks(self, req: Request) -> int:
        """Leading blocks of the request's prompt it can read from the prefix cache: at
        least its last prompt token is computed (its logits give the first output token)."""
        if not req.chain or req.swapped or req.transferred:
            return 0
        most = (req.prompt - 1) // self.prefix.block_tokens  # type: ignore[union-attr]
        return min(self.prefix.match(req.chain[:most]), most)  # type: ignore[union-attr]

    def _read_cached(self, req: Request, blocks: int) -> None:
        tokens = blocks * self.prefix.block_tokens  # type: ignore[union-attr]
        copied = self.prefix.acquire(req.chain, blocks)  # type: ignore[union-attr]
        if copied:  # back from host memory first
            self._charge_copy(req, copied * self._host_s_per_block)
        req.kv = req.reused = tokens
        req.cached += tokens
        self.reused += tokens

    def _prompt_room(self) -> int:
        """Prompt tokens a prompt-first iteration may still take (those admitted but not yet
        prefilled count against it)."""
        left = self.rules.prompt_budget
        if left is None:
            return 1 << 62
        return left - sum(r.pending_prefill for r in self.prefilling)

    def _blocks_allow(self, head: Request, reuse: int = 0) -> bool:
        """Whether the KV blocks left, less the watermark, hold the head's prompt (and what
        it had generated) less what it reads from the prefix cache: each running request
        holds ceil(its own tokens / block) blocks."""
        size, tick = self.rules.block_size, self.group.tick
        need = -(-(head.prompt + head.generated - reuse) // size)
        room = self.blocks - need - self.rules.watermark_blocks
        # the blocks in use lie between committed / size and (committed + n (size - 1)) /
        # size: count them one by one only when the answer falls in between
        if self.committed + len(self.running) * (size - 1) <= room * size:
            return True
        if self.committed > room * size:
            return False
        used = 0
        for r in self.running:
            tokens = r.prompt + r.generated - r.reused + (tick - r.tick0 if r.decoding else 0)
            used += -(-tokens // size)
        return used <= room

    def _refuse(self) -> None:
        req = self.queue.popleft()
        self.levels.waiting.add(self.env._now, -1)
        req.refused = req.cancelled = True
        self.levels.refusals += 1
        self.finish(req)

    def _next_iteration(self) -> list[tuple[Request, int, bool]]:
        """The next iteration's prefill plan (empty when every request decodes), preempting
        the newest admitted until memory holds its new tokens: one per decoding request and
        one per request whose prefill it completes (that iteration samples a token)."""
        while True:
            new = 0 if self.prompt_first and self.prefilling else self.group.n
            if self.prefilling:
                plan = self._prefill_plan(new)
                for _, _, completes in plan:
                    new += completes
            else:
                plan = []
            if self.committed + new <= self.capacity or len(self.running) <= 1:
                return plan
            victim = self.running[-1]
            kept = self._swappable(victim)
            self._leave(victim, freed=False)
            if kept:
                victim.swapped = kept
                self._charge_copy(victim, kept * self.rules.swap_s_per_token)  # type: ignore[operator]
            self.paused = True
            victim.preemptions += 1
            self.levels.preemptions += 1
            self.queue.appendleft(victim)
            self.levels.waiting.add(self.env._now, 1)

    def _swappable(self, victim: Request) -> int:
        """KV tokens a preemption moves to host memory rather than discards: all of the
        victim's when the engine swaps and the swap space left holds them, else none."""
        if self.rules.swap_s_per_token is None:
            return 0
        if victim.decoding:
            self.group.sync(victim)
        if victim.reused:  # it reads cached blocks: recomputed, reading them again
            return 0
        in_host = sum(r.swapped for r in self.queue)
        return victim.kv if 0 < victim.kv <= self.rules.swap_tokens - in_host else 0

    def _swap_in(self, req: Request) -> None:
        """A swapped request comes back with its KV, copied from host memory (its time
        delays the next iteration and is charged to the request)."""
        kept, req.swapped = req.swapped, 0
        req.kv = kept
        self.kv_used += kept
        self._charge_copy(req, kept * self.rules.swap_s_per_token)  # type: ignore[operator]

    def _charge_copy(self, req: Request, seconds: float) -> None:
        """A copy of KV over the host link (a swap, or prefix blocks read back from host
        memory): it delays the next iteration and its chip-seconds are the request's."""
        self._swap_s += seconds
        req.accel_s += seconds * self.chips

    # --- the scheduler loop ------------------------------------------------------------------

    def loop(self):
        self.process = self.env.active_process  # however it was started
        while True:
            if self.down:
                yield self.wait(self.repaired)  # type: ignore[arg-type]
                continue
            if self.cancels:
                self._drop_cancelled()
            if self.queue:
                self._admit()
            if not self.running:
                if self.busy:
                    self.busy = False
                    self.busy_change(-1)
                    self.draw(IDLE)
                yield self.wait(self.sleep())
                continue
            plan = self._next_iteration()  # may preempt
            if not self.busy:  # the chips are busy from the first iteration to the last
                self.busy = True
                self.busy_change(+1)
            if self._swap_s:  # KV copies to or from host memory come first
                epoch, dt, self._swap_s = self.epoch, self._swap_s, 0.0
                self.waiting_on = timer = Timeout(self.env, dt)
                yield timer
                if epoch != self.epoch:
                    continue
            if self.check_invariants:
                self._check(plan)
            # each step flat here, not a sub-generator: the hottest path; the event goes
            # through `waiting_on` so that a failure can move the loop off it
            epoch = self.epoch
            if self.prefilling:  # one iteration
                start, dt, pf_tokens, decoding = self._price_mixed(plan)
                self.waiting_on = timer = Timeout(self.env, dt)
                yield timer
                if epoch == self.epoch:  # else it was lost with the replica
                    self._end_mixed(plan, start, pf_tokens, decoding)
            else:  # decode-only iterations until a completion, an arrival or a cancellation
                if self._state != DECODE:
                    self.draw(DECODE)
                self.waiting_on = timer = self._start_run()
                yield timer  # or the boundary `_cut_run` moved the loop to
                if epoch == self.epoch:
                    self._end_run()

    def _check(self, plan: list) -> None:
        """Raise if the state about to be priced breaks an invariant: batch within bounds,
        memory within capacity, token counts conserved, the decoding group's sums right."""
        running = self.running
        decoding = [r for r in running if r.decoding]
        for req in decoding:
            self.group.sync(req)
        group = self.group
        problems = [
            (len(running) <= self.max_batch, "batch above max_batch"),
            (self.kv_used == sum(r.kv - r.reused for r in running),
             "kv_used is not the requests' own KV"),
            (self.committed == sum(r.prompt + r.generated - r.reused for r in running),
             "committed is not prompt + generated, less reused, over running requests"),
            (self.reused == sum(r.reused for r in running) and
             all(r.reused <= r.kv for r in running), "reused tokens miscounted"),
            (self.kv_used <= self.committed <= self.capacity, "KV above the commitment or "
                                                              "the commitment above capacity"),
            (all(0 <= r.kv <= r.prompt + r.generated and r.generated < r.output
                 for r in running), "a request's KV or generated count out of range"),
            (all(r.pending_prefill == 0 for r in decoding), "a decoding request has prefill "
                                                            "left"),
            (self.prefilling == [r for r in running if not r.decoding],
             "prefilling is not the running requests with prompt left, in order"),
            (group.n == len(decoding) and group.context == sum(r.kv for r in decoding),
             "the decoding group's count or context is wrong"),
            (group.completion_ticks() == {(group.tick + r.output - r.generated, r.seq)
                                          for r in decoding},
             "a completion tick is wrong or missing"),
            (all(0 < n <= r.pending_prefill and done == (n == r.pending_prefill)
                 for r, n, done in plan), "a prefill chunk past the prompt, or mislabelled"),
        ]
        broken = [what for ok, what in problems if not ok]
        if broken:
            raise AssertionError(f"replica {self.index} at t={self.env._now}: "
                                 + "; ".join(broken))

    def _prefill_plan(self, decode_count: int) -> list[tuple[Request, int, bool]]:
        """(request, tokens, whether they complete its prefill) for each chunk, first
        admitted first, within the chunk budget left by the decodes."""
        plan = []
        if self.chunk_tokens is None or self.prompt_first:
            for req in self.prefilling:
                plan.append((req, req.prompt + req.generated - req.kv, True))
            return plan
        budget = self.chunk_tokens - decode_count
        for req in self.prefilling:
            if budget <= 0:
                break
            need = req.prompt + req.generated - req.kv  # its pending prefill (above 0)
            if need > budget:
                plan.append((req, budget, False))
                break
            plan.append((req, need, True))
            budget -= need
        if not plan and decode_count == 0:  # a budget smaller than one token: progress anyway
            head = self.prefilling[0]
            plan = [(head, 1, head.pending_prefill == 1)]
        return plan

    def _price_mixed(self, plan: list) -> tuple[float, float, int, int]:
        """An iteration of prefill chunks and decodes begins: (start, duration, prefill
        tokens, decoding requests)."""
        # prompt-first: a prompt-only iteration, every decode waits
        decoding = 0 if self.prompt_first else self.group.n
        pf_tokens, pf_pairs = 0, 0.0
        for req, n, _ in plan:  # attention pairs over the KV before the chunk, then the chunk
            pf_tokens += n
            pf_pairs += pairs_of_chunk(n, req.kv)
            req.kv += n
            req.prefilled += n
        dt, compute_bound = self._time(pf_tokens, pf_pairs, decoding,
                                       self.group.context if decoding else 0)
        # Splitwise's states: a compute-bound iteration draws prompt-phase power, a
        # memory-bound one (a small chunk among many decodes) token-phase power
        state = PREFILL if compute_bound else DECODE
        if state != self._state:
            self.draw(state)
        self.kv_used += pf_tokens + decoding
        return self.env._now, dt, pf_tokens, decoding

    def _end_mixed(self, plan: list, start: float, pf_tokens: int, decoding: int) -> None:
        now = self.env._now
        # elapsed chip-time shared among requests in proportion to tokens processed
        per_token = (now - start) * self.chips / (pf_tokens + decoding)
        # as in vLLM, TensorRT-LLM and SGLang, the iteration that completes a prefill samples
        # the request's first token (its KV slot is held from now, like a decoded token's)
        prefilled = []
        for req, n, completes in plan:
            req.accel_s += per_token * n
            if completes:
                req.kv += 1
                prefilled.append(req)
                if self.prefix is not None and req.chain:  # its prefix's blocks now exist
                    self.prefix.insert(req.chain)
        if decoding:
            self._advance(1, per_token)
        self.kv_used += len(prefilled)
        self.committed += len(prefilled)
        if self.kv_used > self.kv_peak:
            self.kv_peak = self.kv_used
        if self.group.any_due():
            self._complete_due()
        for req in prefilled:
            if req.generated == 0:
                req.first_token = now
            req.generated += 1
            if req.generated >= req.output:
                self._leave(req)
                self.finish(req)
            elif self.handoff is not None:  # on to the decode pool, with its KV
                tokens = req.kv
                self._leave(req)
                self.handoff(req, tokens, now - start)
            else:
                self.prefilling.remove(req)
                self.group.join(req)

    def _start_run(self) -> Timeout:
        """Price decode-only iterations up to the first completion (or memory's limit) and
        return the timer of their end."""
        n = self.group.n
        left = self.group.next_completion() - self.group.tick
        room = (self.capacity - self.committed) // n  # iterations before memory runs out
        steps = max(1, min(left, room, self.max_run_steps or left))
        if self.group.fresh:  # a request with an empty prompt: its first token ends the first
            steps = 1
        run = DecodeRun(self.step, n, self.kv_used + self.reused, steps)
        timer = Timeout(self.env, run.total)
        self._run, self._cut, self._active = (timer, run, self.env._now), None, (run, self.env._now)
        return timer

    def _end_run(self) -> None:
        """The run ended, at its last iteration or where it was cut."""
        run, start = self._active  # type: ignore[misc]
        self._run = self._active = None
        done, n = run.steps if self._cut is None else self._cut, self.group.n
        self.kv_used += done * n
        self._advance(done, (self.env._now - start) * self.chips / (done * n) * done)
        self.kv_peak = max(self.kv_peak, self.kv_used)
        self._complete_due()

    def _advance(self, ticks: int, chip_s_per_request: float) -> None:
        """The decoding group has had `ticks` more tokens each, at this many chip-seconds."""
        group = self.group
        self.committed += ticks * group.n
        group.advance(ticks, chip_s_per_request)
        if group.fresh:
            for req in group.fresh:
                if req.decoding and req.first_token != req.first_token:
                    req.first_token = self.env._now
            group.fresh.clear()

    def _complete_due(self) -> None:
        """Requests whose last token came in this iteration leave, in admission order."""
        for req in self.group.pop_due():
            self._leave(req)
            self.finish(req)
