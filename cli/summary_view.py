"""How a run's summary is shown: the rows a planner reads first, formatted with units."""

from __future__ import annotations

from cli.common import err_console, percent

ROWS = [
    ("queries", "queries (all arrivals)", ""),
    ("completed", "completed (measured window)", ""),
    ("offered_qps", "offered load (queries/s)", ""),
    ("sustainable_qps", "sustainable load, LLM pool (queries/s)", ""),
    ("retrieval_sustainable_qps", "sustainable load, retrieval (queries/s)", ""),
    ("bottleneck", "bottleneck", ""),
    ("stable", "stable", ""),
    ("cache_hit_rate", "cache hit rate", "fraction"),
    ("cache_hit_bound", "infinite-cache hit bound", "fraction"),
    ("llm_requests", "LLM requests", ""),
    ("latency_mean_s", "latency mean (s)", "s"),
    ("latency_p50_s", "latency p50 (s)", "s"),
    ("latency_p95_s", "latency p95 (s)", "s"),
    ("latency_p99_s", "latency p99 (s)", "s"),
    ("slo_attainment", "SLO attainment (complete answers in time)", "fraction"),
    ("complete_fraction", "complete answers (any latency)", "fraction"),
    ("answer_quality", "answer quality", ""),
    ("degraded_fraction", "degraded answers", "fraction"),
    ("partial_fraction", "partial answers (deadline)", "fraction"),
    ("ttft_p50_s", "time to first token p50 (s)", "s"),
    ("tpot_mean_s", "time per output token (s)", "s"),
    ("preemptions", "preemptions", ""),
    ("mean_batch_size", "mean batch size", ""),
    ("accelerators", "accelerators", ""),
    ("accelerator_utilization", "accelerator utilization", "fraction"),
    ("mfu", "MFU (over provisioned time)", "fraction"),
    ("mfu_while_busy", "MFU while busy", "fraction"),
    ("cost_per_query_provisioned", "cost/query, provisioned", "$"),
    ("cost_per_query_busy", "cost/query, busy", "$"),
    ("revenue_per_query", "revenue/query", "$"),
    ("revenue_share", "cost / revenue, provisioned", "fraction"),
    ("revenue_share_busy", "cost / revenue, busy", "fraction"),
    ("cost_per_query_at_capacity", "cost/query at capacity (full batches)", "$"),
    ("price_basis", "price basis of the costs above", ""),
    ("llm_power_w_mean", "LLM accelerators' power, mean (W)", "W"),
    ("energy_per_query_j", "energy/query (J, accelerators, idle included)", "J"),
    ("owned_cost_per_query", "cost/query if owned (capital + energy)", "$"),
    ("owned_energy_usd_per_query", "  of which energy (at PUE)", "$"),
    ("owned_revenue_share", "cost / revenue if owned", "fraction"),
    ("availability", "replica availability (up-time share)", "fraction"),
    ("requests_retried", "requests restarted after a replica failure", ""),
    ("requests_lost", "requests lost to replica failures", ""),
    ("queries_affected_by_failures", "queries affected by failures", ""),
    ("retrieval_availability", "retrieval servers' availability (up-time share)",
     "fraction"),
    ("retrieval_failed_fraction", "queries whose every retrieval call failed", "fraction"),
    ("tokens_in", "tokens in", ""),
    ("tokens_out", "tokens out", ""),
]
PERCENTILES = {"latency_p50_s", "latency_p95_s", "latency_p99_s", "latency_mean_s"}


def show(key: str, value, unit: str, stable: bool) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO (overloaded)"
    if isinstance(value, str):
        return value
    if unit == "fraction":
        text = percent(value)
    elif unit == "$":
        text = f"${value:.4g}"
    elif unit == "s":
        text = f"{value:.3g}"
    elif unit in ("W", "J"):
        text = f"{value:,.0f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = f"{value:.4g}"
    return f"{text} (unstable)" if key in PERCENTILES and not stable else text


def shown(summary: dict, key: str, unit: str) -> str:
    """`show` for a summary's key, with its 95% interval where a sampled run has one."""
    text = show(key, summary[key], unit, summary["stable"])
    ci = summary.get(f"{key}_ci95")
    if ci is not None and all(isinstance(v, int | float) for v in ci):
        lo, hi = (show(key, float(v), unit, True) for v in ci)
        text += f" [{lo}, {hi}]"
    return text


def sampled_note(summary: dict) -> str | None:
    s = summary.get("sampled_shards")
    if not s:
        return None
    return (f"estimated from {s['sampled']} of {s['shards']} shards (shards "
            f"{', '.join(map(str, s['indices']))}); [95% interval between shards]")


def warn_if_unstable(summary: dict) -> None:
    """Overload and incomplete answers are results, said on stderr beside the table."""
    if summary.get("answer_quality") == "incomplete":
        part, deg = summary["partial_fraction"], summary["degraded_fraction"]
        rest = max(0.0, 1 - summary["complete_fraction"] - part - deg)
        err_console.print(
            f"warning: {summary['scenario']}: only {percent(summary['complete_fraction'])} of "
            f"queries got every response ({percent(part)} partial and {percent(deg)} degraded "
            f"at the deadline, {percent(rest)} unfinished); the SLO counts complete answers "
            "only.", style="bold yellow", highlight=False)
    if not summary["stable"]:
        pool = summary.get("bottleneck") or "llm"
        sus = summary["retrieval_sustainable_qps" if pool == "retrieval" else "sustainable_qps"]
        sus_text = f"{sus:.3g}" if sus is not None else "unknown"
        err_console.print(
            f"warning: {summary['scenario']} is overloaded: offered "
            f"{summary['offered_qps']:.3g} queries/s, the {pool} pool sustains about "
            f"{sus_text}; queues grow through the run and its latency percentiles are not "
            "meaningful.", style="bold yellow", highlight=False)
