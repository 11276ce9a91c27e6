"""Latency limits: how a query waits for its LLM responses under a deadline policy.

- `none`: wait for every response.
- `partial`: answer at the deadline with the responses finished by then; the rest are cancelled
  (their slots and memory freed); no response at all is a degraded answer.
- `degrade`: if no request has started by the deadline, cancel them all and answer with plain
  results (no LLM answer) at the deadline; otherwise wait for every response.
Cancelled work still costs what it consumed (its accelerator-seconds stay on its request).
"""

from __future__ import annotations

import math


def _remaining(env, arrival: float, deadline: float | None) -> float:
    return math.inf if deadline is None else arrival + deadline - env.now


def wait_for_responses(env, pool, reqs, everything, arrival: float, cfg):
    """A SimPy sub-process; returns (outcome, finished requests). `everything` is the
    event that succeeds when every request in `reqs` has finished."""
    left = _remaining(env, arrival, cfg.deadline_s)
    if not cfg.watches:
        yield everything
        return no_deadline(env, arrival, cfg), reqs
    if left > 0:
        yield everything | env.timeout(left)
    if all(r.is_done for r in reqs):
        return "met", reqs
    done = [r for r in reqs if r.is_done]
    if cfg.policy == "partial":
        for r in reqs:
            if not r.is_done:
                pool.cancel(r)
        return ("partial" if done else "degraded"), done
    if any(not math.isnan(r.started) for r in reqs):  # degrade: the LLM stage did start
        yield everything
        return "late", reqs
    for r in reqs:
        pool.cancel(r)
    return "degraded", []


def no_deadline(env, arrival: float, cfg) -> str:
    """The outcome of a query that waited for every response (no policy acts on its
    deadline): `none` without a deadline, else whether it met it."""
    return "none" if cfg.deadline_s is None else _late_or_met(env, arrival, cfg)


def _late_or_met(env, arrival: float, cfg) -> str:
    return "met" if env.now - arrival <= cfg.deadline_s else "late"
