"""A run directory as a self-contained HTML report with plots (needs the `plot` extra).

Reads only the files of a finished run, so any run — old or new — can be reported on."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sim.errors import Problem, SearchsimError
from sim.io.atomic import write_text
from sim.io.rundir import FILES

HEADLINE = [
    ("price_basis", "price basis"), ("cost_per_query_provisioned", "cost per query ($)"),
    ("revenue_share", "cost / revenue"), ("owned_cost_per_query", "cost per query if owned ($)"),
    ("owned_capex_usd_per_query", "  capital ($)"), ("owned_energy_usd_per_query", "  energy ($)"),
    ("owned_revenue_share", "cost / revenue if owned"),
    ("energy_per_query_j", "energy per query (J)"), ("llm_power_w_mean", "mean power (W)"),
    ("availability", "replica availability"),
    ("retrieval_availability", "retrieval server availability"),
    ("requests_lost", "requests lost to failures"),
    ("queries_affected_by_failures", "queries affected by failures"),
]


# after the page loads: how many plots decoded to real pixels, for a browser to read back
# (`data-plots-drawn` on the body; tests/test_browser.py)
COUNT_DRAWN = ("<script>window.addEventListener('load', function () {"
               "var n = 0; document.querySelectorAll('img.plot').forEach(function (i) {"
               "if (i.complete && i.naturalWidth > 0) { n += 1; } });"
               "document.body.dataset.plotsDrawn = String(n); });</script>")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SearchsimError(Problem("report", "matplotlib", "the plot extra: pip install "
                                     "'searchsim[plot]'")) from None
    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _latency_cdf(plt, q, summary: dict) -> str:
    arrival = q["arrival"].to_numpy()
    window = (arrival >= summary["warmup_s"]) & (arrival < summary["duration_s"])
    lat = np.sort(q["latency_s"].to_numpy()[window])
    lat = lat[~np.isnan(lat)]
    slo = summary["slo_s"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if len(lat):
        ax.plot(lat, np.arange(1, len(lat) + 1) / len(lat))
    ax.axvline(slo, linestyle="--", color="grey", label=f"SLO {slo:g} s")
    ax.set(xlabel="latency (s)", ylabel="share of queries", title="Latency CDF (window)")
    ax.legend()
    return _png(fig)


def _timeseries(plt, ts, column: str, title: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    pools = ts["pool"].to_numpy(zero_copy_only=False)
    for pool in sorted(set(pools)):
        sel = pools == pool
        ax.step(ts["interval_start"].to_numpy()[sel], ts[column].to_numpy()[sel],
                where="post", label=pool)
    ax.set(xlabel="simulated time (s)", title=title)
    ax.legend()
    return _png(fig)


def build(run_dir: str | Path) -> str:
    run = Path(run_dir)
    missing = [f for f in FILES if not (run / f).is_file()]
    if missing:
        raise SearchsimError(Problem("run directory", str(run), "a finished run (missing "
                                     + ", ".join(missing) + ")"))
    plt = _pyplot()
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    queries = pq.read_table(run / "queries.parquet")
    ts = pq.read_table(run / "timeseries.parquet")
    images = [_latency_cdf(plt, queries, summary),
              _timeseries(plt, ts, "utilization", "Utilization"),
              _timeseries(plt, ts, "queue_mean", "Mean queue length")]
    if "power_w_mean" in ts.column_names:
        images.append(_timeseries(plt, ts, "power_w_mean", "Mean power of the accelerators (W)"))
    plt.close("all")
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in summary.items())
    headline = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{html.escape(_fmt(summary.get(k)))}</td></tr>"
        for k, label in HEADLINE if k in summary)
    warn = "" if summary.get("stable", True) else (
        "<p style='color:#a00'><b>Unstable run:</b> offered load above what the fleet "
        "sustains; latency percentiles are not meaningful.</p>")
    figs = "".join(f"<img class='plot' alt='plot' src='data:image/png;base64,{img}'>"
                   for img in images)
    title = html.escape(f"searchsim report: {summary.get('scenario', run.name)}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"{COUNT_DRAWN}</head>"
            f"<body style='font-family:sans-serif'><h1>{title}</h1>{warn}"
            f"<h2>Cost, energy and availability</h2><table border='1' cellpadding='3'>"
            f"{headline}</table>{figs}"
            f"<h2>summary.json</h2><table border='1' cellpadding='3'>{rows}</table>"
            "</body></html>\n")


def write(run_dir: str | Path, out: str | Path | None = None) -> Path:
    target = Path(out) if out is not None else Path(run_dir) / "report.html"
    return write_text(target, build(run_dir))
