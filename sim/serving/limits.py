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


def wait_for_responses(env, pool, reqs, arrival: float, cfg):
    """A SimPy sub-process; returns (outcome, finished requests)."""
    def everything():
        # a fresh condition each time: SimPy detaches a nested condition's checks once the
        # outer one fires, so a condition is never waited on twice
        return env.all_of([r.done for r in reqs])

    left = _remaining(env, arrival, cfg.deadline_s)
    if cfg.policy == "none" or cfg.deadline_s is None:
        yield everything()
        return ("none" if cfg.deadline_s is None else _late_or_met(env, arrival, cfg)), reqs
    if left > 0:
        yield everything() | env.timeout(left)
    if all(r.done.triggered for r in reqs):
        return "met", reqs
    done = [r for r in reqs if r.done.triggered]
    if cfg.policy == "partial":
        for r in reqs:
            if not r.done.triggered:
                pool.cancel(r)
        return ("partial" if done else "degraded"), done
    if any(not math.isnan(r.started) for r in reqs):  # degrade: the LLM stage did start
        yield everything()
        return "late", reqs
    for r in reqs:
        pool.cancel(r)
    return "degraded", []


def _late_or_met(env, arrival: float, cfg) -> str:
    return "met" if env.now - arrival <= cfg.deadline_s else "late"
