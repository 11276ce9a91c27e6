"""A sizing answer as a self-contained HTML page (`searchsim size --report`, the `plot` extra).

The ranking as `size` prints it, then per candidate against replicas: SLO attainment with the
target line, the p99 latency with the SLO line, and cost per query; and every probe with
what its misses came from. Plots are embedded PNGs; a script counts the ones the browser
decoded into `data-plots-drawn` on the body, which the browser test reads.
"""

from __future__ import annotations

import html
from pathlib import Path

from sim.analysis.fleetlabel import fleet_label
from sim.analysis.report import COUNT_DRAWN, _png, _pyplot
from sim.io.atomic import write_text


def _label(c: dict) -> str:
    return fleet_label(c, "batch ")


def _pct(v) -> str:
    return "-" if v is None else f"{v:.2%}"


def _money(v) -> str:
    return "-" if v is None else f"${v:.4g}"


def _against_replicas(plt, rows: list[dict], key: str, title: str, ylabel: str,
                      line: float | None = None, line_label: str = "") -> str:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in rows:
        probes = [p for p in r["probes"] if p.get(key) is not None]
        if probes:
            ax.plot([p["replicas"] for p in probes], [p[key] for p in probes], marker="o",
                    label=_label(r["candidate"]))
    if line is not None:
        ax.axhline(line, linestyle="--", color="grey", label=line_label)
    ax.set(xlabel="replicas", ylabel=ylabel, title=title)
    ax.legend(fontsize="small")
    return _png(fig)


def _ranking(rows: list[dict]) -> str:
    head = ("<tr><th>candidate</th><th>$/chip-h (source)</th><th>replicas</th>"
            "<th>accelerators</th><th>SLO attainment [95% low]</th><th>p99 (s)</th>"
            "<th>cost/query</th><th>misses from</th><th>note</th></tr>")
    body = []
    for i, r in enumerate(rows):
        c, res = r["candidate"], r["result"]
        price = f"${c['usd_per_chip_hour']:.4g} ({html.escape(c['price_source'])})"
        if res is None:
            note = html.escape(r.get("advice") or "")
            body.append(f"<tr><td>{html.escape(_label(c))}</td><td>{price}</td>"
                        f"<td>not met</td><td>-</td><td>-</td><td>-</td><td>-</td>"
                        f"<td>-</td><td>{note}</td></tr>")
            continue
        notes = [x for x in ("cheapest" if i == 0 else "",
                             "marginal" if r.get("marginal") else "") if x]
        body.append(
            f"<tr><td>{html.escape(_label(c))}</td><td>{price}</td>"
            f"<td>{r['replicas']}</td><td>{r['accelerators']}</td>"
            f"<td>{_pct(res['slo_attainment'])} [{_pct(res['attainment_low'])}]</td>"
            f"<td>{res['latency_p99_s']:.3g}</td>"
            f"<td>{_money(res['cost_per_query_provisioned'])}</td>"
            f"<td>{html.escape(res['slo_miss_cause'] or '-')}</td>"
            f"<td>{', '.join(notes)}</td></tr>")
    return f"<table border='1' cellpadding='3'>{head}{''.join(body)}</table>"


def _probes(rows: list[dict]) -> str:
    head = ("<tr><th>candidate</th><th>replicas</th><th>stable</th><th>SLO attainment</th>"
            "<th>complete</th><th>p99 (s)</th><th>cost/query</th><th>capacity / load</th>"
            "<th>misses from</th><th>misses cut by the deadline</th><th>unfinished</th>"
            "<th>missed time spent waiting</th></tr>")
    body = "".join(
        f"<tr><td>{html.escape(_label(r['candidate']))}</td><td>{p['replicas']}</td>"
        f"<td>{'yes' if p['stable'] else 'no'}</td><td>{_pct(p['slo_attainment'])}</td>"
        f"<td>{_pct(p['complete_fraction'])}</td>"
        f"<td>{'-' if p['latency_p99_s'] is None else format(p['latency_p99_s'], '.3g')}</td>"
        f"<td>{_money(p['cost_per_query_provisioned'])}</td>"
        f"<td>{'-' if p.get('capacity_ratio') is None else format(p['capacity_ratio'], '.2f')}"
        f"</td><td>{html.escape(p['slo_miss_cause'] or '-')}</td>"
        f"<td>{_pct(p.get('miss_cut_fraction'))}</td>"
        f"<td>{_pct(p.get('miss_unfinished_fraction'))}</td>"
        f"<td>{_pct(p.get('miss_queueing_share'))}</td></tr>"
        for r in rows for p in r["probes"])
    return f"<table border='1' cellpadding='3'>{head}{body}</table>"


def build(name: str, rows: list[dict], target: float, slo_s: float, assumes: str,
          warnings: tuple[str, ...] | list[str] = ()) -> str:
    plt = _pyplot()
    images = [
        _against_replicas(plt, rows, "slo_attainment", "SLO attainment against replicas",
                          "complete within the SLO", target, f"target {target:.1%}"),
        _against_replicas(plt, rows, "latency_p99_s", "p99 latency against replicas",
                          "p99 (s)", slo_s, f"SLO {slo_s:g} s"),
        _against_replicas(plt, rows, "cost_per_query_provisioned",
                          "Cost per query against replicas", "$ per query (provisioned)"),
    ]
    plt.close("all")
    figs = "".join(f"<img class='plot' alt='plot' src='data:image/png;base64,{img}'>"
                   for img in images)
    warn = "".join(f"<p style='color:#a00'>{html.escape(w)}</p>" for w in warnings)
    title = html.escape(f"searchsim size: {name}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"{COUNT_DRAWN}</head><body style='font-family:sans-serif'><h1>{title}</h1>"
            f"<p>Fewest replicas whose complete answers within {slo_s:g} s reach "
            f"{target:.1%} at the lower end of the 95% interval; "
            f"{html.escape(assumes)}.</p>{warn}"
            f"<h2>Ranking</h2>{_ranking(rows)}<h2>Against replicas</h2>{figs}"
            f"<h2>Every probe, with what its misses came from</h2>{_probes(rows)}"
            "</body></html>\n")


def write(path: str | Path, name: str, rows: list[dict], target: float, slo_s: float,
          assumes: str, warnings: tuple[str, ...] | list[str] = ()) -> Path:
    return write_text(Path(path), build(name, rows, target, slo_s, assumes, warnings))
