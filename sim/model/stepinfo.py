"""What-if questions about one iteration, answered without a simulation (`searchsim step`)."""

from __future__ import annotations

from sim.model import catalog
from sim.model import profile as profiles
from sim.model.defaults import ARTICLE_MFU
from sim.model.perf import RooflineStep, make, prefill_pairs


def step_figures(model: str, hardware: str, tp: int, batch: int, context: int,
                 step_model: str = "roofline", mfu: float = ARTICLE_MFU,
                 profile: str = "splitwise") -> dict:
    """Prefill of `batch` prompts of `context` tokens, and one decode step of `batch`
    sequences each at `context` tokens of context."""
    m, hw = catalog.model(model), catalog.accelerator(hardware)
    step = make(step_model, m, hw, tp, mfu, profile=profiles.load(profile))
    prefill_tokens = batch * context
    pairs = batch * float(prefill_pairs(context))
    prefill = float(step.iteration_time(prefill_tokens, pairs, 0, 0))
    decode = float(step.iteration_time(0, 0, batch, batch * context))
    out = {
        "model": model, "hardware": hardware, "tp": tp, "batch": batch, "context": context,
        "step_model": step_model,
        "profile": profile if step_model == "roofline" else None,
        "prefill_s": prefill,
        "prefill_tokens_per_s": prefill_tokens / prefill,
        "decode_step_s": decode,
        "decode_tokens_per_s": batch / decode,
    }
    if isinstance(step, RooflineStep):
        out["prefill_bound"] = step.bound(prefill_tokens, pairs, 0, 0)
        out["decode_bound"] = step.bound(0, 0, batch, batch * context)
        out["ridge_flops_per_byte"] = step.ridge_flops_per_byte
    else:
        out["prefill_bound"] = out["decode_bound"] = f"fixed MFU {mfu:.1%}"
    return out
