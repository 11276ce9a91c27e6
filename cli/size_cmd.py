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
    price_kind: str = typer.Option(None, help="Price every accelerator at its latest catalog "
                                   "price of this kind: on-demand, 1-year, 3-year, in-house, "
                                   "spot (default: the kind of the scenario's price)."),
    price_date: str = typer.Option(None, help="YYYY-MM: price each accelerator at its latest "
                                   "price of the kind dated on or before this month, so all "
                                   "are compared at one date (default: the latest prices)."),
    ratios: str = typer.Option(None, help="A disaggregated scenario: prefill:decode replica "
                               "ratios to try, e.g. 1:1,1:2,2:3 (default: the scenario's); "
                               "each pool's hardware co-located is tried beside them."),
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
    from cli.progress import CountProgress, say_estimate
    from sim.runner import autoscale, estimate, sizing
    from sim.scenario import loading
    if jobs < 1:
        raise SearchsimError(Problem("--jobs", jobs, "an integer >= 1"))
    require_new_file(report, force)  # before any simulation
    if bands is not None and (not diurnal or bands < 1):  # before any simulation
        raise SearchsimError(Problem("--bands", bands, "an integer >= 1, with --diurnal"))
    if price_date is not None:  # as the scenario's own date, so every probe runs on it
        overrides = [*overrides, f"economics.price_date={price_date}"]
    day_s = loading.load(scenario, overrides)
    s = autoscale.peak_scenario(day_s) if diurnal else day_s
    hw = hardware.split(",") if hardware else [s.llm.hardware]
    batches = _ints("--max-batch", max_batch) if max_batch else [s.llm.batch_size]
    lo, hi = _range(replicas)
    tps = _ints("--tp", tp) if tp else (None if hardware else [s.llm.tp])
    if s.llm.disaggregated is not None:
        if hardware or tp or mix:
            raise SearchsimError(Problem("--hardware/--tp/--mix", hardware or tp or mix,
                                         "none with [llm.disaggregated] (its pools are the "
                                         "candidates; --ratios varies them)"))
        cands = sizing.disaggregated_candidates(s, _ratios(ratios), price_kind)
    elif ratios:
        raise SearchsimError(Problem("--ratios", ratios, "a scenario with [llm.disaggregated]"))
    else:
        cands = sizing.candidates(s, hw, batches, tps, price_kind)
    if mix:
        cands += sizing.mix_candidates(s, cands, mix.split(","),
                                       _ints("--mix-tp", mix_tp) if mix_tp else None)
    spread = sizing.price_spread(cands)
    warnings = []
    guessed = sizing.unmeasured(s, cands)
    if guessed:
        warnings.append(f"warning: {', '.join(guessed)}: no measurement of this chip family "
                        f"in profile '{s.llm.engine_spec.step_profile(s.llm.profile).name}'; "
                        "its compute and memory efficiencies are the catalog's assumed "
                        "defaults, so its step times are not validated (docs/accuracy.md)")
        err_console.print(warnings[-1], highlight=False, soft_wrap=True)
    if spread:  # said before the sizing runs, and again in the report
        months, first, last = spread
        warnings.append(f"warning: the prices compared are {months} months apart ({first} "
                        f"to {last}): the ranking reflects price cuts as much as hardware; "
                        "compare at one date with --price-date YYYY-MM, or size each "
                        "accelerator at the $/chip-hour you were quoted (--set "
                        "economics.price=...)")
        err_console.print(warnings[-1], highlight=False, soft_wrap=True)
    say_estimate(estimate.say(estimate.sizing_requests(s, len(cands), lo, hi, replications),
                              min(jobs, len(cands))))
    with CountProgress("sizing", "of the most probes it can take" if len(cands) == 1
                       else "of candidates' searches") as progress:
        rows = sizing.size(s, cands, lo, hi, target, jobs, replications, progress,
                           backend or s.run.backend, address or s.run.ray_address)
    verdict = sizing.mix_verdict(rows) if mix else \
        sizing.disaggregated_verdict(rows) if s.llm.disaggregated is not None else None
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
        split = s.llm.disaggregated is not None
        print_json({"fleets": rows, "mix_verdict": None if split else verdict,
                    "disaggregated_verdict": verdict if split else None, "day": day}
                   if mix or diurnal or split else rows)
    elif day is not None:
        _show_day(day_s, day)


def _stability(p: dict) -> str:
    """A probe over its capacity at full batches reads stable only because cut answers free
    their replicas; say so."""
    if not p["stable"]:
        return "no"
    ratio = p.get("capacity_ratio")
    return f"yes, {ratio:.2f}x" if ratio is not None and ratio < 1 else "yes"


def _attainment(p: dict) -> str:
    if len(p["seeds"]) < 2:  # one replication: no interval to speak of
        return f"{percent(p['slo_attainment'])} (no interval)"
    return f"{percent(p['slo_attainment'])} [{percent(p['attainment_low'])}]"


