"""Mutation check of the serving and model layers: each mutant is a one-line change a real
bug could make; the suite must fail on every one of them.

    .venv/bin/python scripts/mutants.py [NAME-SUBSTRING]      (or: make mutants)

Each mutant is applied to the tree the script sits in, the fast suite runs with -x (a killed
mutant stops at its first failure), and the file is restored whatever happens. It takes a
while: run it in a separate worktree (`git worktree add /tmp/m && cd /tmp/m && make mutants`)
to keep working meanwhile. Prints one line per
mutant and the score. The list grows with every bug a review finds a test could have caught.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (name, file, original text, mutated text): the original must occur exactly once
MUTANTS = [
    ("the prefill's sampled token not counted as committed", "sim/serving/stages/continuous.py",
     "        self.committed += len(prefilled)", "        self.committed += 0"),
    ("a decode run's closed form switches lines one iteration early", "sim/model/decoderun.py",
     "min(steps, math.floor(gap / slope) + 1)", "min(steps, math.floor(gap / slope))"),
    ("a leaving request is billed the replica's whole history", "sim/serving/stages/decoding.py",
     "req.accel_s += self.acc - req.acc0", "req.accel_s += self.acc"),
    ("a level's integral at a mark drops the stretch since the last change",
     "sim/serving/monitor.py",
     "self._at[mark] = self._area + self.value * (mark - self._t)",
     "self._at[mark] = self._area"),
    ("rows released before their request is final", "sim/serving/records.py",
     "while pending and _is_done(pending[0]):", "while pending:"),
    ("completed queries counted outside the window", "sim/analysis/tally.py",
     "r.n_done += int((window & done).sum())", "r.n_done += int(done.sum())"),
    ("p95 computed as p90", "sim/analysis/summary.py",
     "p50, p95, p99 = _percentiles(latency, (50, 95, 99))",
     "p50, p95, p99 = _percentiles(latency, (50, 90, 99))"),
    ("roofline memory 11% slower", "sim/model/perf.py",
     "return self.hardware.hbm_bytes_per_s * self.tp * self._fit.memory_efficiency",
     "return self.hardware.hbm_bytes_per_s * self.tp * self._fit.memory_efficiency / 1.11"),
    ("chunk budget ignores decode tokens", "sim/serving/stages/continuous.py",
     "self.chunk_tokens - decode_count", "self.chunk_tokens"),
    ("preemption takes the oldest request", "sim/serving/stages/continuous.py",
     "            victim = self.running[-1]", "            victim = self.running[0]"),
    ("admission without one token of headroom", "sim/serving/stages/continuous.py",
     "if self.committed + head.prompt + head.generated - reuse + 1 > self.capacity:",
     "if self.committed + head.prompt + head.generated - reuse > self.capacity:"),
    ("article step ignores tensor parallelism", "sim/model/perf.py",
     "(self.hardware.peak_flops * self.tp * self.mfu)", "(self.hardware.peak_flops * self.mfu)"),
    ("all-reduce ring takes tp - 1 steps", "sim/model/perf.py",
     "count, steps = 2 * self.model.layers, 2 * (self.tp - 1)",
     "count, steps = 2 * self.model.layers, self.tp - 1"),
    ("static batch's first token after one decode step", "sim/serving/stages/static.py",
     "return float(ends[-1]), ends[outputs - 1], prefill",
     "return float(ends[-1]), ends[outputs - 1], prefill + decode[0]"),
    ("least-outstanding router breaks ties to the last replica", "sim/serving/stages/router.py",
     "if load < best_load:", "if load <= best_load:"),
    ("LRU cache forgets recency on a hit", "sim/serving/cache.py",
     "        self._entries.move_to_end(key)\n        return True",
     "        return True"),
    ("partial deadline leaves unfinished work running", "sim/serving/limits.py",
     "                pool.cancel(r)\n        return (\"partial\"",
     "                pass\n        return (\"partial\""),
    ("Erlang C off by one server", "sim/model/queueing.py",
     "return erlang_c(c, lam / mu) / (c * mu - lam)",
     "return erlang_c(c, lam / mu) / ((c + 1) * mu - lam)"),
    ("calibration fits squared error, not robust", "sim/model/calibration.py",
     'loss="soft_l1"', 'loss="linear"'),
    ("a restarted request keeps its old tokens", "sim/serving/stages/faults.py",
     "            req.generated = 0\n", "            pass\n"),
    ("memory-bound iterations drawn at prompt-phase power",
     "sim/serving/stages/continuous.py",
     "state = PREFILL if compute_bound else DECODE", "state = PREFILL"),
    ("sampled intervals without the finite-population factor", "sim/runner/sampling.py",
     "fpc = math.sqrt(max(0.0, 1 - k / population))", "fpc = 1.0"),
    ("the router ignores replica speed", "sim/serving/stages/router.py",
     "load = (replicas[i].outstanding + 1) / replicas[i].speed",
     "load = replicas[i].outstanding + 1.0"),
    ("availability over replica-time counted once per pool", "sim/analysis/summary.py",
     '"availability": snap.up.integral(w0, w1) / (len(snap.replicas) * (w1 - w0)),',
     '"availability": snap.up.integral(w0, w1) / (w1 - w0),'),
    ("cancelled requests' work is free", "sim/serving/stages/continuous.py",
     "            req.accel_s += per_token * n", "            req.accel_s += 0.0 * n"),
    ("[new] a band of hours sized at its quietest rate", "sim/runner/autoscale.py",
     "return [Band(tuple(sorted(h for _, h in g)), max(m for m, _ in g))",
     "return [Band(tuple(sorted(h for _, h in g)), min(m for m, _ in g))"),
    ("[new] the day's plan lets a quieter band run more replicas", "sim/runner/autoscale.py",
     "        plan.append(cap if r is None else min(cap, r))",
     "        plan.append(cap if r is None else r)"),
    ("[new] a sharded merge lets ties across batches out of file order",
     "sim/io/merging.py",
     'n = int(np.searchsorted(self.keys(), frontier, side="left"))',
     'n = int(np.searchsorted(self.keys(), frontier, side="right"))'),
    ("[new] the Zipf fit weighs every rank alike", "sim/traces/stats.py",
     "    observed = float((counts * log_rank).sum() / counts.sum())",
     "    observed = float(log_rank.mean())"),
    ("[new] a replica back from its own repair while its domain is still down",
     "sim/serving/stages/faults.py",
     "            if self._causes[rep.index] == 0:\n                rep.repair()",
     "            if True:\n                rep.repair()"),
    ("[new] a failure domain fails only its first replica", "sim/serving/stages/faults.py",
     "                env.process(self._cycle(pool.replicas[first:first + size], up, down))",
     "                env.process(self._cycle(pool.replicas[first:first + 1], up, down))"),
    ("[new] a failing retrieval server never cuts the call it serves",
     "sim/serving/stages/retrieval.py",
     "        if i < len(serving):", "        if i < 0:"),
    ("[new] a retrieval call cut by a failure is not retried",
     "sim/serving/stages/retrieval.py",
     "        if self.timeout_s is None and not self.failing:",
     "        if self.timeout_s is None:"),
    ("[new] scaling an hour ahead looks at the previous hour", "sim/runner/autoscale.py",
     "    return [max(per_hour[h], per_hour[(h + 1) % HOURS], key=lambda x: x[0])",
     "    return [max(per_hour[h], per_hour[(h - 1) % HOURS], key=lambda x: x[0])"),
    ("[new] hosts counted per chip, not per server", "sim/analysis/energy.py",
     "    servers = s.llm.chips / owned.chips_per_server",
     "    servers = s.llm.chips"),
    ("[new] sampled percentiles averaged over shards, not pooled", "sim/runner/sampling.py",
     "    summary.update(pooled_distributions(parts))",
     "    summary.update({})"),
    ("[new] a finished request keeps its waiter (a cycle per query for the collector)",
     "sim/serving/stages/replica.py",
     "        waiter, req.waiter = req.waiter, None", "        waiter = req.waiter"),
    # engines (issue 19)
    ("prompt-first iterations keep decoding", "sim/serving/stages/continuous.py",
     "        decoding = 0 if self.prompt_first else self.group.n",
     "        decoding = self.group.n"),
    ("block admission ignores the head's own blocks", "sim/serving/stages/continuous.py",
     "        room = self.blocks - need - self.rules.watermark_blocks",
     "        room = self.blocks - self.rules.watermark_blocks"),
    ("a swapped request is recomputed anyway", "sim/serving/stages/continuous.py",
     "        req.kv = kept\n", "        req.kv = 0\n"),
    ("vLLM's KV sizing forgets the activation reserve", "sim/model/perf.py",
     "    return (hardware.hbm_bytes * utilization - reserve_gb * 1e9) * tp * dp - weights",
     "    return hardware.hbm_bytes * utilization * tp * dp - weights"),
    # mixture of experts and expert parallelism (issue 21)
    ("a DEP replica holds one copy of the shared weights, not one per rank", "sim/model/perf.py",
     "            + (dp - 1) * model.resident_params() * bytes_per_param)",
     "            + 0 * model.resident_params() * bytes_per_param)"),
    ("the all-to-all counts the copies that stay on the GPU", "sim/model/perf.py",
     "copies = (m.experts_per_token or 0) * (self.ep - 1) / self.ep / self._gpus",
     "copies = (m.experts_per_token or 0) / self._gpus"),
    ("the all-to-all's overlap hides the exposed share", "sim/model/perf.py",
     "        exposed = 1.0 - p.a2a_overlap", "        exposed = p.a2a_overlap or 1.0"),
    ("expert parallelism without load imbalance", "sim/model/perf.py",
     "return self.profile.expert_imbalance if self.ep > 1 else 1.0",
     "return 1.0"),
    ("attention ranks do not split the batch's KV reads", "sim/model/perf.py",
     "memory = self._s_weights + self._s_per_kv_token * kv_tokens / self.dp",
     "memory = self._s_weights + self._s_per_kv_token * kv_tokens"),
    ("touched experts not padded to a GEMM tile", "sim/model/perf.py",
     "            pairs + self.profile.moe_half_tokens * touched) / self.dp",
     "            pairs) / self.dp"),
    ("MXFP4 experts multiply at the FP4 peak on Blackwell", "sim/model/precision.py",
     'return "fp8" if hw.peak_tflops_fp4 and hw.peak_tflops_fp8 else "bf16"',
     'return "fp4" if hw.peak_tflops_fp4 else "bf16"'),
    ("a replica of DP ranks admits one rank's batch", "sim/serving/stages/pool.py",
     "                                  cfg.max_batch * g.ranks,",
     "                                  cfg.max_batch,"),
    ("DEP read as tensor parallel", "sim/runner/userdata.py",
     "        return (1, n, n) if m.group(3) is None else None",
     "        return (n, 1, 1) if m.group(3) is None else None"),
    ("a DEP replica billed for one rank's chips", "sim/scenario/llm.py",
     "        return self.tp * self.dp\n\n    @property\n    def chips(self) -> int:\n"
     "        return self.chips_per_replica * self.replicas",
     "        return self.tp\n\n    @property\n    def chips(self) -> int:\n"
     "        return self.chips_per_replica * self.replicas"),
    ("the all-to-all fit ignores the network beyond the node", "sim/model/alltoall.py",
     "        remote = k.bytes * (1 - k.local_share) / (self.network_gb_s * 1e9)",
     "        remote = 0.0"),
    # advice from causes (issue 20)
    ("a cut answer's wait not counted as waiting", "sim/analysis/tally.py",
     "            wait = np.nan_to_num(col(\"queue_wait_s\")[answered])",
     "            wait = np.nan_to_num(col(\"llm_wait_s\")[answered])"),
    ("replicas dismissed while attainment rises", "sim/runner/sizing.py",
     "        p.slo_attainment is not None and top > p.slo_attainment + 0.005",
     "        p.slo_attainment is not None and top > p.slo_attainment + 0.5"),
    # pricing, prefix caching, the semantic cache, progress and estimates (this session)
    ("[new] a price kind is the first of its kind, not the latest", "sim/model/pricing.py",
     "if best is None or month_index(p.date) > month_index(best.date):",
     "if best is None:"),
    ("[new] the price date is ignored", "sim/model/pricing.py",
     "if p.kind != kind or (limit is not None and month_index(p.date) > limit):",
     "if p.kind != kind:"),
    ("[new] prices six months apart are flagged", "sim/model/pricing.py",
     "if months > STALE_MONTHS else None", "if months >= STALE_MONTHS else None"),
    ("[new] an owned chip-hour without its host's share", "sim/model/pricing.py",
     "cost.usd_per_chip_hour_at(hw.power.prefill_w + host_w_per_chip)",
     "cost.usd_per_chip_hour_at(hw.power.prefill_w)"),
    ("[new] a prefix hit may leave no prompt token to compute",
     "sim/serving/stages/continuous.py",
     "most = (req.prompt - 1) // self.prefix.block_tokens",
     "most = req.prompt // self.prefix.block_tokens"),
    ("[new] a prefill's blocks kept only in part", "sim/serving/stages/continuous.py",
     "                    self.prefix.insert(req.chain)",
     "                    self.prefix.insert(req.chain[:1])"),
    ("[new] a kept chain's head not made the most recent", "sim/serving/prefixcache.py",
     "        for b in reversed(chain[:kept]):  # tail first, so that the head is the most recent",
     "        for b in chain[:kept]:"),
    ("[new] cached tokens counted in the request's own memory",
     "sim/serving/stages/continuous.py",
     "self.kv_used -= req.kv - req.reused", "self.kv_used -= req.kv"),
    ("[new] decode steps skip the cached context", "sim/serving/stages/continuous.py",
     "DecodeRun(self.step, n, self.kv_used + self.reused, steps)",
     "DecodeRun(self.step, n, self.kv_used, steps)"),
    ("[new] affinity prefers the shortest cached prefix", "sim/serving/stages/router.py",
     "if held > best_held or (held == best_held and load < best_load):",
     "if held < best_held or (held == best_held and load < best_load):"),
    ("[new] passages repeat within a query", "sim/serving/passages.py",
     "for salt in range(1, 64):", "for salt in range(1, 1):"),
    ("[new] paraphrases drawn with the other intents' share", "sim/serving/semantic.py",
     "paraphrase = self._u.next() < self.paraphrase_share",
     "paraphrase = self._u.next() > self.paraphrase_share"),
    ("[new] a threshold of 1 still looks up", "sim/scenario/schema.py",
     "return self.semantic is not None and self.semantic.threshold < 1.0",
     "return self.semantic is not None"),
    ("[new] running jobs' shares not reported", "sim/runner/parallel.py",
     "tick(done + sum(shares[futures[f]] for f in pending), len(jobs))",
     "tick(done, len(jobs))"),
    ("[new] the estimate misses the probe below the top", "sim/runner/estimate.py",
     "probes = 2 + math.ceil(math.log2(hi - lo + 1))",
     "probes = 1 + math.ceil(math.log2(hi - lo + 1))"),
    ("[new] a block read back from host memory costs nothing", "sim/serving/stages/continuous.py",
     "            self._charge_copy(req, copied * self._host_s_per_block)",
     "            self._charge_copy(req, 0.0)"),
    ("[new] capacity at full batches ignores prefix reuse", "sim/analysis/summary.py",
     "reused = min(t.cached_tokens / t.requests, max(prompt - 1, 0.0))", "reused = 0.0"),
    ("[new] a disaggregated transfer without its latency", "sim/serving/stages/pool.py",
     "        return wire + self.latency_s", "        return wire"),
    ("[new] KV arriving at a decode pool counted as prefill", "sim/serving/stages/continuous.py",
     "                head.kv, head.transferred = head.transferred, 0",
     "                head.kv, head.transferred = 0, 0"),
    ("[new] capacity at full batches ignores the KV cache", "sim/scenario/capacity.py",
     "    return perf.kv_capacity(model, hardware, tp, s.llm.weight_bytes,",
     "    return None and perf.kv_capacity(model, hardware, tp, s.llm.weight_bytes,"),
]


# the tests most likely to kill a serving or model mutant first, then the rest of the suite
FIRST = ["tests/test_garbage.py", "tests/test_autoscale.py", "tests/test_merging.py",
         "tests/test_decoderun.py", "tests/test_monitor.py", "tests/test_streaming.py",
         "tests/test_faults.py", "tests/test_energy.py", "tests/test_sampling.py",
         "tests/test_mixed.py",
         "tests/test_stages.py", "tests/test_oracles.py", "tests/test_continuous.py",
         "tests/test_limits.py", "tests/test_calibration.py", "tests/test_roofline.py",
         "tests/test_golden.py", "tests/test_core.py", "tests/test_theory.py",
         "tests/test_economics.py", "tests/test_degradation.py", "tests/test_traces.py"]


def run_suite() -> tuple[bool, str]:
    rest = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                  if str(p.relative_to(ROOT)) not in FIRST)
    # subprocesses the tests start must import this tree's (mutated) code too
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        *FIRST, *rest], cwd=ROOT, capture_output=True, text=True, env=env)
    failed = next((line for line in r.stdout.splitlines() if line.startswith("FAILED")), "")
    return r.returncode != 0, failed[:150]


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # so the `finally` below restores the mutated file


def main(only: str = "") -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    chosen = [m for m in MUTANTS if only in m[0]]
    killed = 0
    for name, rel, original, mutated in chosen:
        path = ROOT / rel
        source = path.read_text(encoding="utf-8")
        if source.count(original) != 1:
            print(f"STALE    {name}: the original text is not in {rel} exactly once")
            continue
        path.write_text(source.replace(original, mutated), encoding="utf-8")
        try:
            dead, by = run_suite()
        finally:
            path.write_text(source, encoding="utf-8")
        killed += dead
        print(f"{'killed  ' if dead else 'SURVIVED'} {name}" + (f"  <- {by}" if dead else ""),
              flush=True)
    print(f"mutation score: {killed}/{len(chosen)} killed")
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
