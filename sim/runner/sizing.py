"""Fleet sizing: the cheapest fleet that meets a latency target at a scenario's load.

For each candidate (hardware, tensor-parallel degree, batch size), a bisection over the
replica count finds the fewest replicas whose run is stable and meets the SLO-attainment
target; candidates are then ranked by provisioned cost per query. Bisection assumes that
adding replicas never hurts attainment, which holds for these routers and schedulers up to
simulation noise; every probe's result is returned so a reader can check. Candidates run in
parallel on a process pool (or Ray).

At internet scale the scenario samples shards (`run.sample_shards` of `run.shards`): the
search is then over replicas per shard (the fleet is that times the shards), each probe
simulates only the sampled shards, and cost per query and revenue share come with their 95%
intervals between shards. The first probe, at the top of the range, also brackets the
search: a fleet whose capacity at full batches is below the offered load cannot be stable,
so replica counts below hi x offered / sustainable are never simulated.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sim.analysis.fleetlabel import fleet_label
from sim.errors import Problem, SearchsimError
from sim.model import catalog, perf, pricing
from sim.runner.api import run
from sim.runner.parallel import map_jobs, report
from sim.scenario import loading
from sim.scenario.schema import Scenario


@dataclass(frozen=True)
class Candidate:
    hardware: str
    tp: int
    max_batch: int
    price: str | float  # a catalog price key or kind of `hardware`, or $ per chip-hour
    usd_per_chip_hour: float = 0.0
    price_source: str = ""  # provider, kind and date of the price, for the reader
    price_date: str = ""  # YYYY-MM of a catalog price ("" for a given or owned price)
    # a mixed fleet: this share of the replicas on other hardware at its own degree
    mix: tuple[str, int, float] | None = None  # (hardware, tp, share)
    mix_usd_per_chip_hour: float = 0.0
    # a disaggregated fleet: `hardware` at `tp` prefills, `decode` = (hardware, tp) decodes,
    # `ratio` = (prefill, decode) replicas per unit; the search counts units
    decode: tuple[str, int] | None = None
    ratio: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        return fleet_label(asdict(self))


@dataclass(frozen=True)
class Probe:
    """One fleet size, run once per seed. Attainment counts complete answers within slo_s."""

    replicas: int
    seeds: tuple[int, ...]
    stable: bool  # in every replication
    slo_attainment: float | None  # mean over the replications
    attainment_low: float | None  # lower end of its 95% Student-t interval (= mean for one)
    attainments: tuple[float, ...]
    complete_fraction: float | None
    latency_p99_s: float | None  # mean over the replications
    cost_per_query_provisioned: float | None
    revenue_share: float | None
    slo_miss_cause: str | None  # the commonest over the replications
    # sampled shards: 95% intervals of the first replication's estimates; None otherwise
    cost_per_query_ci95: tuple[float, float] | None = None
    revenue_share_ci95: tuple[float, float] | None = None
    # capacity at full batches over the offered load (first replication): below 1 the
    # fleet cannot keep up
    capacity_ratio: float | None = None
    # the misses by kind (means over the replications): shares of the missed queries cut by
    # the deadline and unfinished, and of the answered misses' time spent waiting
    miss_cut_fraction: float | None = None
    miss_unfinished_fraction: float | None = None
    miss_queueing_share: float | None = None

    def meets(self, target: float) -> bool:
        """Stable in every replication, and the interval's lower end at the target."""
        return self.stable and self.attainment_low is not None and \
            self.attainment_low >= target


