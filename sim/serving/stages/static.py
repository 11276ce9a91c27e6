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
        self._batch: tuple = (0.0, 0.0, None)  # the running batch's start, duration, shares

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
        self._batch = (start, duration, shares)
        self.batch_peak = max(self.batch_peak, len(batch))
        self.levels.running.add(start, len(batch))
        self.busy_change(+1)
        for r, share in zip(batch, shares, strict=True):
            r.started, r.first_token, r.accel_s = start, start + first, float(share)
            r.prefilled, r.generated = r.prompt, r.output
        self.draw(PREFILL)
        yield self.wait(env.timeout(first))  # every member finishes at or after its first token
        if epoch != self.epoch:  # the batch was lost with the replica
            return
        self.draw(DECODE)
        for i in np.argsort(ends, kind="stable"):
            # never negative: `now` is start + first, summed in floating point
            yield self.wait(env.timeout(max(0.0, start + ends[i] - env.now)))
            if epoch != self.epoch:
                return
            self.finish(batch[i])
        yield self.wait(env.timeout(max(0.0, start + duration - env.now)))
        if epoch != self.epoch:
            return
        self.busy_change(-1)
        self.levels.running.add(env.now, -len(batch))
        self.draw(IDLE)
        self.running = []

    def _evacuate(self) -> list[Request]:
        """A failure mid-batch: the members not yet finished leave, billed the share of
        their batch's chip-time elapsed so far, with nothing generated."""
        now, running = self.env.now, [r for r in self.running if r.finished != r.finished]
        if self.running:
            start, duration, _ = self._batch
            done = min(1.0, (now - start) / duration) if duration > 0 else 1.0
            for r in running:
                r.accel_s *= done
                r.generated = 0
            self.busy_change(-1)
            self.levels.running.add(now, -len(self.running))
            self.running = []
        return running + super()._evacuate()
