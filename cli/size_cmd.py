"""`searchsim size`: the cheapest fleet that meets a latency target at a scenario's load."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cli.common import (
    assumes,
    clean_errors,
    console,
    err_console,
    percent,
    print_json,
    require_new_file,
    table,
)
from sim.errors import Problem, SearchsimError


def _ints(name: str, text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise SearchsimError(Problem(name, text, "positive integers, comma-separated"))
    return values


def _range(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split(":"))
    except ValueError:
        raise SearchsimError(Problem("--replicas", text, "LOW:HIGH, e.g. 1:32")) from None
    return lo, hi


@clean_errors
def size_command(
    scenario: Path = typer.Argument(..., help="Scenario whose load and limits to meet."),
    target: float = typer.Option(0.99, help="SLO attainment to reach (share within slo_s)."),
    replicas: str = typer.Option("1:32", help="Replica counts to search, LOW:HIGH."),
    hardware: str = typer.Option(None, help="Accelerators to try (default: the scenario's)."),
    max_batch: str = typer.Option(None, help="Batch sizes to try (default: the scenario's)."),
    tp: str = typer.Option(None, help="Tensor-parallel degrees to try, e.g. 4,8 (default: "
                                      "the scenario's; with --hardware, every power of two "
                                      "from the smallest that fits up to 8)."),
    overrides: list[str] = typer.Option([], "--set", help="Override: section.key=value."),
    jobs: int = typer.Option(min(4, os.cpu_count() or 1), help="Parallel processes."),
    backend: str = typer.Option(None, help="local (a process pool) or ray (default: the "
                                           "scenario's run.backend)."),
    address: str = typer.Option(None, help="Ray cluster address (default: a local Ray)."),
    mix: str = typer.Option(None, help="Also try mixed fleets: each candidate with 25/50/75% "
                                       "of its replicas on this hardware (comma list)."),
    mix_tp: str = typer.Option(None, help="Tensor-parallel degrees for --mix hardware "
                                          "(default: the smallest that holds the model)."),
    price_kind: str = typer.Option(None, help="Price every accelerator at its first catalog "
                                   "price of this kind: on-demand, 1-year, 3-year, in-house, "
                                   "spot (default: the kind of the scenario's price)."),
    replications: int = typer.Option(3, help="Seeds per probe; a fleet passes when the "
                                     "lower end of its 95% attainment interval does."),
    report: Path = typer.Option(None, "--report", help="Also write the answer as a "
                                "self-contained HTML page with plots (the plot extra)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --report file."),
    diurnal: bool = typer.Option(False, "--diurnal", help="A diurnal scenario's day: rank "
                                 "candidates at the peak hour, then size the cheapest hour "
                                 "by hour (autoscaled) against the peak all day."),
    bands: int = typer.Option(None, help="With --diurnal: size at most this many groups of "
                                         "hours, each at its highest rate (default: every "
                                         "distinct rate)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Bisect the replica count per candidate; rank candidates by provisioned cost/query.
    Attainment counts complete answers within slo_s, over several seeds."""
    from cli.progress import CountProgress
    from sim.runner import autoscale, sizing
    from sim.scenario import loading
    if jobs < 1:
        raise SearchsimError(Problem("--jobs", jobs, "an integer >= 1"))
    require_new_file(report, force)  # before any simulation
    if bands is not None and (not diurnal or bands < 1):  # before any simulation
        raise SearchsimError(Problem("--bands", bands, "an integer >= 1, with --diurnal"))
    day_s = loading.load(scenario, overrides)
    s = autoscale.peak_scenario(day_s) if diurnal else day_s
    hw = hardware.split(",") if hardware else [s.llm.hardware]
    batches = _ints("--max-batch", max_batch) if max_batch else [s.llm.batch_size]
    lo, hi = _range(replicas)
    tps = _ints("--tp", tp) if tp else (None if hardware else [s.llm.tp])
    cands = sizing.candidates(s, hw, batches, tps, price_kind)
    if mix:
        cands += sizing.mix_candidates(s, cands, mix.split(","),
                                       _ints("--mix-tp", mix_tp) if mix_tp else None)
    spread = sizing.price_spread(cands)
    warnings = []
    if spread:  # said before the sizing runs, and again in the report
        months, first, last = spread
        warnings.append(f"warning: the prices compared are {months} months apart ({first} "
                        f"to {last}): the ranking reflects price cuts as much as hardware; "
                        "compare on one date with --price-kind and prices of a date, or give "
                        "economics.price in $/chip-hour")
        err_console.print(warnings[0], highlight=False, soft_wrap=True)
    with CountProgress("sizing", "of probes (at most)" if len(cands) == 1
                       else "of candidates") as progress:
        rows = sizing.size(s, cands, lo, hi, target, jobs, replications, progress,
                           backend or s.run.backend, address or s.run.ray_address)
    verdict = sizing.mix_verdict(rows) if mix else None
    if report is not None:
        from sim.analysis import sizereport
        written = sizereport.write(report, s.name, rows, target, s.limits.slo_s, assumes(s),
                                   warnings)
        err_console.print(f"report: {written}", highlight=False)
    if not as_json:  # the ranking first: it stands even if the day cannot be sized
        _show(s, rows, target, hi)
        if verdict:
            console.print(verdict, highlight=False)
    day = None
    if diurnal:
        with CountProgress("sizing the day's hours") as progress:
            day = autoscale.size_day(day_s, sizing.Candidate(**rows[0]["candidate"]), rows[0],
                                     lo, target, sizing.seeds_of(s, replications), bands,
                                     jobs, progress, backend or s.run.backend,
                                     address or s.run.ray_address)
    if as_json:
        print_json({"fleets": rows, "mix_verdict": verdict, "day": day}
                   if mix or diurnal else rows)
    elif day is not None:
        _show_day(day_s, day)