def _mean(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def lower_bound(values: list[float]) -> float:
    """Lower end of a two-sided 95% Student-t interval over independent replications of a
    share, never below 0 (an attainment cannot be negative)."""
    if len(values) < 2:
        return values[0]
    from scipy.stats import t as student_t

    n, mean = len(values), sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return max(0.0, mean - float(student_t.ppf(0.975, n - 1)) * sd / math.sqrt(n))


# Weights may fill at most this share of a replica's memory when sizing proposes a
# tensor-parallel degree: the rest is for activations and a KV cache worth batching.
WEIGHTS_SHARE_OF_HBM = 0.9


def smallest_tp(model: str, hardware: str, bytes_per_param: float) -> int:
    """The smallest power-of-two tensor-parallel degree whose memory holds the weights."""
    need = perf.weights_held(catalog.model(model), bytes_per_param)
    have = catalog.accelerator(hardware).hbm_bytes
    return 2 ** math.ceil(math.log2(max(1.0, need / (WEIGHTS_SHARE_OF_HBM * have))))


def sampled(s: Scenario) -> bool:
    return s.run.sample_shards is not None and s.run.sample_shards < s.run.shards


def candidate_scenario(s: Scenario, c: Candidate, replicas: int) -> Scenario:
    """The scenario with the candidate's hardware at `replicas` (per shard when the
    scenario samples shards)."""
    raw = loading.to_dict(s)
    per = s.run.shards if sampled(s) else 1
    raw["economics"]["price"] = c.price
    if c.ratio is not None and c.decode is not None:  # `replicas` units of the ratio
        pre = {"hardware": c.hardware, "tp": c.tp, "replicas": c.ratio[0] * replicas * per}
        dec = {"hardware": c.decode[0], "tp": c.decode[1],
               "replicas": c.ratio[1] * replicas * per}
        raw["llm"]["disaggregated"].update(prefill=pre, decode=dec)
        raw["llm"].update(hardware=c.hardware, tp=c.tp, max_batch=c.max_batch,
                          replicas=pre["replicas"], groups=[dec])
        return loading.from_dict(raw)
    raw["llm"].pop("disaggregated", None)  # a co-located candidate of a disaggregated one
    first, groups = replicas, []
    if c.mix is not None:  # `replicas` in all, split by the share (one of each at least)
        hw, tp, share = c.mix
        other = min(replicas - 1, max(1, round(share * replicas)))
        first, groups = replicas - other, [{"hardware": hw, "tp": tp, "replicas": other * per}]
    raw["llm"].update(hardware=c.hardware, tp=c.tp, max_batch=c.max_batch,
                      replicas=first * per, groups=groups)
    return loading.from_dict(raw)


def probe(s: Scenario, c: Candidate, replicas: int, seeds: tuple[int, ...] = (),
          share: Callable[[float], None] | None = None) -> Probe:
    """Run the candidate at `replicas` once per seed (the scenario's own seed by default);
    `share(fraction)` of the probe's runs done, as they go."""
    base = candidate_scenario(s, c, replicas)
    seeds = seeds or (s.run.seed,)

    def one(i: int, seed: int) -> dict:
        def part(f: float) -> None:
            if share is not None:
                share((i + f) / len(seeds))
        return run(base.model_copy(update={"run": base.run.model_copy(update={"seed": seed})}),
                   part, tables="discard").summary

    sums = [one(i, seed) for i, seed in enumerate(seeds)]
    att = [x["slo_attainment"] for x in sums if x["slo_attainment"] is not None]
    causes = [x["slo_miss_cause"] for x in sums if x["slo_miss_cause"] is not None]
    return Probe(replicas, tuple(seeds), all(x["stable"] for x in sums),
                 _mean(att), lower_bound(att) if att else None, tuple(att),
                 _mean([x["complete_fraction"] for x in sums]),
                 _mean([x["latency_p99_s"] for x in sums]),
                 _mean([x["cost_per_query_provisioned"] for x in sums]),
                 _mean([x["revenue_share"] for x in sums]),
                 max(set(causes), key=causes.count) if causes else None,
                 _pair(sums[0].get("cost_per_query_provisioned_ci95")),
                 _pair(sums[0].get("revenue_share_ci95")),
                 sums[0]["sustainable_qps"] / sums[0]["offered_qps"]
                 if sums[0]["sustainable_qps"] and sums[0]["offered_qps"] else None,
                 _mean([x.get("slo_miss_cut_fraction") for x in sums]),
                 _mean([x.get("slo_miss_unfinished_fraction") for x in sums]),
                 _mean([x.get("slo_miss_queueing_share") for x in sums]))


def _pair(ci) -> tuple[float, float] | None:
    return None if ci is None else (float(ci[0]), float(ci[1]))


def expected_probes(lo: int, hi: int) -> int:
    """Probes a bisection over [lo, hi] runs at most: the top, then log2 of the range."""
    return 1 + math.ceil(math.log2(hi - lo + 1))


def size_candidate(s: Scenario, c: Candidate, lo: int, hi: int, target: float,
                   seeds: tuple[int, ...] = (),
                   share: Callable[[float], None] | None = report) -> dict:
    """Bisection for the fewest replicas in [lo, hi] that meet the target; `share(f)` of the
    search done as it goes (of the most probes it can take; default: to the running job)."""
    probes: dict[int, Probe] = {}
    most = expected_probes(lo, hi) + 1  # + the probe below the top when nothing passes
    tell = share or (lambda f: None)

    def ok(r: int) -> bool:
        if r not in probes:
            done = len(probes)
            probes[r] = probe(s, c, r, seeds, lambda f: tell((done + f) / most))
            tell(len(probes) / most)
        return probes[r].meets(target)

    best = None
    if ok(hi):
        best, left, right = hi, _bracket(probes[hi], lo, hi), hi - 1
        while left <= right:
            mid = (left + right) // 2
            if ok(mid):
                best, right = mid, mid - 1
            else:
                left = mid + 1
    chosen = probes.get(best) if best is not None else None
    advice = None
    if chosen is None:
        if _replicas_may_help(probes[hi]) is None and hi - 1 >= max(1, lo):
            ok(hi - 1)  # one fleet fewer: whether attainment still rises with replicas
        advice = _advice(probes, hi)
    per = s.run.shards if sampled(s) else 1
    return {"candidate": asdict(c), "replicas": None if best is None else best * per,
            "replicas_per_shard": best if sampled(s) else None,
            "accelerators": None if best is None else candidate_scenario(s, c, best).llm.chips,
            "result": None if chosen is None else asdict(chosen),
            "probes": [asdict(probes[r]) for r in sorted(probes)],
            "marginal": chosen is not None and chosen.attainment_low is not None
            and chosen.attainment_low - target < MARGINAL,
            "advice": advice}


BRACKET_SLACK = 0.9


def _bracket(top: Probe, lo: int, hi: int) -> int:
    """The fewest replicas worth simulating: capacity at full batches scales with the
    replica count, and below the offered load no fleet is stable (10% slack for the
    capacity estimate's use of mean lengths)."""
    if top.capacity_ratio is None:
        return lo
    return max(lo, min(hi, math.ceil(BRACKET_SLACK * hi / top.capacity_ratio)))


# a pass whose interval's lower end is within this of the target is reported as marginal
MARGINAL = 0.01
# below this capacity at full batches over the offered load a fleet runs near saturation,
# where replicas shorten queues whatever the misses look like
NEAR_CAPACITY = 1.25


def _replicas_may_help(top: Probe) -> bool | None:
    """Whether more replicas would help, from the largest fleet tried alone: True when its
    misses are queueing or overload, or it runs near capacity; None when it cannot say."""
    if not top.stable or top.slo_miss_cause in ("queueing", "unfinished"):
        return True
    if top.capacity_ratio is not None and top.capacity_ratio < NEAR_CAPACITY:
        return True
    return None


def _rising(probes: dict[int, Probe], hi: int) -> bool:
    """Whether attainment still rises with replicas up to `hi` (by more than half a point
    over any smaller fleet tried)."""
    top = probes[hi].slo_attainment
    return top is not None and any(
        p.slo_attainment is not None and top > p.slo_attainment + 0.005
        for r, p in probes.items() if r < hi)


def _advice(probes: dict[int, Probe], hi: int) -> str:
    """What to widen when even the largest fleet tried misses the target: never "replicas
    will not help" while attainment still rises with them or the fleet runs near capacity."""
    top = probes[hi]
    cause = top.slo_miss_cause or ("unstable" if not top.stable else "below target")
    if _replicas_may_help(top) or _rising(probes, hi):
        load = f", capacity {top.capacity_ratio:.2f}x the load" if top.capacity_ratio else ""
        return (f"not met at {hi} replicas (misses from {cause}{load}): add replicas, "
                f"widen --replicas above {hi}")
    return (f"at {hi} replicas the misses come from service time (the responses take longer "
            "than slo_s to generate), and attainment no longer rises with replicas: more "
            "replicas will not fix it; try a higher --tp, faster --hardware, a smaller "
            "--max-batch, shorter outputs or a longer slo_s / deadline_s")


def _job(args):
    return size_candidate(*args)


def tp_options(model: str, hardware: str, bytes_per_param: float, most: int = 8) -> list[int]:
    """Powers of two from the smallest degree that holds the weights up to `most`: more
    chips per replica shorten each decode step, which a tight deadline may need."""
    tp, out = smallest_tp(model, hardware, bytes_per_param), list[int]()
    while tp <= max(most, out[0] if out else tp):
        out.append(tp)
        tp *= 2
    return out


def price_basis(s: Scenario, hardware: list[str], price_kind: str | None) -> str | float:
    """One price basis for every candidate: `price_kind` if given; the scenario's own price
    when only its hardware is sized; otherwise the kind of the scenario's price (on-demand,
    1-year, ...), so different accelerators are never ranked on different kinds of price."""
    if price_kind is not None:
        if price_kind not in pricing.PRICE_KINDS:
            raise SearchsimError(Problem("--price-kind", price_kind,
                                         "one of: " + ", ".join(pricing.PRICE_KINDS)))
        return price_kind
    price = s.economics.price
    if set(hardware) == {s.llm.hardware}:  # the scenario's own hardware: its own price
        return price
    if isinstance(price, int | float):
        raise SearchsimError(Problem("--price-kind", None, "a price kind to compare "
                                     f"{', '.join(hardware)} on one basis (the scenario's price "
                                     "is a plain $/chip-hour)"))
    return pricing.basis_of(s.llm.hardware, price)


def _priced(s: Scenario, hw: str, price: str | float) -> pricing.Quote:
    if price == "owned":  # capital + energy, at full power for the ranking
        return pricing.Quote(s.economics.owned.chip_hour_at_full_power(hw),
                             "owned: capital + energy (hosts' included) at full power")
    if isinstance(price, int | float):
        return pricing.Quote(float(price), "the scenario's $/chip-hour")
    return pricing.quote(hw, price, s.economics.price_date)


def unmeasured(s: Scenario, cands: list[Candidate]) -> list[str]:
    """The candidates' accelerators whose chip family the scenario's step profile has no
    fit for: their efficiencies are the catalog's assumed defaults, not measured."""
    if s.llm.step_model != "roofline":
        return []
    profile = s.llm.engine_spec.step_profile(s.llm.profile)
    hardware = dict.fromkeys([c.hardware for c in cands] +
                             [c.mix[0] for c in cands if c.mix] +
                             [c.decode[0] for c in cands if c.decode])
    return [hw for hw in hardware if not profile.covers(catalog.accelerator(hw))]


def price_spread(cands: list[Candidate]) -> tuple[int, str, str] | None:
    """(months between, earliest, latest) of the catalog prices the candidates are ranked on,
    when they are further apart than pricing.STALE_MONTHS."""
    return pricing.spread([c.price_date for c in cands])


def candidates(s: Scenario, hardware: list[str], batches: list[int],
               tps: list[int] | None, price_kind: str | None = None) -> list[Candidate]:
    price = price_basis(s, hardware, price_kind)
    out = []
    for hw in hardware:
        q = _priced(s, hw, price)
        degrees = tps if tps else tp_options(s.llm.model, hw, s.llm.weight_bytes)
        out += [Candidate(hw, d, b, price, q.usd_per_chip_hour, q.source, q.date) for d in degrees
                for b in batches]
    return out


def seeds_of(s: Scenario, replications: int) -> tuple[int, ...]:
    """The seeds each probe runs: the scenario's, then the next ones."""
    if replications < 1:
        raise SearchsimError(Problem("replications", replications, "an integer >= 1"))
    return tuple(s.run.seed + i for i in range(replications))


def size(s: Scenario, cands: list[Candidate], lo: int, hi: int, target: float,
         jobs: int = 1, replications: int = 3,
         progress: Callable[[int, int], None] | None = None, backend: str = "local",
         address: str | None = None) -> list[dict]:
    """Every candidate's smallest passing fleet, cheapest first (failures last). Each probe
    runs `replications` seeds (the scenario's, then the next ones); a fleet passes when the
    lower end of its attainment interval reaches the target."""
    seeds = seeds_of(s, replications)
    if not 1 <= lo <= hi:
        raise SearchsimError(Problem("replicas", f"{lo}:{hi}", "1 <= low <= high"))
    if not 0 < target <= 1:
        raise SearchsimError(Problem("target", target, "a fraction in (0, 1]"))
    lows = [max(lo, 2) if c.mix else lo for c in cands]  # a mix has one of each at least
    for c, low in zip(cands, lows, strict=True):  # refuse what cannot exist, before any run
        candidate_scenario(s, c, min(low, hi))
    rows = map_jobs(_job, [(s, c, min(low, hi), hi, target, seeds)
                           for c, low in zip(cands, lows, strict=True)], jobs, progress,
                    backend, address)
    return sorted(rows, key=lambda r: (r["result"] is None, (r["result"] or {}).get(
        "cost_per_query_provisioned") or math.inf))


MIX_SHARES = (0.25, 0.5, 0.75)


def mix_candidates(s: Scenario, singles: list[Candidate], mix_hardware: list[str],
                   tps: list[int] | None = None) -> list[Candidate]:
    """Two-group fleets: each single-type candidate with a quarter, half or three quarters
    of its replicas on each of `mix_hardware` (at its smallest degree that holds the model,
    or each of `tps`), priced on the same basis."""
    out = []
    for c in singles:
        for hw in mix_hardware:
            if hw == c.hardware:
                continue
            usd = _priced(s, hw, pricing.basis_of(c.hardware, c.price)).usd_per_chip_hour
            for tp in tps or [smallest_tp(s.llm.model, hw, s.llm.weight_bytes)]:
                out += [dataclasses.replace(c, mix=(hw, tp, share), mix_usd_per_chip_hour=usd)
                        for share in MIX_SHARES]
    return out


def disaggregated_candidates(s: Scenario, ratios: list[tuple[int, int]] | None = None,
                             price_kind: str | None = None) -> list[Candidate]:
    """A disaggregated scenario's fleets: its pools at each prefill:decode ratio (default:
    its own, reduced), and, to compare, each pool's hardware and degree co-located."""
    d = s.llm.disaggregated
    assert d is not None
    pre, dec = d.prefill, d.decode
    own = math.gcd(pre.replicas, dec.replicas)
    ratios = ratios or [(pre.replicas // own, dec.replicas // own)]
    for a, b in ratios:
        if a < 1 or b < 1:
            raise SearchsimError(Problem("--ratios", f"{a}:{b}", "PREFILL:DECODE replicas, "
                                         "each at least 1"))
    price = price_basis(s, [pre.hardware, dec.hardware], price_kind)
    qp, qd = _priced(s, pre.hardware, price), _priced(s, dec.hardware, price)
    out = [Candidate(pre.hardware, pre.tp, s.llm.batch_size, price, qp.usd_per_chip_hour,
                     qp.source, qp.date, mix_usd_per_chip_hour=qd.usd_per_chip_hour,
                     decode=(dec.hardware, dec.tp), ratio=r) for r in ratios]
    for hw, tp in dict.fromkeys([(pre.hardware, pre.tp), (dec.hardware, dec.tp)]):
        own_q = _priced(s, hw, price)
        out.append(Candidate(hw, tp, s.llm.batch_size, price, own_q.usd_per_chip_hour,
                             own_q.source, own_q.date))
    return out


def disaggregated_verdict(rows: list[dict]) -> str | None:
    """Whether the cheapest passing disaggregated fleet beats the best co-located one."""
    def best(split: bool):
        found = [r for r in rows if r["result"] and (r["candidate"]["ratio"] is not None)
                 == split]
        return min(found, key=lambda r: r["result"]["cost_per_query_provisioned"]) \
            if found else None

    split, together = best(True), best(False)
    if split is None:
        return None if together is None else "no disaggregated fleet met the target"
    if together is None:
        return "only disaggregated fleets met the target"
    a = split["result"]["cost_per_query_provisioned"]
    b = together["result"]["cost_per_query_provisioned"]
    ratio = "{}:{}".format(*split["candidate"]["ratio"])
    if abs(a / b - 1) < 0.0005:
        p99 = split["result"]["latency_p99_s"], together["result"]["latency_p99_s"]
        return (f"disaggregation ({ratio}) costs the same per query as the best co-located "
                f"fleet (the same accelerators); p99 {p99[0]:.3g} s against {p99[1]:.3g} s")
    if a < b:
        return (f"disaggregation ({ratio}) beats the best co-located fleet by {1 - a / b:.1%} "
                "per query")
    return (f"disaggregation does not beat the best co-located fleet (its best, {ratio}, "
            f"costs {a / b - 1:.1%} more per query)")


def mix_verdict(rows: list[dict]) -> str | None:
    """Whether the cheapest passing mix beats the cheapest passing single-type fleet."""
    def best(mixed: bool):
        costs = [r["result"]["cost_per_query_provisioned"] for r in rows
                 if r["result"] and (r["candidate"]["mix"] is not None) == mixed]
        return min(costs) if costs else None

    mix, single = best(True), best(False)
    if mix is None:
        return None if single is None else "no mixed fleet met the target"
    if single is None:
        return "only mixed fleets met the target"
    if mix < single:
        return f"a mixed fleet beats the best single-type fleet by {1 - mix / single:.1%} " \
               "per query"
    return f"no mix beats the best single-type fleet (the best mix costs " \
           f"{mix / single - 1:.1%} more per query)"
