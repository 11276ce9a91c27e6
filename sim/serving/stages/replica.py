"""What every LLM replica shares: a waiting queue, a wake-up event and the pool's monitors.

A replica is one long-lived SimPy process (its scheduler loop), not a process per request.
Schedulers subclass `Replica` and implement `loop`; building a replica starts nothing (the pool
starts the loops), so a test can build one and drive it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import simpy
from simpy.events import Timeout

from sim.model.catalog import Power
from sim.model.perf import StepModel
from sim.serving.monitor import Marks, new_level
from sim.serving.prefixcache import PrefixCache
from sim.serving.snapshot import ReplicaStats
from sim.serving.stages.request import Request

# The clock is read as `env._now`, SimPy's own attribute behind its `now` property: this
# module reads it millions of times a run, and the property call costs 3% of the run
# (simpy is pinned below 5 in pyproject.toml for this and `Process._resume`).


class PoolLevels:
    """Pool-wide levels: accelerators busy, requests waiting, requests running."""

    def __init__(self, marks: Marks | None = None):
        self.busy_chips = new_level(marks)
        self.busy_replicas = new_level(marks)
        self.busy_flops = new_level(marks)  # peak FLOP/s of the busy chips (MFU, mixed fleets)
        self.waiting = new_level(marks)
        self.running = new_level(marks)
        self.power_w = new_level(marks)  # watts drawn by the pool's accelerators
        self.up = new_level(marks)  # replicas up (not failed)
        self.preemptions = 0
        self.refusals = 0


IDLE, PREFILL, DECODE = 0, 1, 2  # power states: watts per chip from the catalog's `power`


class Replica:
    prefix: PrefixCache | None = None  # continuous batching may keep one

    def __init__(self, env: simpy.Environment, index: int, step: StepModel, chips: int,
                 max_batch: int, levels: PoolLevels, on_finish: Callable[[Request], None],
                 power: Power | None = None, peak_flops: float = 0.0, speed: float = 1.0):
        """`peak_flops` per chip (for MFU); `speed`: the replica's throughput relative to
        its pool's others (a mixed fleet's router weighs by it)."""
        self.env, self.index, self.step, self.chips = env, index, step, chips
        self.busy_s = 0.0  # busy time so far, and since when if busy now
        self._busy_since: float | None = None
        self.role = ""
        self.peak_flops, self.speed = peak_flops, speed
        self.max_batch = max_batch
        self.levels = levels
        self.on_finish = on_finish
        self.queue: deque[Request] = deque()
        self.running: list[Request] = []
        self.batch_peak = 0  # the largest batch this replica ran
        self.kv_peak = 0
        self._wake: simpy.Event | None = None
        self.cancels = 0  # cancellations since the scheduler last looked for them
        # watts per chip in each state (None: power not tracked); the pool counts the idle
        # draw of every replica from the start
        self._watts = None if power is None else (power.idle_w, power.prefill_w,
                                                   power.decode_w)
        self._state = IDLE
        self.process: simpy.Process | None = None  # the scheduler loop (the pool starts it)
        self.waiting_on: simpy.Event | None = None  # what the loop yielded last
        self.down = False
        self.epoch = 0  # failures so far: an iteration begun in an earlier epoch is lost
        self.repaired: simpy.Event | None = None

    def busy_change(self, sign: int) -> None:
        """The replica's chips become busy (+1) or idle (-1) now."""
        now, lv = self.env._now, self.levels
        if sign > 0:
            self._busy_since = now
        elif self._busy_since is not None:
            self.busy_s += now - self._busy_since
            self._busy_since = None
        lv.busy_chips.add(now, sign * self.chips)
        lv.busy_replicas.add(now, sign)
        lv.busy_flops.add(now, sign * self.chips * self.peak_flops)

    def draw(self, state: int) -> None:
        """The replica's chips are in `state` from now (idle, prefill or decode)."""
        if state != self._state and self._watts is not None:
            w = self._watts
            self.levels.power_w.add(self.env._now, self.chips * (w[state] - w[self._state]))
        self._state = state

    @property
    def outstanding(self) -> int:
        return len(self.queue) + len(self.running)

    def submit(self, req: Request) -> None:
        req.replica = self.index
        self.queue.append(req)
        self.levels.waiting.add(self.env._now, 1)
        self.wake()

    def wake(self) -> None:
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    def cancel(self, req: Request) -> None:
        """Stop work on a request: the scheduler drops it at its next chance."""
        req.cancelled = True
        self.cancels += 1
        self.wake()

    def sleep(self) -> simpy.Event:
        self._wake = self.env.event()
        return self._wake

    def take_waiting(self, n: int) -> list[Request]:
        """Up to n requests from the head of the queue; cancelled ones are dropped unserved."""
        taken: list[Request] = []
        while self.queue and len(taken) < n:
            req = self.queue.popleft()
            self.levels.waiting.add(self.env._now, -1)
            if req.cancelled:
                self.finish(req)  # recorded as cancelled, never served
                continue
            taken.append(req)
        return taken

    def finish(self, req: Request) -> None:
        req.finished = self.env._now
        self.on_finish(req)
        # told once; letting go of the waiter also breaks the request -> waiter -> query ->
        # request cycle, so the request is freed by reference counting, not by the collector
        waiter, req.waiter = req.waiter, None
        if waiter is not None:
            waiter.count()

    # --- failures ------------------------------------------------------------------------

    def wait(self, event: simpy.Event) -> simpy.Event:
        """Every event a scheduler loop yields passes through here, so a failure can move
        the loop off it."""
        self.waiting_on = event
        return event

    def fail(self) -> list[Request]:
        """The replica goes down: the iteration in progress is lost with it, the loop waits
        for `repair`; returns the requests it held (running, then queued), their KV gone."""
        self.down = True
        self.epoch += 1
        self.repaired = self.env.event()
        held = self._evacuate()
        self.draw(IDLE)  # a failed server is assumed to stay powered, idle
        self._jolt()
        return held

    def repair(self) -> None:
        self.down = False
        if self.repaired is not None:
            self.repaired.succeed()

    def _jolt(self) -> None:
        """Move the loop from the event it waits on to one that fires now, so it sees the
        failure at once (the event it left fires later with no one waiting)."""
        event, proc = self.waiting_on, self.process
        if event is None or proc is None or event.callbacks is None:
            return
        resume = proc._resume
        if resume in event.callbacks:
            event.callbacks.remove(resume)
            Timeout(self.env, 0.0).callbacks.append(resume)

    def _evacuate(self) -> list[Request]:
        """Empty the replica; schedulers add what they run to the queued requests."""
        queued = list(self.queue)
        self.queue.clear()
        if queued:
            self.levels.waiting.add(self.env._now, -len(queued))
        return queued

    def stats(self) -> ReplicaStats:
        busy = self.busy_s + (self.env._now - self._busy_since if self._busy_since is not None
                              else 0.0)
        return ReplicaStats(self.kv_capacity(), self.kv_peak, self.batch_peak, self.outstanding,
                            busy, self.role)

    def settle(self) -> None:
        """Bring every running request's counters up to now (before they are recorded)."""

    def kv_capacity(self) -> int | None:
        """KV-cache tokens, where the scheduler counts them."""
        return None

    def loop(self):
        raise NotImplementedError
