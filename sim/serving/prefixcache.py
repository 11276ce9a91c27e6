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
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


class PrefixCache:
    def __init__(self, capacity_blocks: int, block_tokens: int):
        self.capacity = capacity_blocks
        self.block_tokens = block_tokens
        self._blocks: OrderedDict[int, int] = OrderedDict()  # hash -> pins, LRU first

    def __len__(self) -> int:
        return len(self._blocks)

    def __contains__(self, block: int) -> bool:
        return block in self._blocks

    def match(self, chain: Sequence[int]) -> int:
        """How many of the chain's leading blocks are cached (nothing changes)."""
        blocks, n = self._blocks, 0
        for b in chain:
            if b not in blocks:
                break
            n += 1
        return n

    def acquire(self, chain: Sequence[int], n: int) -> None:
        """A request reads the chain's first `n` blocks: pinned, and now most recent."""
        blocks = self._blocks
        for b in reversed(chain[:n]):
            blocks[b] += 1
            blocks.move_to_end(b)

    def release(self, chain: Sequence[int], n: int) -> None:
        """The request that read the first `n` blocks has left."""
        blocks = self._blocks
        for b in chain[:n]:
            if b in blocks:  # a failure may have cleared the cache since
                blocks[b] -= 1

    def insert(self, chain: Sequence[int]) -> int:
        """The chain's blocks were computed: keep them, most recent last, evicting the least
        recently used unpinned blocks for room; stops at the first block there is no room
        for (a later one could not be reached without it). Returns the blocks added."""
        blocks, added, kept = self._blocks, 0, 0
        if self.match(chain) == len(chain):  # all there (a hit's replica): recent again
            for b in reversed(chain):
                blocks.move_to_end(b)
            return 0
        for b in chain:
            if b not in blocks:
                if len(blocks) >= self.capacity and not self._evict_one():
                    break
                blocks[b] = 0
                added += 1
            blocks.move_to_end(b)
            kept += 1
        for b in reversed(chain[:kept]):  # the head most recent: the tail goes first
            blocks.move_to_end(b)
        return added

    def _evict_one(self) -> bool:
        for b, pins in self._blocks.items():
            if pins == 0:
                del self._blocks[b]
                return True
        return False

    def clear(self) -> None:
        """The replica failed: its memory, and every block in it, is gone."""
        self._blocks.clear()
