"""A day of diurnal load: the fleet an autoscaler following the hourly profile would run,
hour by hour, against one provisioned for the peak hour all day.

Each hour is sized as a steady state at its rate (`rate_qps` x the profile's multiplier,
Poisson arrivals) with the same bisection as `sizing`: the fewest replicas of one candidate
whose runs are stable and whose attainment interval reaches the target. Hours of equal
multiplier are sized once; `bands` groups hours of nearby rates and sizes each group at its
highest. The peak is sized first and bounds every other hour's search (a lower rate never
needs more replicas, the same assumption the bisection makes); the hourly plan then takes
the running minimum from the peak down, so simulation noise never has a quieter hour
needing more than a busier one.

What it leaves out, so the autoscaled cost is a lower bound: an autoscaler that tracks the
profile exactly, hour by hour, with no lag, no start-up time for new replicas (weights to
load, caches to warm) and no headroom for forecast error. The plan scaled an hour ahead
(each hour runs the larger of its own fleet and the next hour's: new replicas have a whole
hour to start before the load rises) bounds it from above for any lag under an hour.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from sim.errors import Problem, SearchsimError
from sim.runner import sizing
from sim.runner.parallel import map_jobs
from sim.scenario import loading
from sim.scenario.schema import Scenario

HOURS = 24


@dataclass(frozen=True)
class Band:
    """Hours sized together, at the highest multiplier among them."""

    hours: tuple[int, ...]
    multiplier: float


def bands(profile: tuple[float, ...], count: int | None = None) -> list[Band]:
    """Every distinct multiplier its own band, or at most `count` bands of hours adjacent in
    rate (equal counts of hours, ties kept together), busiest first. Idle hours (multiplier 0)
    are in none: they need no fleet."""
    busy = sorted((m, h) for h, m in enumerate(profile) if m > 0)
    if count is not None and count < 1:
        raise SearchsimError(Problem("bands", count, "an integer >= 1"))
    size = 1 if count is None else math.ceil(len(busy) / count)  # hours a band fills to
    groups: list[list[tuple[float, int]]] = []
    for m, h in busy:
        if groups and (groups[-1][-1][0] == m or len(groups[-1]) < size):
            groups[-1].append((m, h))  # a tie always joins: equal rates, equal fleets
        else:
            groups.append([(m, h)])
    return [Band(tuple(sorted(h for _, h in g)), max(m for m, _ in g))
            for g in reversed(groups)]


def hour_scenario(s: Scenario, multiplier: float) -> Scenario:
    """The scenario in steady state at one hour's rate: Poisson at rate x multiplier."""
    raw = loading.to_dict(s)
    raw["workload"].update(arrival="poisson", rate_qps=s.workload.rate_qps * multiplier,
                           profile=None, start_hour=0.0)
    return loading.from_dict(raw)


def diurnal_profile(s: Scenario) -> tuple[float, ...]:
    if s.workload.arrival != "diurnal" or s.workload.profile is None:
        raise SearchsimError(Problem("workload.arrival", s.workload.arrival,
                                     "\"diurnal\" with a 24-hour profile (the day to follow)"))
    return s.workload.profile


def peak_scenario(s: Scenario) -> Scenario:
    """The scenario at its busiest hour's rate, where candidates are ranked."""
    return hour_scenario(s, max(diurnal_profile(s)))


def usd_per_hour(s: Scenario, c: sizing.Candidate, replicas: int) -> tuple[int, float]:
    """(accelerators, $ per hour) of `replicas` of the candidate (per shard when sampled)."""
    llm = sizing.candidate_scenario(s, c, replicas).llm
    main = llm.replicas * llm.tp
    other = sum(g.replicas * g.tp for g in llm.groups)
    return main + other, main * c.usd_per_chip_hour + other * c.mix_usd_per_chip_hour


def _job(args):
    return sizing.size_candidate(*args)


