"""A decode run priced in closed form equals pricing its iterations one by one."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.model import catalog, perf
from sim.model.decoderun import DecodeRun
from sim.model.profile import load as load_profile

STEPS = [perf.make("roofline", catalog.model(m), catalog.accelerator(h), tp,
                   profile=load_profile("splitwise"))
         for m, h, tp in (("llama2_70b", "a100_80gb", 4), ("llama3_70b", "h100", 8),
                          ("llama2_7b", "l4", 1))]
STEPS.append(perf.make("article", catalog.model("gpt3_175b"), catalog.accelerator("a100_40gb"),
                       8))
# mixtures of experts: TP-sliced, DEP (attention data parallel, experts over all chips and
# an all-to-all) and MXFP4 experts at their own peak
STEPS += [perf.make("roofline", catalog.model(m), catalog.accelerator(h), tp,
                    profile=load_profile("trtllm"), bytes_per_param=1.0, kv_bytes=1.0,
                    precision=p, dp=dp, ep=ep)
          for m, h, tp, dp, ep, p in (("deepseek_v3", "h200", 1, 8, 8, "fp8"),
                                      ("qwen3_30b_a3b", "h100", 2, 1, 1, "fp8"),
                                      ("gpt_oss_120b", "b200", 1, 2, 2, "fp4"))]


def _stepped(step, seqs, context, steps):
    return np.cumsum(perf.decode_times(step, seqs, context, steps))


@settings(max_examples=200, deadline=None)
@given(which=st.integers(0, len(STEPS) - 1), seqs=st.integers(1, 256),
       context=st.integers(0, 400_000), steps=st.integers(1, 3000),
       where=st.floats(0.0, 1.2))
def test_closed_form_equals_iteration_by_iteration(which, seqs, context, steps, where):
    step = STEPS[which]
    run, cum = DecodeRun(step, seqs, context, steps), _stepped(step, seqs, context, steps)
    for k in {1, steps // 3, steps // 2, steps}:
        if k:
            assert run.elapsed(k) == np.float64(cum[k - 1]) or \
                abs(run.elapsed(k) - cum[k - 1]) <= 1e-12 * cum[k - 1]
    elapsed = where * cum[-1]
    expect = min(steps, int(np.searchsorted(cum, elapsed, side="right")) + 1)
    got = run.done_by(elapsed)
    # equal, or off by one only where `elapsed` sits on a boundary to rounding
    assert got == expect or abs(cum[min(got, expect) - 1] - elapsed) <= 1e-12 * cum[-1]


def test_the_lines_cross_inside_a_run():
    """A small batch with a long context turns from memory- to compute-bound... or the
    reverse: whichever, both regimes appear in some run and the sum still matches."""
    step = STEPS[0]
    seen = set()
    for seqs, context in ((256, 0), (1, 0), (128, 300_000), (64, 10_000)):
        t = perf.decode_times(step, seqs, context, 4000)
        lines = step.decode_lines(seqs, context)
        i = np.arange(4000)
        seen |= set(np.where(lines[0] + lines[1] * i >= lines[2] + lines[3] * i, "c", "m"))
        assert np.isclose(DecodeRun(step, seqs, context, 4000).total, t.sum(), rtol=1e-12)
    assert seen == {"c", "m"}


def test_a_step_model_without_lines_is_priced_iteration_by_iteration():
    class PerToken:
        def iteration_time(self, prefill_tokens, prefill_attn, decode_seqs, decode_context):
            return 0.001 * decode_seqs + 1e-6 * np.asarray(decode_context)

    run = DecodeRun(PerToken(), 4, 100, 10)
    cum = _stepped(PerToken(), 4, 100, 10)
    assert run.total == cum[-1] and run.elapsed(3) == cum[2]
    assert run.done_by(cum[2]) == 4 and run.done_by(cum[2] - 1e-9) == 3


@settings(max_examples=200, deadline=None)
@given(which=st.integers(0, len(STEPS) - 1), prefill=st.integers(0, 8192),
       already=st.integers(0, 8192), seqs=st.integers(0, 256), context=st.integers(0, 10**6))
def test_scalar_path_equals_the_array_path_to_the_last_bit(which, prefill, already, seqs,
                                                           context):
    step = STEPS[which]
    pairs = perf.pairs_of_chunk(prefill, already)
    assert pairs == float(perf.prefill_pairs(prefill, already))
    seconds, compute_bound = step.scalar_time(prefill, pairs, seqs, context)
    assert seconds == float(step.iteration_time(prefill, pairs, seqs, context))
    if hasattr(step, "terms"):
        terms = step.terms(prefill, pairs, seqs, context)
        assert compute_bound == (terms["compute"] >= terms["memory"])
