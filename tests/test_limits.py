"""Deadline policies, each on a deterministic hand-computed case.

One replica, batch size 1, a step model of 0.1 s per token: a request with a 1-token prompt
and 10 output tokens takes 1.0 s alone (1 prefill iteration, which samples the first token,
then 9 decode iterations of 0.1 s)."""

import numpy as np
import pytest
import simpy

from sim.scenario.schema import LLM, Limits
from sim.serving.limits import wait_for_responses
from sim.serving.records import Recorder
from sim.serving.stages.pool import LLMPool
from sim.serving.stages.request import Countdown


class PerToken:
    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        return 0.1 * (np.asarray(prefill_tokens) + np.asarray(decode_seqs))


def _run(queries, batching="continuous"):
    """queries: list of (requests, deadline, policy); all arrive at t = 0 in this order."""
    env, rec = simpy.Environment(), Recorder()
    cfg = LLM(model="llama2_7b", hardware="h100", tp=1, replicas=1, max_batch=1,
              batching=batching)
    pool = LLMPool(env, cfg, PerToken(), rec, kv_capacity_tokens=10**6)
    results = []

    def query(qid, n, deadline, policy):
        everything = Countdown(env, n)
        reqs = [pool.submit(qid, 1, 10, everything) for _ in range(n)]
        limits = Limits(deadline_s=deadline, policy=policy)
        outcome, done = yield from wait_for_responses(env, pool, reqs, everything, 0.0, limits)
        results.append({"qid": qid, "t": env.now, "outcome": outcome, "responses": len(done),
                         "reqs": reqs})

    for qid, (n, deadline, policy) in enumerate(queries):
        env.process(query(qid, n, deadline, policy))
    env.run(until=100)
    rec.close()
    assert len(results) == len(queries)
    return sorted(results, key=lambda r: r["qid"]), rec.request_table().to_pandas()


def test_partial_answers_with_what_finished_and_cancels_the_rest():
    (q,), reqs = _run([(3, 2.55, "partial")])
    # the three run one after another: done at 1.0 and 2.0; the third is cut at 2.55
    assert q["outcome"] == "partial" and q["responses"] == 2
    assert q["t"] == pytest.approx(2.55)
    assert [r.finished for r in q["reqs"][:2]] == pytest.approx([1.0, 2.0])
    third = reqs.iloc[2]
    assert third.cancelled
    # it stops at the next iteration boundary, 2.6: 1 prefill + 5 decode iterations consumed,
    # 6 tokens generated (the prefill sampled the first)
    assert third.finished == pytest.approx(2.6)
    assert third.accelerator_s == pytest.approx(0.6)
    assert third.generated_tokens == 6
    assert third.first_token == pytest.approx(2.1)  # its prefill iteration, 2.0 -> 2.1


def test_partial_with_nothing_finished_is_degraded():
    (q,), _ = _run([(1, 0.45, "partial")])
    assert q["outcome"] == "degraded" and q["responses"] == 0 and q["t"] == pytest.approx(0.45)


def test_degrade_when_the_llm_cannot_start_in_time():
    (first, second), reqs = _run([(1, None, "degrade"), (1, 0.5, "degrade")])
    # the second waits behind the first (busy 0 - 1.0 s): not started by 0.5 -> plain results
    assert second["outcome"] == "degraded" and second["t"] == pytest.approx(0.5)
    assert first["outcome"] == "none" and first["t"] == pytest.approx(1.0)
    cancelled = reqs[reqs.cancelled].iloc[0]
    assert cancelled.accelerator_s == 0 and np.isnan(cancelled.started)  # never served


def test_degrade_waits_when_the_llm_did_start():
    (q,), _ = _run([(1, 0.5, "degrade")])
    assert q["outcome"] == "late" and q["t"] == pytest.approx(1.0)


def test_none_policy_waits_and_reports_late_or_met():
    (a, b), _ = _run([(1, 1.5, "none"), (1, 1.5, "none")])
    assert (a["outcome"], a["t"]) == ("met", pytest.approx(1.0))
    assert (b["outcome"], b["t"]) == ("late", pytest.approx(2.0))


def test_static_batching_partial_cancels_queued_work():
    (q,), reqs = _run([(3, 1.5, "partial")], batching="static")
    # static batches cannot be cut: the second request started at 1.0 runs to 2.0 (its full
    # 1.0 s is still paid for); the third never starts and costs nothing
    assert q["outcome"] == "partial" and q["responses"] == 1 and q["t"] == pytest.approx(1.5)
    assert reqs.cancelled.tolist() == [False, True, True]
    assert reqs.accelerator_s.tolist() == pytest.approx([1.0, 1.0, 0.0])
