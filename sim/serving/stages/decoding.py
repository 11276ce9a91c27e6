"""The decoding requests of a continuous-batching replica, as one group.

Every decoding request gains one token per iteration, so the group advances together: it
keeps their count, their total context, a tick (tokens each has had since the replica
started) and a running sum of chip-seconds per token. A request records the tick and the sum
when it joins and settles the difference when it leaves (`sync`); completions come off a
heap of the ticks at which each request is done (entries of requests that left early are
skipped: lazy deletion). Everything is O(1) per iteration, O(log n) per request.
"""

from __future__ import annotations

from heapq import heappop, heappush

from sim.serving.stages.request import Request


class DecodingGroup:
    __slots__ = ("n", "context", "tick", "acc", "_heap", "fresh")

    def __init__(self):
        self.n = 0  # requests decoding
        self.context = 0  # their total context (KV tokens)
        self.tick = 0  # decode tokens each has had, since the start
        self.acc = 0.0  # chip-seconds per decode token, summed since the start
        self._heap: list[tuple[int, int, Request]] = []  # (done at tick, seq, request)
        self.fresh: list[Request] = []  # joined with no token yet (an empty prompt)

    def sync(self, req: Request) -> None:
        """Settle a decoding request's tokens and chip-seconds up to now."""
        gained = self.tick - req.tick0
        req.kv += gained
        req.generated += gained
        req.accel_s += self.acc - req.acc0
        req.tick0, req.acc0 = self.tick, self.acc

    def join(self, req: Request) -> None:
        req.decoding = True
        req.tick0, req.acc0 = self.tick, self.acc
        self.n += 1
        self.context += req.kv
        heappush(self._heap, (self.tick + req.output - req.generated, req.seq, req))
        if req.generated == 0:
            self.fresh.append(req)

    def leave(self, req: Request) -> None:
        self.sync(req)
        req.decoding = False
        self.n -= 1
        self.context -= req.kv

    def advance(self, ticks: int, chip_s_per_request: float) -> None:
        """Every member has had `ticks` more tokens, at this many chip-seconds each."""
        self.tick += ticks
        self.acc += chip_s_per_request
        self.context += ticks * self.n

    @staticmethod
    def _current(entry: tuple[int, int, Request]) -> bool:
        return entry[2].decoding and entry[2].seq == entry[1]

    def next_completion(self) -> int:
        """The tick at which the first member is done."""
        heap = self._heap
        while not self._current(heap[0]):
            heappop(heap)
        return heap[0][0]

    def any_due(self) -> bool:
        return bool(self._heap) and self._heap[0][0] <= self.tick

    def pop_due(self) -> list[Request]:
        """Members done by now, in admission order."""
        heap, done = self._heap, []
        while heap and heap[0][0] <= self.tick:
            entry = heappop(heap)
            if self._current(entry):
                done.append(entry[2])
        return done

    def completion_ticks(self) -> set[tuple[int, int]]:
        """(done at tick, seq) of every member: for invariant checks."""
        return {(t, s) for t, s, r in self._heap if self._current((t, s, r))}

    def reset(self) -> None:
        """Everyone left (the replica failed); the tick and the sum carry on."""
        self.n = self.context = 0
        self._heap, self.fresh = [], []
