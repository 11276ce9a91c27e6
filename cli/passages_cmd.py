"""`searchsim passages`: the memory a passage KV cache needs for a hit rate."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import clean_errors, console, print_json, table
from sim.errors import Problem, SearchsimError


@clean_errors
def passages_command(
    scenario: Path = typer.Argument(..., help="A two-stage scenario with a corpus "
                                              "(retrieval.corpus_passages)."),
    queries: int = typer.Option(100_000, help="Queries to draw (before the result cache)."),
    overrides: list[str] = typer.Option([], "--set", help="Override: section.key=value."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """LRU curve of the passages the scenario's queries retrieve: hit rate against the
    memory a prefix cache of that many passages holds (KV of instruction + passage)."""
    from sim.analysis import passagecurve
    from sim.scenario import loading
    if queries < 1:
        raise SearchsimError(Problem("--queries", queries, "an integer >= 1"))
    s = loading.load(scenario, overrides)
    try:
        c = passagecurve.curve(s, queries)
    except ValueError as exc:
        raise SearchsimError(Problem("scenario", str(scenario), str(exc))) from None
    if as_json:
        print_json(c)
        return
    console.print(f"{s.name}: {c['llm_queries']:,} of {c['queries']:,} queries reach the "
                  f"LLM, {c['references']:,} passage reads, {c['distinct_passages']:,} "
                  f"distinct; a cached prefix averages {c['cached_tokens_mean']:,.0f} tokens "
                  f"({s.llm.model}, KV {s.llm.kv_precision}); an infinite cache hits "
                  f"{c['infinite_cache_hit_bound']:.1%}", highlight=False)
    console.print(table("", ["passages cached", "memory (GB)", "passage hit rate"],
                        [[f"{p['passages']:,}", f"{p['gb']:,.2f}", f"{p['hit_rate']:.1%}"]
                         for p in c["curve"]]))