def _stability(p: dict) -> str:
    """A probe over its capacity at full batches reads stable only because cut answers free
    their replicas; say so."""
    if not p["stable"]:
        return "no"
    ratio = p.get("capacity_ratio")
    return f"yes, over capacity ({ratio:.2f}x)" if ratio is not None and ratio < 1 else "yes"


def _attainment(p: dict) -> str:
    if len(p["seeds"]) < 2:  # one replication: no interval to speak of
        return f"{percent(p['slo_attainment'])} (no interval)"
    return f"{percent(p['slo_attainment'])} [{percent(p['attainment_low'])}]"


def _candidate_cells(c: dict, notes: list[str] | None = None) -> list[str]:
    """Hardware, TP, batch and price; the price's source goes under the table as a numbered
    note when `notes` collects them (a table readable at 80 columns)."""
    if notes is None:
        price = f"${c['usd_per_chip_hour']:.4g} ({c['price_source']})"
    else:
        if c["price_source"] not in notes:
            notes.append(c["price_source"])
        price = f"${c['usd_per_chip_hour']:.4g} [{notes.index(c['price_source']) + 1}]"
    if not c.get("mix"):
        return [c["hardware"], str(c["tp"]), str(c["max_batch"]), price]
    hw, tp, share = c["mix"]
    return [f"{1 - share:.0%} {c['hardware']} + {share:.0%} {hw}", f"{c['tp']} + {tp}",
            str(c["max_batch"]), f"{price} + ${c['mix_usd_per_chip_hour']:.4g} ({hw})"]


def _cost(res: dict) -> str:
    """Cost per query, with its interval between sampled shards and the revenue share."""
    text = f"${res['cost_per_query_provisioned']:.4g}"
    ci, share = res.get("cost_per_query_ci95"), res.get("revenue_share")
    if ci:
        text += f" [${ci[0]:.4g}, ${ci[1]:.4g}]"
    if share is not None:
        text += f" ({percent(share)} of revenue)"
    return text


