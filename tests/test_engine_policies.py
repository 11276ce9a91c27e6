"""The engines' scheduling policies against hand-computed traces.

Every iteration here takes 1 s plus 10 ms per token processed (prompt tokens and one per
decoding sequence), so each timestamp below is worked out by hand in the comments.
"""

import pytest
import simpy

from sim.serving.stages.continuous import ContinuousReplica, Scheduling
from sim.serving.stages.replica import PoolLevels
from sim.serving.stages.request import Request


class LinearStep:
    """1 s per iteration plus 10 ms per token processed."""

    def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
        return 1.0 + 0.01 * (prefill_tokens + decode_seqs)


def _replica(env, rules: Scheduling, capacity: int = 10_000, max_batch: int = 10,
             chunk: int | None = None, steps: int | None = None):
    done: list[Request] = []
    rep = ContinuousReplica(env, 0, LinearStep(), 1, max_batch, PoolLevels(), done.append,
                            kv_capacity_tokens=capacity, chunk_tokens=chunk, scheduling=rules)
    rep.max_run_steps = steps
    rep.check_invariants = True
    env.process(rep.loop())
    return rep, done


def _submit(env, rep, at: float, rid: int, prompt: int, output: int, into: dict):
    def go():
        yield env.timeout(at)
        into[rid] = Request(env, rid, rid, prompt, output)
        rep.submit(into[rid])
    env.process(go())


def _three_requests(policy: str, steps: int | None):
    env, reqs = simpy.Environment(), {}
    rep, _ = _replica(env, Scheduling(policy=policy, prompt_budget=1000), steps=steps)
    _submit(env, rep, 0.0, 0, 100, 3, reqs)
    _submit(env, rep, 0.0, 1, 100, 3, reqs)
    _submit(env, rep, 3.5, 2, 100, 2, reqs)
    env.run(until=100)
    return reqs


@pytest.mark.parametrize("steps", [None, 1])  # the fast path and iteration-by-iteration
def test_a_prompt_only_iteration_pauses_two_decodes(steps):
    """Prompt-first (vLLM V0): A and B prefill together [0, 3] (200 tokens: 3 s) and sample
    their first tokens; they decode [3, 4.02]; C arrives at 3.5, so at 4.02 C's prompt runs
    alone [4.02, 6.02] while A and B wait; then all three decode [6.02, 7.05]: A and B have
    their third token, C its second."""
    r = _three_requests("prompt_first", steps)
    assert r[0].first_token == pytest.approx(3.0) and r[1].first_token == pytest.approx(3.0)
    assert r[2].first_token == pytest.approx(6.02)
    for rid in range(3):
        assert r[rid].finished == pytest.approx(7.05)


@pytest.mark.parametrize("steps", [None, 1])
def test_mixed_iterations_keep_decoding_through_a_prompt(steps):
    """The same arrivals mixed (vLLM V1 without a chunk budget): at 4.02 C's prompt and A's
    and B's decodes share one iteration [4.02, 6.04] (100 + 2 tokens), so A and B finish at
    6.04; C decodes alone [6.04, 7.05]."""
    r = _three_requests("mixed", steps)
    assert r[0].finished == pytest.approx(6.04) and r[1].finished == pytest.approx(6.04)
    assert r[2].first_token == pytest.approx(6.04)
    assert r[2].finished == pytest.approx(7.05)


def _two_in_four_blocks(block: int):
    env, reqs = simpy.Environment(), {}
    rep, _ = _replica(env, Scheduling(block_size=block, prompt_budget=None), capacity=64)
    _submit(env, rep, 0.0, 0, 17, 5, reqs)
    _submit(env, rep, 0.0, 1, 33, 2, reqs)
    env.run(until=100)
    return reqs


def test_block_rounding_refuses_an_admission_token_counting_allows():
    """64 tokens of KV in 16-token blocks: A (17 tokens: 2 blocks) and B (33 tokens: 3 blocks)
    need 5 of the 4 blocks, though their 17 + 33 + 1 tokens fit. B waits for A: A prefills
    [0, 1.17] and decodes 4 tokens [1.17, 5.21]; B prefills [5.21, 6.54], decodes [6.54, 7.55].
    Counted in tokens (blocks of 1) both start at once."""
    blocks = _two_in_four_blocks(16)
    assert blocks[0].finished == pytest.approx(5.21)
    assert blocks[1].started == pytest.approx(5.21)
    assert blocks[1].first_token == pytest.approx(6.54)
    assert blocks[1].finished == pytest.approx(7.55)
    tokens = _two_in_four_blocks(1)
    assert tokens[1].started == 0.0
    assert tokens[1].first_token == pytest.approx(1.5)  # 50 prompt tokens together: 1.5 s


