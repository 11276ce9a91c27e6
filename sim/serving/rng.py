"""Independent random streams per component, spawned from one scenario seed.

The list is append-only: a new component takes a new name at the end, so adding one never
shifts the draws of the others (SeedSequence.spawn gives child i the same state whatever
comes after it).
"""

from __future__ import annotations

import numpy as np

STREAMS = (
    "arrivals",
    "query_ids",
    "query_tokens",
    "response_tokens",
    "passage_tokens",
    "retrieval_service",
    "cache",
    "thinning",
    "trace",
    "faults",
    "cache_flush",
    "fault_domains",
    "retrieval_faults",
    "semantic",
)


# Drawn where the work happens rather than per arrival: in a sharded run each shard needs its
# own, or shards would repeat one another's service times and cache draws.
PER_SHARD = ("retrieval_service", "cache", "faults", "cache_flush", "fault_domains",
             "retrieval_faults", "semantic")


def streams(seed: int, shard: int | None = None, own_arrivals: bool = False
            ) -> dict[str, np.random.Generator]:
    """The scenario's streams. Arrival-side streams are the same in every shard (each shard
    draws the whole stream and keeps its own queries: common random numbers); with a `shard`,
    the work-side streams are that shard's own. With `own_arrivals` (a sampled shard drawing
    only its own queries) every stream is the shard's."""
    if shard is not None and own_arrivals:
        children = np.random.SeedSequence([seed, shard, 1]).spawn(len(STREAMS))
        return {name: np.random.default_rng(c) for name, c in zip(STREAMS, children,
                                                                  strict=True)}
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    out = {name: np.random.default_rng(child) for name, child in zip(STREAMS, children,
                                                                      strict=True)}
    if shard is not None:
        own = np.random.SeedSequence([seed, shard]).spawn(len(PER_SHARD))
        out.update({name: np.random.default_rng(c) for name, c in zip(PER_SHARD, own,
                                                                       strict=True)})
    return out
