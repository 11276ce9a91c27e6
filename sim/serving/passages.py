"""Passages as objects: what retrieval returns for a query, and the prompt blocks they make.

With a corpus of `size` passages, a query's K passages are a fixed function of its key: each
is a draw from Zipf(alpha) over the corpus seeded by a hash of (key, position), redrawn until
the K are distinct, so the same query always retrieves the same passages and popular
passages come back across different queries. A passage's length is a fixed function of its
id (a quantile of the passage-length distribution at a hash of the id), so a passage is the
same size wherever it appears.

A summarization prompt is laid out `[instruction][passage][query]`: instruction plus passage
is the reusable prefix, cut into blocks of `block_tokens`. Block ids chain as in vLLM's
prefix caching: the instruction's whole blocks are shared by every prompt; the others belong
to one passage (`PASSAGE_STRIDE` ids each).
"""

from __future__ import annotations

import numpy as np

from sim.serving.arrivals import token_counts

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
LENGTH_TABLE = 1 << 16  # quantiles of the passage-length distribution a passage's id picks
PASSAGE_STRIDE = 1 << 20  # block ids per passage: room for any prompt's blocks
MAX_CORPUS = 50_000_000  # the Zipf table is 8 bytes a passage


def mix(x: np.ndarray, salt: int) -> np.ndarray:
    """A fixed 64-bit hash (splitmix64's finalizer) of int64 values and a salt."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + _GOLDEN * np.uint64(salt + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def unit(x: np.ndarray, salt: int) -> np.ndarray:
    """Uniforms in [0, 1) from a hash of x: the top 53 bits."""
    return (mix(x, salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class Corpus:
    def __init__(self, size: int, alpha: float, length_dist, seed: int):
        weights = np.arange(1, size + 1, dtype=np.float64) ** -alpha
        self._cdf = np.cumsum(weights / weights.sum())
        self._cdf[-1] = 1.0
        self.size, self.seed = size, seed
        rng = np.random.default_rng([seed, 7])  # the lengths' quantile table, fixed per seed
        self._lengths = np.sort(token_counts(length_dist, rng, LENGTH_TABLE))

    def passages(self, keys: np.ndarray, k: int) -> np.ndarray:
        """The K distinct passage ids of each query key, shape (n, K)."""
        n = len(keys)
        slots = keys.astype(np.int64)[:, None] * 4096 + np.arange(k, dtype=np.int64)[None, :]
        ids = self._draw(slots, 0)
        for salt in range(1, 64):  # redraw the later of any two equal ids
            dup = _duplicates(ids)
            if not dup.any():
                break
            ids[dup] = self._draw(slots[dup], salt)
        if k > self.size or n and _duplicates(ids).any():
            raise ValueError("a corpus too small for K distinct passages")
        return ids

    def _draw(self, slots: np.ndarray, salt: int) -> np.ndarray:
        u = unit(slots, self.seed * 64 + salt)
        return np.searchsorted(self._cdf, u, side="right").astype(np.int64)

    def lengths(self, ids: np.ndarray) -> np.ndarray:
        """Each passage's token count, the same wherever it appears."""
        u = unit(ids, self.seed * 64 + 63)
        return self._lengths[(u * LENGTH_TABLE).astype(np.int64)]


def _duplicates(ids: np.ndarray) -> np.ndarray:
    """Mask of entries equal to an earlier one in the same row."""
    order = np.argsort(ids, axis=1, kind="stable")
    s = np.take_along_axis(ids, order, axis=1)
    same = np.zeros_like(s, dtype=bool)
    same[:, 1:] = s[:, 1:] == s[:, :-1]
    out = np.zeros_like(same)
    np.put_along_axis(out, order, same, axis=1)
    return out


def prefix_chain(passage: int | None, instruction: int, passage_tokens: int,
                 block: int) -> tuple[int, ...]:
    """Block ids of a prompt's reusable prefix, `[instruction][passage]`: whole blocks only
    (the last partial one is never cached). Instruction-only blocks are shared (negative
    ids); the rest are the passage's (None: no passage, the instruction alone)."""
    shared = instruction // block
    if passage is None:
        return tuple(range(-1, -1 - shared, -1))
    total = (instruction + passage_tokens) // block
    base = passage * PASSAGE_STRIDE
    return tuple(range(-1, -1 - shared, -1)) + tuple(range(base + shared, base + total))