def _show(s, rows: list[dict], target: float, hi: int) -> None:
    out: list[list[str]] = []
    notes: list[str] = []
    for i, r in enumerate(rows):
        c, res = r["candidate"], r["result"]
        cells = _candidate_cells(c, notes)
        if res is None:
            out.append(cells + [f"> {hi}", "-", _attainment(r["probes"][-1]) + f" at {hi}",
                                "-", "-", r["probes"][-1]["slo_miss_cause"] or "-", ""])
            continue
        replicas = f"{r['replicas']:,}" + (f" ({r['replicas_per_shard']}/shard)"
                                           if r.get("replicas_per_shard") else "")
        out.append(cells + [replicas, f"{r['accelerators']:,}", _attainment(res),
                            f"{res['latency_p99_s']:.3g}", _cost(res),
                            res["slo_miss_cause"] or "-",
                            ", ".join(x for x in ("cheapest" if i == 0 else "",
                                                  "marginal" if r.get("marginal") else "") if x)])
    console.print(table(f"{s.name}: fewest replicas whose complete answers within "
                        f"{s.limits.slo_s:g} s reach {target:.1%} (95% lower bound) at "
                        f"{s.workload.rate_qps:,.6g} queries/s" + (
                            f", {s.run.sample_shards} of {s.run.shards:,} shards simulated"
                            if s.run.sample_shards else "") + f" ({assumes(s)})",
                        ["hardware", "tp", "max batch", "$/chip-h", "replicas",
                         "accelerators", "SLO attainment [low]", "p99 (s)", "cost/query",
                         "misses from", ""], out))
    for n, source in enumerate(notes, 1):
        console.print(f"[{n}] {source}", highlight=False, markup=False)
    console.print(table("every probe", ["hardware", "tp", "max batch", "replicas", "stable",
                                        "SLO attainment [low]", "complete", "p99 (s)",
                                        "misses from"],
                        [[*_candidate_cells(r["candidate"])[:3], str(p["replicas"]),
                          _stability(p), _attainment(p),
                          percent(p["complete_fraction"]) if p["complete_fraction"] is not None
                          else "-", f"{p['latency_p99_s']:.3g}" if p["latency_p99_s"]
                          is not None else "-", p["slo_miss_cause"] or "-"]
                         for r in rows for p in r["probes"]]))
    for r in rows:
        if r["advice"]:
            cells = _candidate_cells(r["candidate"])
            console.print(f"{cells[0]} tp {cells[1]} batch {cells[2]}: {r['advice']}",
                          highlight=False)


def _hours(hours: list[int]) -> str:
    """0, 1, 2, 5, 6 -> '0-2, 5-6'."""
    runs: list[list[int]] = []
    for h in hours:
        if runs and h == runs[-1][-1] + 1:
            runs[-1].append(h)
        else:
            runs.append([h])
    return ", ".join(f"{r[0]}" if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _show_day(s, day: dict) -> None:
    c = day["candidate"]
    rows = [[_hours(b["hours"]), f"{b['multiplier']:g}", f"{b['rate_qps']:,.6g}",
             f"{b['replicas']:,}" + ("" if b["met"] else " (not met)"),
             f"{b['accelerators']:,}", _attainment(b["result"]) if b["result"] else "-"]
            for b in day["bands"]]
    console.print(table(f"{s.name}: {c['hardware']} tp {c['tp']} batch {c['max_batch']} "
                        "hour by hour (each hour a steady state at its rate)",
                        ["hours", "x rate", "queries/s", "replicas", "accelerators",
                         "SLO attainment [low]"], rows))
    auto, ahead, peak = day["autoscaled"], day["autoscaled_hour_ahead"], day["peak_provisioned"]
    for name, d in (("autoscaled", auto), ("scaled an hour ahead", ahead),
                    ("provisioned for the peak", peak)):
        console.print(f"{name}: {d['accelerator_hours']:,.0f} accelerator-hours a day, "
                      f"${d['usd_per_day']:,.2f} a day, ${d['cost_per_query']:.4g} per query "
                      f"({percent(d['revenue_share'])} of revenue)", highlight=False)
    console.print(f"autoscaling saves {percent(day['saving'])} tracking the load exactly (a "
                  "lower bound on its cost: no scale-up lag, start-up time or forecast "
                  f"headroom), {percent(day['saving_hour_ahead'])} scaling an hour ahead "
                  "(safe for any lag under an hour)", highlight=False)