def size_day(s: Scenario, c: sizing.Candidate, peak: dict, lo: int, target: float,
             seeds: tuple[int, ...], count: int | None = None, jobs: int = 1,
             progress: Callable[[int, int], None] | None = None, backend: str = "local",
             address: str | None = None) -> dict:
    """The hourly plan for candidate `c`, whose sizing at the peak hour is `peak` (a row of
    `sizing.size` on `peak_scenario(s)`): each other band sized within [lo, the peak's
    replicas], then the day's cost autoscaled and provisioned for the peak."""
    profile = diurnal_profile(s)
    if peak["result"] is None:
        raise SearchsimError(Problem("replicas", peak["probes"][-1]["replicas"],
                                     "a range in which the peak hour can be met: "
                                     + peak["advice"]))
    top = peak["replicas_per_shard"] or peak["replicas"]  # the search's own unit
    groups = bands(profile, count)
    rest = map_jobs(_job, [(hour_scenario(s, b.multiplier), c, min(lo, top), top, target, seeds)
                           for b in groups[1:]], jobs, progress, backend, address)
    found = [top, *(row["replicas_per_shard"] or row["replicas"] for row in rest)]
    return _day(s, c, profile, groups, found, plan_of(found), [peak, *rest])


def plan_of(found: list[int | None]) -> list[int]:
    """Replicas per band, busiest first, from what each band's search found (None: not met
    even at the peak's fleet): the running minimum down from the peak, so a quieter band
    never runs more than a busier one (a miss keeps the busier band's fleet)."""
    plan: list[int] = []
    for r in found:
        cap = plan[-1] if plan else r
        assert cap is not None  # the peak band was met
        plan.append(cap if r is None else min(cap, r))
    return plan


def _day(s, c, profile, groups, found, plan, rows) -> dict:
    """The bands (what each search found, the plan, its result and probes), the 24 hours'
    fleets, and the day's cost both ways."""
    per_hour: list[tuple[int, int, float]] = [(0, 0, 0.0)] * HOURS  # replicas, chips, $/h
    band_rows = []
    shards = s.run.shards if sizing.sampled(s) else 1  # the plan counts replicas per shard
    for b, f, p, row in zip(groups, found, plan, rows, strict=True):
        chips, usd = usd_per_hour(s, c, p)
        for h in b.hours:
            per_hour[h] = (p * shards, chips, usd)
        band_rows.append({"hours": list(b.hours), "multiplier": b.multiplier,
                          "rate_qps": s.workload.rate_qps * b.multiplier,
                          "met": f is not None,  # else even the peak's fleet missed
                          "replicas_found": None if f is None else f * shards,
                          "replicas": p * shards, "accelerators": chips,
                          "result": row["result"], "probes": row["probes"]})
    queries = sum(s.workload.rate_qps * m * 3600.0 for m in profile)  # a day's queries
    peak_chips, peak_usd = per_hour[groups[0].hours[0]][1:]
    auto_usd = sum(u for _, _, u in per_hour)
    ahead = hour_ahead(per_hour)
    ahead_usd = sum(u for _, _, u in ahead)
    return {"candidate": rows[0]["candidate"], "bands": band_rows,
            "hours": [{"hour": h, "multiplier": profile[h],
                       "rate_qps": s.workload.rate_qps * profile[h], "replicas": r,
                       "accelerators": chips} for h, (r, chips, _) in enumerate(per_hour)],
            "autoscaled": _cost(s, sum(ch for _, ch, _ in per_hour), auto_usd, queries),
            "autoscaled_hour_ahead": _cost(s, sum(ch for _, ch, _ in ahead), ahead_usd,
                                           queries),
            "peak_provisioned": _cost(s, HOURS * peak_chips, HOURS * peak_usd, queries),
            "saving": 1.0 - auto_usd / (HOURS * peak_usd),
            "saving_hour_ahead": 1.0 - ahead_usd / (HOURS * peak_usd)}


def hour_ahead(per_hour: list[tuple]) -> list[tuple]:
    """Each hour's fleet scaled an hour ahead: the larger of its own and the next hour's
    (the day wraps), compared by replicas."""
    return [max(per_hour[h], per_hour[(h + 1) % HOURS], key=lambda x: x[0])
            for h in range(HOURS)]


def _cost(s: Scenario, accelerator_hours: float, usd: float, queries: float) -> dict:
    per_query = usd / queries
    revenue = s.economics.revenue_per_query
    return {"accelerator_hours": accelerator_hours, "usd_per_day": usd,
            "cost_per_query": per_query,
            "revenue_share": per_query / revenue}
