"""Closed-form queueing results the simulator must agree with (docs/modelling.md section 8).

lam: arrival rate, mu: service rate per server, c: servers, a = lam/mu, rho = a/c.
"""

from __future__ import annotations

import math


def erlang_c(c: int, a: float) -> float:
    """P(wait > 0) in M/M/c, computed stably through the Erlang B recursion."""
    if a >= c:
        return 1.0
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1 - b))


def mmc_mean_wait(lam: float, mu: float, c: int) -> float:
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mmc_wait_exceeds(lam: float, mu: float, c: int, t: float) -> float:
    return erlang_c(c, lam / mu) * math.exp(-(c * mu - lam) * t)


def mg1_mean_wait(lam: float, mean_service: float, scv: float) -> float:
    """Pollaczek-Khinchine: Wq = rho (1 + Cs^2) / (2 mu (1 - rho)); M/D/1 is scv = 0."""
    rho = lam * mean_service
    if rho >= 1:
        return math.inf
    return rho * (1 + scv) * mean_service / (2 * (1 - rho))


def mg1_ps_mean_sojourn(lam: float, mean_service: float) -> float:
    """M/G/1 processor sharing: E[T] = E[S] / (1 - rho), whatever the service distribution."""
    rho = lam * mean_service
    return math.inf if rho >= 1 else mean_service / (1 - rho)
