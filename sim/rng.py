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
)


def streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children,
                                                                       strict=True)}
