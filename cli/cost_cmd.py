"""`searchsim cost`: the article's framework as a calculator for any model and hardware."""

from __future__ import annotations

import typer

from cli.common import clean_errors, console, fmt, print_json, table
from sim.errors import Problem, SearchsimError
from sim.model.defaults import ARTICLE_MFU


def _price(hardware: str, price: str | None) -> tuple[float, str]:
    """The chip-hour: a catalog key or kind of the hardware (default: its first catalog
    price), or a number given in $."""
    from sim.model import catalog, pricing
    hw = catalog.accelerator(hardware)
    if price is None:
        if not hw.prices:
            raise SearchsimError(Problem("price", None, f"a $/hour; {hardware} has no price"))
        price = hw.prices[0].key
    try:
        value: str | float = float(price)
    except ValueError:
        value = price
    return pricing.chip_hour(hardware, value), price if isinstance(value, str) else "given"


def cost_figures(model: str, hardware: str, price: str | None, mfu: float,
                 training_tokens: float | None) -> dict:
    from sim.model import catalog
    from sim.model import economics as ec
    if not 0.0 < mfu <= 1.0:
        raise SearchsimError(Problem("mfu", mfu, "a fraction in (0, 1]"))
    m, hw = catalog.model(model), catalog.accelerator(hardware)
    usd_h, price_key = _price(hardware, price)
    tokens = training_tokens if training_tokens is not None else m.training_tokens
    if tokens is not None and tokens <= 0:
        raise SearchsimError(Problem("training_tokens", tokens, "a positive token count"))
    memory = ec.training_memory_bytes(m.params)  # every parameter is held and trained
    active = m.compute_params  # a token computes with these (a mixture of experts: active)
    out = {
        "model": model, "hardware": hardware, "price": price_key, "usd_per_chip_hour": usd_h,
        "mfu": mfu,
        "processor_seconds_per_1k_tokens": 1000 * ec.processor_seconds(
            ec.flops_per_token(active), hw.peak_flops, mfu),
        "cost_per_1k_tokens": 1000 * ec.cost_per_token(active, hw.peak_flops, mfu, usd_h),
        "training_tokens": tokens,
        "training_cost_usd": None if tokens is None else ec.training_cost(
            active, tokens, hw.peak_flops, mfu, usd_h),
        "training_memory_bytes": memory,
        "min_processors_for_training_memory": ec.min_processors(memory, hw.hbm_bytes),
        **_owned(hw, mfu, m.params),
    }
    return out


def _owned(hw, mfu: float, params: float) -> dict:
    """The in-house view: the chip's purchase price over the default amortization plus its
    full (prompt-phase) power at the default PUE and electricity price (sim/data/ownership.toml);
    None where the catalog has no purchase price."""
    from sim.model import economics as ec
    from sim.model import pricing
    usd_h = pricing.default_owned_chip_hour(hw.key)
    if usd_h is None:
        return {"owned_usd_per_chip_hour": None, "owned_cost_per_1k_tokens": None}
    return {"owned_usd_per_chip_hour": usd_h,
            "owned_cost_per_1k_tokens": 1000 * ec.cost_per_token(params, hw.peak_flops, mfu,
                                                                 usd_h)}


@clean_errors
def cost_command(
    model: str = typer.Option("gpt3_175b", help="Catalog model key."),
    hardware: str = typer.Option("a100_40gb", help="Catalog accelerator key."),
    price: str = typer.Option(None, help="Catalog price key of the hardware, or $ per chip-hour."),
    mfu: float = typer.Option(ARTICLE_MFU, help="Model FLOPs utilization in (0, 1]."),
    training_tokens: float = typer.Option(None, help="Training tokens (default: the catalog's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """$ per 1K tokens (2N FLOPs/token) and training cost (6ND) at a given MFU and price,
    rented and (owned_*) in-house: the chip's price amortized plus its energy at full power
    (defaults in sim/data/ownership.toml)."""
    f = cost_figures(model, hardware, price, mfu, training_tokens)
    if as_json:
        print_json(f)
        return
    units = {"cost_per_1k_tokens": "$", "training_cost_usd": "$", "usd_per_chip_hour": "$",
             "owned_usd_per_chip_hour": "$", "owned_cost_per_1k_tokens": "$",
             "training_memory_bytes": "bytes", "mfu": "fraction"}
    console.print(table(f"{model} on {hardware}", ["quantity", "value"],
                        [[k, fmt(v, units.get(k, ""))] for k, v in f.items()]))
