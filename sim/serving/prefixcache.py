"""A replica's prefix cache: KV blocks kept after the requests that computed them, by block
hash, so a later request whose prompt starts with the same blocks skips their prefill.

A prompt's reusable prefix is a chain of block hashes (block i stands for the tokens before
it too, as in vLLM's automatic prefix caching and the Mooncake trace's `hash_ids`); a
request reuses the longest run of its chain's leading blocks that are cached. Blocks in use
by a running request are pinned; when room is needed, the least recently used unpinned
block goes first (LRU at block granularity). A chain's blocks are made recent from its tail
to its head, so the head is the most recent and a chain loses its tail first (vLLM frees a
request's blocks in reverse order for the same reason). A block whose predecessor was
evicted is still kept but cannot be reached until the predecessor returns, as in vLLM.

With a host-memory tier (`host_blocks`), a block evicted from HBM moves to host memory (least
recently used first out of it too); a request can read a block from there once it is copied
back into HBM, which needs room (a free slot or an unpinned block outside its chain): the
replica charges the copy over the host link.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


class PrefixCache:
    def __init__(self, capacity_blocks: int, block_tokens: int, host_blocks: int = 0):
        self.capacity = capacity_blocks
        self.block_tokens = block_tokens
        self._blocks: OrderedDict[int, int] = OrderedDict()  # hash -> pins, LRU first
        self.host_capacity = host_blocks
        self._host: OrderedDict[int, None] = OrderedDict()  # evicted to host, LRU first
        self._pinned = 0  # blocks in HBM with a pin

    def __len__(self) -> int:
        return len(self._blocks)

    def __contains__(self, block: int) -> bool:
        return block in self._blocks

    def match(self, chain: Sequence[int]) -> int:
        """How many of the chain's leading blocks a request could read now: cached in HBM,
        or in host memory with room in HBM to copy them back (nothing changes)."""
        if self._host:
            return self._readable(chain)
        blocks = self._blocks
        for n, b in enumerate(chain):  # the router's hot loop: kept bare
            if b not in blocks:
                return n
        return len(chain)

    def _readable(self, chain: Sequence[int]) -> int:
        blocks, host = self._blocks, self._host
        # room: free slots, and unpinned blocks outside the chain that can be evicted
        outside = len(blocks) - self._pinned - sum(1 for b in chain if blocks.get(b) == 0)
        room, n = self.capacity - len(blocks) + outside, 0
        for b in chain:
            if b in blocks:
                n += 1
            elif b in host and room > 0:
                room -= 1
                n += 1
            else:
                break
        return n

    def acquire(self, chain: Sequence[int], n: int) -> int:
        """A request reads the chain's first `n` blocks (as `match` allows): pinned, and now
        most recent; those in host memory are copied back first. Returns how many were."""
        blocks, lead = self._blocks, chain[:n]
        back = [b for b in lead if b not in blocks]
        for b in back:
            del self._host[b]
        short = len(back) - (self.capacity - len(blocks))
        if short > 0:
            self._evict(short, set(chain))
        for b in reversed(lead):
            pins = blocks.get(b, 0)
            if pins == 0:
                self._pinned += 1
            blocks[b] = pins + 1
            blocks.move_to_end(b)
        return len(back)

    def release(self, chain: Sequence[int], n: int) -> None:
        """The request that read the first `n` blocks has left."""
        blocks = self._blocks
        for b in chain[:n]:
            if b in blocks:  # a failure may have cleared the cache since
                blocks[b] -= 1
                if blocks[b] == 0:
                    self._pinned -= 1

    def insert(self, chain: Sequence[int]) -> int:
        """The chain's blocks were computed: keep them, the head most recent, evicting the
        least recently used unpinned blocks for room (never the chain's own); the chain is
        kept up to the first block there is no room for (a later one could not be reached
        without it). Returns the blocks added."""
        blocks = self._blocks
        missing = [b for b in chain if b not in blocks]
        if self._host:  # computed again: a copy in host memory is superseded
            for b in missing:
                self._host.pop(b, None)
        kept, short = len(chain), 0
        if missing:
            short = len(missing) - (self.capacity - len(blocks))
            if short > 0:
                short -= self._evict(short, set(chain))
            if short > 0:  # no room for the last `short` missing blocks: cut before them
                first_left_out = missing[len(missing) - short]
                kept = chain.index(first_left_out)
        for b in reversed(chain[:kept]):  # tail first, so that the head is the most recent
            if b in blocks:
                blocks.move_to_end(b)
            else:
                blocks[b] = 0
        return len(missing) - max(short, 0)

    def _evict(self, n: int, keep: set) -> int:
        """Evict up to `n` least recently used unpinned blocks not in `keep`, in one pass;
        returns how many went."""
        blocks, out = self._blocks, []
        for b, pins in blocks.items():
            if pins == 0 and b not in keep:
                out.append(b)
                if len(out) == n:
                    break
        host, room = self._host, self.host_capacity
        for b in out:
            del blocks[b]
            if room:  # to host memory, its least recent out first
                host[b] = None
                if len(host) > room:
                    host.popitem(last=False)
        return len(out)

    def clear(self) -> None:
        """The replica failed: its memory, and every block in it, is gone (its host's too)."""
        self._blocks.clear()
        self._host.clear()
        self._pinned = 0
