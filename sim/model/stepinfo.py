"""What-if questions about one iteration, answered without a simulation (`searchsim step`)."""

from __future__ import annotations

from sim.model import catalog
from sim.model import engine as engines
from sim.model.defaults import ARTICLE_MFU
from sim.model.perf import RooflineStep, make, prefill_pairs
from sim.model.precision import bytes_per_weight, default_kv, kv_bytes_per_element


def step_figures(model: str, hardware: str, tp: int, batch: int, context: int,
                 step_model: str = "roofline", mfu: float = ARTICLE_MFU,
                 profile: str | None = None, engine: str = engines.DEFAULT,
                 precision: str = "bf16", dp: int = 1, ep: int = 1) -> dict:
    """Prefill of `batch` prompts of `context` tokens, and one decode step of `batch`
    sequences each at `context` tokens of context, under `engine`'s step-time profile (or
    `profile`, with the engine's own terms) at `precision`, on a replica of `dp` ranks of
    `tp` chips with its experts over `ep` groups (`batch`: the whole replica's)."""
    m, hw = catalog.model(model), catalog.accelerator(hardware)
    spec = engines.load(engine)
    profile = profile or spec.get("profile")
    chosen = spec.step_profile(profile)
    step = make(step_model, m, hw, tp, mfu, bytes_per_weight(precision), chosen,
                kv_bytes_per_element(default_kv(precision)), precision, dp, ep)
    prefill_tokens = batch * context
    pairs = batch * float(prefill_pairs(context))
    prefill = float(step.iteration_time(prefill_tokens, pairs, 0, 0))
    decode = float(step.iteration_time(0, 0, batch, batch * context))
    out = {
        "model": model, "hardware": hardware, "tp": tp, "dp": dp, "ep": ep, "batch": batch,
        "context": context,
        "step_model": step_model, "engine": engine, "precision": precision,
        "profile": profile if step_model == "roofline" else None,
        "prefill_s": prefill,
        "prefill_tokens_per_s": prefill_tokens / prefill,
        "decode_step_s": decode,
        "decode_tokens_per_s": batch / decode,
    }
    if isinstance(step, RooflineStep):
        out["prefill_bound"] = step.bound(prefill_tokens, pairs, 0, 0)
        out["decode_bound"] = step.bound(0, 0, batch, batch * context)
        out["prefill_terms_s"] = step.terms(prefill_tokens, pairs, 0, 0)
        out["decode_terms_s"] = step.terms(0, 0, batch, batch * context)
        out["ridge_flops_per_byte"] = step.ridge_flops_per_byte
    else:
        out["prefill_bound"] = out["decode_bound"] = f"fixed MFU {mfu:.1%}"
    return out
