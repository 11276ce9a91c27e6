"""`searchsim catalog`: the accelerators, their prices and the models, as tables or JSON."""

from __future__ import annotations

import typer

from cli.common import clean_errors, console, print_json, table


def _as_json() -> dict:
    from sim.model import catalog
    return {
        "accelerators": {k: a.model_dump() for k, a in catalog.accelerators().items()},
        "models": {k: m.model_dump() for k, m in catalog.models().items()},
    }


@clean_errors
def catalog_command(
    as_json: bool = typer.Option(False, "--json", help="Print the catalog as JSON."),
) -> None:
    """List the accelerator and model catalogs (dated, sourced data)."""
    from sim.model import catalog
    if as_json:
        print_json(_as_json())
        return
    accs = catalog.accelerators().values()
    console.print(table("Accelerators", ["key", "name", "TFLOP/s", "TB/s", "GB", "W"], [
        [a.key, a.name, f"{a.peak_tflops:g}", f"{a.hbm_tb_s:g}", f"{a.hbm_gb:g}",
         f"{a.board_power_w:g}"] for a in accs]))
    console.print(table("Prices (per chip-hour)", ["hardware", "price key", "kind", "$/chip-h",
                                                   "date", "provider"], [
        [a.key, p.key, p.kind, f"{p.usd_per_chip_hour:.4g}", p.date, p.provider]
        for a in accs for p in a.prices]))
    console.print(table("Models", ["key", "name", "params", "active", "experts", "layers",
                                   "d_model", "heads", "kv heads", "head dim", "KV/token",
                                   "tokens"], [
        [m.key, m.name, f"{m.params_b:g}B",
         f"{m.active_params_b:g}B" if m.active_params_b else "-",
         f"{m.experts_per_token} of {m.experts}" if m.experts else "-", str(m.layers),
         str(m.d_model), str(m.heads), str(m.kv_heads), str(m.head_dim),
         f"{m.kv_bytes_per_token() / 1024:.0f} KiB",
         "-" if m.training_tokens_b is None else f"{m.training_tokens_b:g}B"]
        for m in catalog.models().values()]))
    console.print("Mixture-of-experts step times are not validated (docs/accuracy.md): a "
                  "scenario naming one is refused unless it sets llm.experimental_moe.",
                  highlight=False)