def test_the_watermark_keeps_blocks_free():
    """The same two requests with 5 blocks but one kept free: B waits as with 4."""
    env, reqs = simpy.Environment(), {}
    rep, _ = _replica(env, Scheduling(block_size=16, watermark_blocks=1), capacity=80)
    _submit(env, rep, 0.0, 0, 17, 5, reqs)
    _submit(env, rep, 0.0, 1, 33, 2, reqs)
    env.run(until=100)
    assert reqs[1].started == pytest.approx(5.21)


def _preempted(swap: bool, steps: int | None):
    env, reqs = simpy.Environment(), {}
    rules = Scheduling(swap_s_per_token=0.1 if swap else None, swap_tokens=100)
    rep, _ = _replica(env, rules, capacity=20, max_batch=2, steps=steps)
    _submit(env, rep, 0.0, 0, 8, 6, reqs)
    _submit(env, rep, 0.0, 1, 8, 6, reqs)
    env.run(until=100)
    return reqs, rep


@pytest.mark.parametrize("steps", [None, 1])
def test_a_swap_moves_the_kv_out_and_back_instead_of_recomputing(steps):
    """20 KV tokens, two requests of 8 + 6: both prefill [0, 1.16] and decode [1.16, 2.18];
    the next decode needs 22 tokens, so B (the newest, 10 tokens of KV) is swapped out: 1 s
    at 0.1 s a token [2.18, 3.18]; A decodes its 4 last tokens [3.18, 7.22] and leaves; B is
    swapped back in [7.22, 8.22] and decodes its 4 last tokens [8.22, 12.26], its prompt never
    prefilled again. Each transfer's second is charged to B."""
    r, rep = _preempted(True, steps)
    a, b = r[0], r[1]
    assert a.finished == pytest.approx(7.22)
    assert b.preemptions == 1 and b.first_token == pytest.approx(1.16)
    assert b.finished == pytest.approx(12.26)
    assert b.prefilled == 8  # no recomputation
    assert rep.levels.preemptions == 1


@pytest.mark.parametrize("steps", [None, 1])
def test_recomputation_prefills_the_prompt_and_tokens_again(steps):
    """Without swapping B's 10 tokens are dropped and recomputed when A leaves at 7.22 (no
    transfer: A finishes at 6.22): [6.22, 7.32] prefills 10 tokens and samples B's third
    token, three decodes follow [7.32, 10.35]."""
    r, _ = _preempted(False, steps)
    assert r[0].finished == pytest.approx(6.22)
    assert r[1].prefilled == 18
    assert r[1].finished == pytest.approx(10.35)


def test_swap_space_exhausted_falls_back_to_recomputation():
    env, reqs = simpy.Environment(), {}
    rules = Scheduling(swap_s_per_token=0.1, swap_tokens=5)  # B's 10 tokens do not fit
    rep, _ = _replica(env, rules, capacity=20, max_batch=2)
    _submit(env, rep, 0.0, 0, 8, 6, reqs)
    _submit(env, rep, 0.0, 1, 8, 6, reqs)
    env.run(until=100)
    assert reqs[1].prefilled == 18 and reqs[1].finished == pytest.approx(10.35)


def test_a_prompt_first_iteration_takes_whole_prompts_within_the_budget():
    """Budget 150: A (100) is admitted, B (100) would exceed it and waits for the next
    prompt-only iteration: A [0, 2], B [2, 4] (A's decodes pause), then both decode."""
    env, reqs = simpy.Environment(), {}
    rep, _ = _replica(env, Scheduling(policy="prompt_first", prompt_budget=150))
    _submit(env, rep, 0.0, 0, 100, 2, reqs)
    _submit(env, rep, 0.0, 1, 100, 2, reqs)
    env.run(until=100)
    assert reqs[0].first_token == pytest.approx(2.0)
    assert reqs[1].first_token == pytest.approx(4.0)
    assert reqs[0].finished == pytest.approx(5.02) and reqs[1].finished == pytest.approx(5.02)
