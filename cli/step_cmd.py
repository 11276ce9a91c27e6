"""`searchsim step`: prefill and decode times of one iteration under a step-time model."""

from __future__ import annotations

import typer

from cli.common import clean_errors, console, print_json, table
from sim.errors import Problem, SearchsimError
from sim.model.defaults import ARTICLE_MFU


def _batches(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise SearchsimError(Problem("--batch", text, "positive integers, comma-separated"))
    return values


def _layout(tp: int, dp: int, ep: int) -> str:
    """"8" (TP 8), "DEP 8" (tp 1, dp = ep), or each degree named."""
    if dp == 1 and ep == 1:
        return str(tp)
    if tp == 1 and dp == ep:
        return f"DEP {dp}"
    return f"(TP {tp}, DP {dp}, EP {ep})"


@clean_errors
def step_command(
    model: str = typer.Option("gpt_13b", help="Catalog model key."),
    hardware: str = typer.Option("a100_40gb", help="Catalog accelerator key."),
    tp: int = typer.Option(1, help="Accelerators per rank (tensor parallel)."),
    dp: int = typer.Option(1, help="Attention data-parallel ranks in the replica (MoE)."),
    ep: int = typer.Option(1, help="Expert-parallel groups the routed experts are split "
                                   "over (DEP 8: --tp 1 --dp 8 --ep 8)."),
    batch: str = typer.Option("1", help="Batch size, or several: 1,8,64."),
    context: int = typer.Option(512, help="Prompt length / context length in tokens."),
    step_model: str = typer.Option("roofline", help="roofline or article."),
    mfu: float = typer.Option(ARTICLE_MFU, help="MFU of the article model."),
    engine: str = typer.Option("vllm-v1", help="Serving engine whose step profile applies."),
    profile: str = typer.Option(None, help="Roofline profile (default: the engine's): "
                                           "shipped name or TOML."),
    precision: str = typer.Option("bf16", help="bf16, fp16, fp8, fp4, mxfp4 or int4."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Prefill time, decode step time, tokens per second and the bound, per batch size."""
    from sim.model import catalog
    from sim.model import engine as engines
    from sim.model.precision import WEIGHTS
    from sim.model.stepinfo import step_figures
    m, _, _ = catalog.model(model), catalog.accelerator(hardware), engines.load(engine)
    if precision not in WEIGHTS:
        raise SearchsimError(Problem("--precision", precision, "one of: " + ", ".join(WEIGHTS)))
    for name, value, ok, expected in (
            ("--tp", tp, tp >= 1, "an integer >= 1"),
            ("--dp", dp, dp >= 1 and (dp == 1 or m.is_moe),
             "1, or an integer >= 1 for a mixture of experts"),
            ("--ep", ep, ep >= 1 and (ep == 1 or (m.is_moe and (tp * dp) % ep == 0
                                                  and (m.experts or 0) % ep == 0)),
             "1, or for a mixture of experts a divisor of tp x dp and of its experts"),
            ("--context", context, context >= 1, "an integer >= 1"),
            ("--step-model", step_model, step_model in ("roofline", "article"),
             "roofline or article"),
            ("--mfu", mfu, 0 < mfu <= 1, "a fraction in (0, 1]")):
        if not ok:
            raise SearchsimError(Problem(name, value, expected))
    rows = [step_figures(model, hardware, tp, b, context, step_model, mfu, profile, engine,
                         precision, dp, ep) for b in _batches(batch)]
    if as_json:
        print_json(rows if len(rows) > 1 else rows[0])
        return
    console.print(table(
        f"{model} on {_layout(tp, dp, ep)} x {hardware}, context {context}, {precision}, "
        f"{step_model} model"
        + (f" (engine {engine}, profile {rows[0]['profile']})" if step_model == "roofline"
           else ""),
        ["batch", "prefill (ms)", "prefill tok/s", "prefill bound", "decode step (ms)",
         "decode tok/s", "decode bound"],
        [[str(r["batch"]), f"{r['prefill_s'] * 1e3:.2f}", f"{r['prefill_tokens_per_s']:,.0f}",
          r["prefill_bound"], f"{r['decode_step_s'] * 1e3:.2f}",
          f"{r['decode_tokens_per_s']:,.0f}", r["decode_bound"]] for r in rows]))
    if "decode_terms_s" in rows[-1]:
        console.print(_terms_line(rows[-1]))


def _terms_line(r: dict) -> str:
    """The largest batch's decode step, term by term (compute and memory: the longer is
    paid; the rest add)."""
    parts = ", ".join(f"{k} {v * 1e3:.2f}" for k, v in r["decode_terms_s"].items() if v > 0)
    return f"decode step at batch {r['batch']}, ms: {parts}"
