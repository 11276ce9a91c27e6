"""Scenarios compared on common random numbers, as a self-contained HTML page
(`searchsim compare --report`, the `plot` extra): every metric side by side with ratios to
the first scenario, the latency CDFs over one another against each SLO, and cost per query
and utilization as bars."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from sim.analysis.report import COUNT_DRAWN, _png, _pyplot
from sim.io.atomic import write_text


def _window_latency(res) -> np.ndarray:
    s = res.scenario.run
    q = res.queries
    arrival = q.column("arrival").to_numpy()
    lat = q.column("latency_s").to_numpy()
    keep = (arrival >= s.warmup_s) & (arrival < s.duration_s) & ~np.isnan(lat)
    return np.sort(lat[keep])


def _cdfs(plt, results) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for res in results:
        lat = _window_latency(res)
        if len(lat):
            line, = ax.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=res.scenario.name)
            ax.axvline(res.scenario.limits.slo_s, linestyle="--", color=line.get_color())
    ax.set(xlabel="latency (s)", ylabel="share of queries", title="Latency CDFs (dashed: SLO)")
    ax.legend(fontsize="small")
    return _png(fig)


def _bars(plt, results, key: str, title: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [r.scenario.name for r in results]
    values = [r.summary.get(key) or 0.0 for r in results]
    ax.bar(range(len(names)), values)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize="small")
    ax.set(title=title)
    return _png(fig)


def build(results, rows: list[list[str]], columns: list[str], seed: int) -> str:
    """`rows` and `columns`: the table `compare` prints (metric, each scenario, ratios)."""
    plt = _pyplot()
    images = [_cdfs(plt, results),
              _bars(plt, results, "cost_per_query_provisioned",
                    "Cost per query, provisioned ($)"),
              _bars(plt, results, "accelerator_utilization", "Accelerator utilization")]
    plt.close("all")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    figs = "".join(f"<img class='plot' alt='plot' src='data:image/png;base64,{img}'>"
                   for img in images)
    title = html.escape("searchsim compare: " + " vs ".join(r.scenario.name for r in results))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"{COUNT_DRAWN}</head><body style='font-family:sans-serif'><h1>{title}</h1>"
            f"<p>Every scenario ran with seed {seed} (common random numbers).</p>{figs}"
            f"<h2>Every metric</h2><table border='1' cellpadding='3'><tr>{head}</tr>"
            f"{body}</table></body></html>\n")


def write(path: str | Path, results, rows: list[list[str]], columns: list[str],
          seed: int) -> Path:
    return write_text(Path(path), build(results, rows, columns, seed))
