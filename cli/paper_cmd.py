"""`searchsim paper`: the article's figures beside ours, computed from its inputs."""

from __future__ import annotations

import typer

from cli.common import clean_errors, console, fmt, print_json, table


@clean_errors
def paper_command(
    as_json: bool = typer.Option(False, "--json", help="One JSON object with stable keys."),
) -> None:
    """Reproduce the article's analysis (docs/modelling.md sections 1-5) from its inputs."""
    from sim.model import paper
    sections = paper.reproduce()
    if as_json:
        print_json(paper.figures(sections))
        return
    for s in sections:
        rows = [[r.quantity, fmt(r.article, r.unit), fmt(r.ours, r.unit), r.inputs, r.note]
                for r in s.rows]
        console.print(table(s.title, ["quantity", "article", "ours", "inputs", "note"], rows))
