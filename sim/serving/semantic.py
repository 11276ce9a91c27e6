"""A semantic cache in front of the result cache: a query whose exact key misses can be
answered with the cached result of a near-duplicate.

Queries belong to clusters of near-duplicates: the distinct query keys (ranks of the
Zipf law) are cut into consecutive runs whose sizes are drawn from `cluster_size` (one
fixed draw per seed); a one-off query is a cluster of its own. On a miss, the lookup (an
embedding and a vector search, `lookup_s`) finds the cluster's most popular member with a
cached result. The pair is a true paraphrase with probability `paraphrase_share` and its
embedding distance (1 - similarity) is drawn from `paraphrase_distance` or, for a related
query with a different intent, from `other_distance`; the cached answer is served when the
distance is within 1 - threshold. A served answer from a non-paraphrase is a false hit.
A threshold of 1 admits nothing: the semantic cache is off and no lookup is made.
"""

from __future__ import annotations

import numpy as np

from sim.model.distributions import Buffered, Distribution, Uniform


class Clusters:
    def __init__(self, distinct: int, size: Distribution, rng: np.random.Generator):
        sizes: list[np.ndarray] = []
        total = 0
        while total < distinct:
            draw = np.maximum(1, np.rint(size.sample(rng, 4096))).astype(np.int64)
            sizes.append(draw)
            total += int(draw.sum())
        self._ends = np.cumsum(np.concatenate(sizes))
        self.distinct = distinct

    def members(self, key: int) -> range:
        """The keys of `key`'s cluster, most popular first (a one-off is alone)."""
        if key < 0 or key >= self.distinct:
            return range(key, key + 1)
        i = int(np.searchsorted(self._ends, key, side="right"))
        start = int(self._ends[i - 1]) if i else 0
        return range(start, min(int(self._ends[i]), self.distinct))


class SemanticCache:
    def __init__(self, cache, clusters: Clusters, cfg, rng: np.random.Generator):
        """`cache`: the result cache whose entries it reads (an LRU)."""
        self.cache, self.clusters = cache, clusters
        self.limit = 1.0 - cfg.threshold  # the largest distance served
        self.paraphrase_share = cfg.paraphrase_share
        u, near, other = rng.spawn(3)  # one stream per consumer
        self._u = Buffered(Uniform(0.0, 1.0), u)
        self._near = Buffered(cfg.paraphrase_distance.build(), near)
        self._other = Buffered(cfg.other_distance.build(), other)
        self.lookups = 0

    def near(self, key: int, now: float) -> tuple[bool, bool]:
        """(served, false hit) for a query whose own key missed."""
        self.lookups += 1
        cache = self.cache
        for member in self.clusters.members(key):
            if member != key and cache.peek(member, now):
                paraphrase = self._u.next() < self.paraphrase_share
                distance = (self._near if paraphrase else self._other).next()
                if distance <= self.limit:
                    cache.lookup(member, now)  # served: the entry is used
                    return True, not paraphrase
                return False, False
        return False, False

