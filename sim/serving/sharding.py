"""Which shard a query belongs to: a fixed hash of its key, the same in every run and
process, so a shard holds every query with a given key (and its cache entries)."""

from __future__ import annotations

import numpy as np


def shard_of(keys: np.ndarray, shards: int) -> np.ndarray:
    """A query's shard from its key: a fixed 64-bit mix (splitmix64's finalizer), so the
    same query always lands on the same shard and its cache, in every run and process."""
    with np.errstate(over="ignore"):
        z = np.asarray(keys).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(shards)).astype(np.int64)
