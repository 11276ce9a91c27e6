"""Fleet sizing at internet scale: `searchsim size scenarios/google_scale_two_stage.toml
--replicas 4:16` (3,330 shards, 4 simulated per probe, three seeds), timed end to end.

    .venv/bin/python bench/bench_google_size.py
"""

from __future__ import annotations

from common import ROOT, peak_rss_mb, timed

from sim.runner import sizing
from sim.scenario import loading


def main() -> None:
    s = loading.load(ROOT / "scenarios" / "google_scale_two_stage.toml")
    cands = sizing.candidates(s, [s.llm.hardware], [s.llm.max_batch], [s.llm.tp])
    rows, wall = timed(lambda: sizing.size(s, cands, 4, 16, 0.99, 1, 3))
    best = rows[0]
    res = best["result"] or {}
    print(f"google_scale_two_stage sizing: {wall:.0f} s wall, "
          f"{len(best['probes'])} probes; {best['replicas']:,} replicas "
          f"({best['replicas_per_shard']}/shard), cost/query "
          f"${res.get('cost_per_query_provisioned', float('nan')):.4g} "
          f"{res.get('cost_per_query_ci95')}; peak RSS {peak_rss_mb():.0f} MB", flush=True)


if __name__ == "__main__":
    main()