def _ratios(text: str | None) -> list[tuple[int, int]] | None:
    if not text:
        return None
    try:
        return [(int(a), int(b)) for a, b in (x.split(":") for x in text.split(","))]
    except ValueError:
        raise SearchsimError(Problem("--ratios", text, "PREFILL:DECODE pairs, e.g. "
                                     "1:1,1:2")) from None


def _label(c: dict) -> str:
    """A candidate in one cell, with its batch size."""
    from sim.analysis.fleetlabel import fleet_label
    return fleet_label(c, "b")


def _price_cell(c: dict, notes: list[str]) -> str:
    """The chip-hour price; its source goes under the table as a numbered note."""
    def ref(source: str) -> int:
        if source not in notes:
            notes.append(source)
        return notes.index(source) + 1

    text = f"${c['usd_per_chip_hour']:.3g} [{ref(c['price_source'])}]"
    if c.get("mix"):
        text += f" + ${c['mix_usd_per_chip_hour']:.3g}"
    return text


def _cost(res: dict) -> str:
    """Cost per query, with its interval between sampled shards."""
    text = f"${res['cost_per_query_provisioned']:.3g}"
    ci = res.get("cost_per_query_ci95")
    return text + (f" [${ci[0]:.3g}, ${ci[1]:.3g}]" if ci else "")


def _answer_row(r: dict, hi: int, notes: list[str]) -> list[str]:
    c, res = r["candidate"], r["result"]
    cells = [_label(c), _price_cell(c, notes)]
    if res is None:
        probe = r["probes"][-1]
        return cells + [f"> {hi}", f"{percent(probe['slo_attainment'])} at {hi}", "-", "-",
                        "-"]
    replicas = f"{r['replicas']:,}" + (f" ({r['replicas_per_shard']}/sh.)"
                                       if r.get("replicas_per_shard") else "")
    if c.get("ratio"):  # units of the ratio: prefill + decode replicas
        replicas = f"{c['ratio'][0] * r['replicas']}+{c['ratio'][1] * r['replicas']}"
    share = res.get("revenue_share")
    return cells + [replicas, percent(res["slo_attainment"]), f"{res['latency_p99_s']:.3g}",
                    _cost(res), percent(share) if share is not None else "-"]


def _answer_notes(rows: list[dict], hi: int) -> list[str]:
    """Under the answer table, a line a row: which is cheapest or marginal, its
    accelerators, its attainment interval and what its misses come from."""
    out = []
    for i, r in enumerate(rows):
        res = r["result"] or r["probes"][-1]
        seeds = len(res["seeds"])
        bound = (f"95% lower bound {percent(res['attainment_low'])} over {seeds} seeds"
                 if seeds > 1 else "one seed: no interval")
        where = f"{r['accelerators']:,} accelerators" if r["result"] else f"at {hi} replicas"
        tags = [t for t, on in (("cheapest", i == 0 and r["result"]),
                                ("marginal", r.get("marginal"))) if on]
        out.append(f"{_label(r['candidate'])}" + (f" ({', '.join(tags)})" if tags else "")
                   + f": {where}, attainment {bound}, misses from "
                   f"{res['slo_miss_cause'] or '-'}")
    return out


def _show(s, rows: list[dict], target: float, hi: int) -> None:
    notes: list[str] = []
    out = [_answer_row(r, hi, notes) for r in rows]
    console.print(f"{s.name}: fewest replicas whose complete answers within "
                  f"{s.limits.slo_s:g} s reach {target:.1%} (95% lower bound) at "
                  f"{s.workload.rate_qps:,.6g} queries/s" + (
                      f", {s.run.sample_shards} of {s.run.shards:,} shards simulated"
                      if s.run.sample_shards else "") + f" ({assumes(s)})", highlight=False)
    console.print(table("", ["fleet", "$/chip-h", "replicas", "SLO att.", "p99 s",
                             "$/query", "% rev."], out))
    for line in _answer_notes(rows, hi):
        console.print(line, highlight=False, markup=False)
    for n, source in enumerate(notes, 1):
        console.print(f"[{n}] {source}", highlight=False, markup=False)
    console.print(table("every probe (Nx: capacity at full batches over the load)",
                        ["fleet", "replicas", "stable", "SLO att. [low]", "compl.", "p99 s",
                         "misses"],
                        [[_label(r["candidate"]), str(p["replicas"]), _stability(p),
                          _attainment(p),
                          percent(p["complete_fraction"]) if p["complete_fraction"] is not None
                          else "-", f"{p['latency_p99_s']:.3g}" if p["latency_p99_s"]
                          is not None else "-", p["slo_miss_cause"] or "-"]
                         for r in rows for p in r["probes"]]))
    for r in rows:
        if r["advice"]:
            console.print(f"{_label(r['candidate'])}: {r['advice']}", highlight=False)


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
