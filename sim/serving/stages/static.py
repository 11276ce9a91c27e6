"""Static batching: up to B requests (or whatever arrived within a maximum wait) run together;
prefill, then decode until the longest member finishes. Shorter members keep their slot (as
padding) until the batch ends, which is where static batching loses throughput."""

from __future__ import annotations

import numpy as np

from sim.model.perf import decode_times, prefill_pairs
from sim.serving.stages.replica import DECODE, IDLE, PREFILL, Replica
from sim.serving.stages.request import Request


class StaticReplica(Replica):
    def __init__(self, *args, max_wait: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_wait = max_wait
        # the running batch's start, duration, each member's share of its chip-time (by
        # tokens) and what has been billed so far
        self._batch: tuple = (0.0, 0.0, None)
        self._billed = 0.0

    def _gather(self):
        """Wait for a first request, then up to `max_wait` for the batch to fill."""
        env = self.env
        while not self.queue and not self.down:
            yield self.wait(self.sleep())
        deadline = env.now + self.max_wait
        while len(self.queue) < self.max_batch and env.now < deadline and not self.down:
            yield self.wait(self.sleep() | env.timeout(deadline - env.now))

    def schedule(self, prompts: np.ndarray, outputs: np.ndarray
                 ) -> tuple[float, np.ndarray, float]:
        """(batch duration, each member's finish offset, first-token offset). The prefill
        iteration samples every member's first token; `longest - 1` decode iterations follow."""
        size, longest = len(prompts), int(outputs.max())
        prefill = float(self.step.iteration_time(prompts.sum(), prefill_pairs(prompts).sum(),
                                                 0, 0))
        decode = decode_times(self.step, size, prompts.sum() + size, longest - 1)
        ends = prefill + np.concatenate([[0.0], np.cumsum(decode)])
        return float(ends[-1]), ends[outputs - 1], prefill

    def loop(self):
        self.process = self.env.active_process  # however it was started
        while True:
            if self.down:
                yield self.wait(self.repaired)  # type: ignore[arg-type]
                continue
            yield from self._gather()
            if self.down:
                continue
            batch = self.take_waiting(self.max_batch)
            if not batch:
                continue
            yield from self._run(batch)

    def _run(self, batch):
        env, start, epoch = self.env, self.env.now, self.epoch
        prompts = np.array([r.prompt for r in batch])
        outputs = np.array([r.output for r in batch])
        duration, ends, first = self.schedule(prompts, outputs)
        work = prompts + outputs
        shares = duration * self.chips * work / work.sum()
        self.running = batch
        self._batch, self._billed = (start, duration, shares), 0.0
        self.batch_peak = max(self.batch_peak, len(batch))
        self.levels.running.add(start, len(batch))
        self.busy_change(+1)
        for r in batch:  # a member retried after a failure keeps what it was billed before
            r.started, r.first_token = start, start + first
            r.prefilled += r.prompt
            r.generated = r.output
        self.draw(PREFILL)
        yield self.wait(env.timeout(first))  # every member finishes at or after its first token
        if epoch != self.epoch:  # the batch was lost with the replica
            return
        self.draw(DECODE)
        order = np.argsort(ends, kind="stable")
        for k, i in enumerate(order):
            # never negative: `now` is start + first, summed in floating point
            yield self.wait(env.timeout(max(0.0, start + ends[i] - env.now)))
            if epoch != self.epoch:
                return
            self._bill(batch[i], shares[i] * ends[i] / duration if k < len(order) - 1
                       and duration > 0 else shares.sum() - self._billed)
            self.finish(batch[i])
        yield self.wait(env.timeout(max(0.0, start + duration - env.now)))
        if epoch != self.epoch:
            return
        self.busy_change(-1)
        self.levels.running.add(env.now, -len(batch))
        self.draw(IDLE)
        self.running = []

    def _bill(self, req: Request, chip_s: float) -> None:
        req.accel_s += float(chip_s)
        self._billed += float(chip_s)

    def _evacuate(self) -> list[Request]:
        """A failure mid-batch: the members not yet finished leave with nothing generated,
        billed together what the batch's chip-time so far leaves after the finished members'
        bills (each finished member paid its share up to its finish; the slots they held as
        padding since are the running members' to pay), in proportion to their shares."""
        now, running = self.env.now, [r for r in self.running if r.finished != r.finished]
        if self.running:
            start, _, shares = self._batch
            owed = (now - start) * self.chips - self._billed
            weights = {id(r): s for r, s in zip(self.running, shares, strict=True)}
            total = sum(weights[id(r)] for r in running)
            for r in running:
                self._bill(r, max(0.0, owed) * weights[id(r)] / total if total else 0.0)
                r.generated = 0
            self.busy_change(-1)
            self.levels.running.add(now, -len(self.running))
            self.running = []
        return running + super()._evacuate()
