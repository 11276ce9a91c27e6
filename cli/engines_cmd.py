"""`searchsim engines`: the serving engines, what each sets, and its sources."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import clean_errors, console, print_json, table


@clean_errors
def engines_command(
    name: Annotated[str | None, typer.Argument(help="One engine, in full.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Serving engines (scheduler, KV cache, step-time profile), the default marked."""
    from sim.model import engine as engines

    names = [name] if name else engines.shipped()
    data = [engines.load(n) for n in names]
    if as_json:
        print_json({"default": engines.DEFAULT, "engines": [
            {"name": e.name, "description": e.description, "date": e.date,
             "sources": list(e.sources), "settings": e.settings} for e in data]})
        return
    keys = list(engines.KEYS)
    console.print(table("Serving engines (llm.engine; override keys with \\[llm.engine_options])",
                        ["key", *[e.name + (" (default)" if e.name == engines.DEFAULT else "")
                                  for e in data]],
                        [[k, *(_text(e.settings.get(k)) for e in data)] for k in keys
                         if any(k in e.settings for e in data)]))
    console.print("prefix_caching is recorded, not yet modelled: identical prefixes are "
                  "prefilled again.", highlight=False)
    for e in data:
        console.print(f"[bold]{e.name}[/bold] ({e.date}): {e.description}", highlight=False)
        for src in e.sources:
            console.print(f"  - {src}", highlight=False, markup=False)


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)
