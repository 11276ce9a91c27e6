"""The article's analysis reproduced analytically (no simulation), section by section.

Every figure is computed from the article's stated inputs (`sim/data/article.toml`) through the
general functions of `sim.economics` and the catalog; the article's printed values are shown
beside ours, never used to compute anything.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources

from sim.model import catalog, pricing
from sim.model import economics as ec


@dataclass(frozen=True)
class Row:
    key: str
    quantity: str
    ours: float
    article: float | str | None
    unit: str
    inputs: str
    note: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    rows: list[Row]
    figures: dict = field(default_factory=dict)


def article_inputs() -> dict:
    text = resources.files("sim").joinpath("data", "article.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _api_section(a: dict) -> Section:
    api, ce, ts, rv, red, printed = (a["api"], a["chatgpt_equivalent"], a["two_stage"],
                                     a["revenue"], a["reductions"], a["printed"])

    def tokens(words: float) -> float:
        return ec.words_to_tokens(words, api["tokens_per_word"])

    def cost(billed: float) -> float:
        bill = ec.api_bill(billed, api["usd_per_1k_tokens"])
        return ec.cost_after_cache_and_margin(bill, api["cache_hit_rate"], api["gross_margin"])

    q = tokens(api["query_words"])
    ce_cost = cost(ec.billed_tokens(q, tokens(ce["response_words"]), ce["samples"]))
    ts_cost = cost(ec.billed_tokens(q, tokens(ts["response_words"]), ts["results"],
                                    tokens(ts["passage_words"])))
    searches = ec.annual_searches(rv["monthly_searches_2012"], rv["penetration_2012"],
                                  rv["penetration_now"])
    revenue = ec.revenue_per_query(rv["annual_revenue_usd"], rv["annual_searches_rounded"])
    revenue_unrounded = ec.revenue_per_query(rv["annual_revenue_usd"], searches)
    optimized = ec.apply_reductions(ts_cost, [red["smaller_models"], red["in_house"]])
    share = optimized / revenue
    price = f"${api['usd_per_1k_tokens']}/1K tokens, hit {api['cache_hit_rate']:.0%}, " \
            f"margin {api['gross_margin']:.0%}"
    rows = [
        Row("chatgpt_equivalent_cost_per_query", "ChatGPT-equivalent cost/query", ce_cost,
            printed["chatgpt_equivalent_cost_per_query"], "$",
            f"{api['query_words']} + {ce['samples']} x {ce['response_words']} words; {price}",
            "article rounds $0.0096 to ~$0.010"),
        Row("two_stage_cost_per_query", "2-stage summarizer cost/query", ts_cost,
            printed["two_stage_cost_per_query"], "$",
            f"{api['query_words']} + {ts['results']} x ({ts['passage_words']} + "
            f"{ts['response_words']}) words; {price}"),
        Row("annual_searches", "searches per year", searches, printed["annual_searches"],
            "queries",
            f"{rv['monthly_searches_2012']:.0e}/month x 12 x {rv['penetration_now']}"
            f"/{rv['penetration_2012']}", "we divide revenue by the article's rounded 2.1T"),
        Row("revenue_per_query", "revenue/query", revenue, printed["revenue_per_query"], "$",
            f"${rv['annual_revenue_usd']:.0e} / {rv['annual_searches_rounded']:.2g}",
            f"unrounded {searches:.4g} searches give ${revenue_unrounded:.4f}"),
        Row("two_stage_cost_to_revenue", "2-stage cost / revenue", ts_cost / revenue,
            printed["two_stage_cost_to_revenue"], "x", "two rows above",
            "article rounds 1.37x to ~1.4x"),
        Row("optimized_cost_per_query", "2-stage after reductions", optimized,
            printed["optimized_cost_per_query"], "$",
            f"x {red['smaller_models']} (smaller models) x {red['in_house']} (in-house)"),
        Row("optimized_revenue_share", "share of revenue after reductions", share,
            printed["optimized_revenue_share"], "fraction", "two rows above",
            f"article says ~15%; exact {share:.1%} "
            f"({optimized / revenue_unrounded:.1%} on unrounded revenue)"),
    ]
    figures = {r.key: r.ours for r in rows}
    figures["revenue_per_query_unrounded"] = revenue_unrounded
    return Section("1. First-order estimate from an API price", rows, figures)


def _cost_per_1k(a: dict, which: str) -> tuple[float, str]:
    inf = a["inference"]
    hw = catalog.accelerator(inf[which]["hardware"])
    price = hw.price(inf[which]["price"])
    params = catalog.model(inf["model"]).params
    per_token = ec.cost_per_token(params, hw.peak_flops, inf["mfu"], price.usd_per_chip_hour,
                                  inf["flops_factor"])
    inputs = (f"{inf['flops_factor']:.0f}N, N={params:.3g}, {hw.peak_tflops:g} TFLOP/s, "
              f"MFU {inf['mfu']:.1%}, ${price.usd_per_chip_hour:.4g}/chip-h ({price.key})")
    return per_token * 1000.0, inputs


def _inference_section(a: dict) -> Section:
    printed, inf = a["printed"], a["inference"]
    a100, a100_inputs = _cost_per_1k(a, "a100")
    tpu, tpu_inputs = _cost_per_1k(a, "tpu_v4")
    hw = catalog.accelerator(inf["a100"]["hardware"])
    seconds = ec.processor_seconds(
        1000 * ec.flops_per_token(catalog.model(inf["model"]).params, inf["flops_factor"]),
        hw.peak_flops, inf["mfu"])
    share = a100 / a["api"]["usd_per_1k_tokens"]
    rows = [
        Row("a100_seconds_per_1k_tokens", "A100-seconds per 1K tokens (GPT-3)", seconds, None,
            "s", a100_inputs),
        Row("a100_cost_per_1k_tokens", "cost per 1K tokens on A100", a100,
            printed["a100_cost_per_1k_tokens"], "$", a100_inputs),
        Row("a100_share_of_api_price", "share of the $0.02 API price", share,
            printed["a100_share_of_price"], "fraction", "row above / API price",
            f"implied gross margin {1 - share:.0%} (article: ~80%)"),
        Row("tpu_v4_cost_per_1k_tokens", "cost per 1K tokens on TPU v4", tpu,
            printed["tpu_v4_cost_per_1k_tokens"], "$",
            tpu_inputs),
        *_in_house_rows(a, a100),
    ]
    return Section("2. Cloud cost of inference", rows, {r.key: r.ours for r in rows})


def _in_house_rows(a: dict, rented_per_1k: float) -> list[Row]:
    """The A100 owned rather than rented: its purchase price amortized plus the energy of a
    chip at full (prompt-phase) power, at the default PUE and electricity price; beside the
    article's in-house factor (half the cloud price)."""
    inf, own = a["inference"], catalog.ownership()
    hw = catalog.accelerator(inf["a100"]["hardware"])
    usd_h = pricing.default_owned_chip_hour(hw.key)
    if usd_h is None or hw.purchase_usd is None:
        return []
    rented_h = hw.price(inf["a100"]["price"]).usd_per_chip_hour
    inputs = (f"${hw.purchase_usd:,.0f} over {own.years:g} years + {hw.power.prefill_w:g} W "
              f"x PUE {own.pue:g} x ${own.usd_per_kwh:g}/kWh")
    return [
        Row("a100_in_house_usd_per_chip_hour", "A100 owned: $ per chip-hour", usd_h, None,
            "$", inputs, "the accelerator alone: no server, network, building or staff"),
        Row("a100_in_house_cost_per_1k_tokens", "cost per 1K tokens on an owned A100",
            rented_per_1k * usd_h / rented_h, None, "$", f"as above at ${usd_h:.3g}/chip-h"),
        Row("in_house_to_cloud", "owned / rented chip-hour", usd_h / rented_h,
            a["reductions"]["in_house"], "x", f"vs ${rented_h:.3g}/chip-h ({inf['a100']['price']})",
            "the article's in-house factor is 0.5; the gap is what a chip's price leaves out"),
    ]


def _tokens(m: catalog.Model) -> float:
    """A model's training tokens; every model the article prices has them in the catalog."""
    if m.training_tokens is None:
        raise ValueError(f"catalog model {m.key} has no training_tokens")
    return m.training_tokens


def _training_section(a: dict) -> Section:
    tr, printed = a["training"], a["printed"]
    hw = catalog.accelerator(tr["hardware"])
    usd_h = hw.price(tr["price"]).usd_per_chip_hour
    costs: dict[str, float] = {}
    for name, key in tr["models"].items():
        m = catalog.model(key)
        costs[name] = ec.training_cost(m.params, _tokens(m), hw.peak_flops, tr["mfu"],
                                       usd_h)
    inputs = f"6ND on {hw.key} at {tr['mfu']:.1%} MFU, ${usd_h}/chip-h"
    gpt3 = catalog.model(tr["models"]["gpt3"])
    memory = ec.training_memory_bytes(gpt3.params, tr["bytes_per_param"])
    mem_hw = catalog.accelerator(tr["memory_hardware"])
    run = tr["gpt3_2020_run"]
    run_hw = catalog.accelerator(run["hardware"])
    mfu_2020 = ec.implied_mfu(ec.training_flops(gpt3.params, _tokens(gpt3)),
                              run["processors"], run_hw.peak_flops, run["days"] * 86400)
    rows = [Row(f"training_cost_usd.{k}", f"training cost, {k}", v,
                printed.get(f"{k}_training_cost_usd"), "$", inputs) for k, v in costs.items()]
    rows += [
        Row("gpt3_training_memory_bytes", "GPT-3 training memory", memory,
            printed["gpt3_training_memory"], "bytes",
            f"{tr['bytes_per_param']:.0f} bytes x {gpt3.params:.3g} params"),
        Row("bert_large_training_memory_bytes", "BERT-Large training memory",
            ec.training_memory_bytes(tr["bert_large_params"], tr["bytes_per_param"]),
            printed["bert_large_training_memory"], "bytes",
            f"{tr['bytes_per_param']:.0f} bytes x {tr['bert_large_params']:.3g}"),
        Row("min_h100_for_gpt3_training", "H100s to hold GPT-3 training state",
            ec.min_processors(memory, mem_hw.hbm_bytes), None, "processors",
            f"ceil(memory / {mem_hw.hbm_gb:g} GB)"),
        Row("gpt3_2020_implied_mfu", "MFU implied by GPT-3's 2020 run", mfu_2020,
            printed["gpt3_training_mfu"],
            "fraction", f"{run['processors']} {run['hardware']} x {run['days']} days",
            "consistent with the 21.3% the article quotes"),
        Row("flops_per_dollar_per_year", "GPU FLOP/s per $ gain per year",
            ec.per_year_from_per_generation(tr["gen_gain_flops_per_dollar"],
                                            tr["years_per_generation"]),
            printed["flops_per_dollar_per_year"], "fraction",
            f"+{tr['gen_gain_flops_per_dollar']:.0%}/generation"),
        Row("flops_per_watt_per_year", "GPU FLOP/s per W gain per year",
            ec.per_year_from_per_generation(tr["gen_gain_flops_per_watt"],
                                            tr["years_per_generation"]),
            printed["flops_per_watt_per_year"], "fraction",
            f"+{tr['gen_gain_flops_per_watt']:.0%}/generation"),
    ]
    figures: dict[str, object] = {r.key: r.ours for r in rows[len(costs):]}
    figures["training_cost_usd"] = costs
    return Section("3. Training cost", rows, figures)


def _chinchilla_section(a: dict) -> Section:
    fit, ch, printed = ec.ChinchillaFit(), a["chinchilla"], a["printed"]
    losses = {}
    for name, key in a["training"]["models"].items():
        m = catalog.model(key)
        losses[name] = fit.loss(m.params, _tokens(m))
    big_n, big_d = ch["one_trillion_params"], ch["one_trillion_tokens"]
    losses["one_trillion_on_300b"] = fit.loss(big_n, big_d)
    rows = [Row(f"chinchilla_loss.{k}", f"loss, {k}", v, None, "nats/token",
                "E + A/N^a + B/D^b") for k, v in losses.items()]
    rows += [
        Row("params_term_1t", "A/N^alpha for 1T params", fit.params_term(big_n),
            printed["params_term_1t"], "nats/token", "N = 1e12"),
        Row("data_term_300b", "B/D^beta for 300B tokens", fit.data_term(big_d),
            printed["data_term_300b"], "nats/token", "D = 3e11",
            "so 1T on 300B tokens "
            + ("still loses" if losses["one_trillion_on_300b"] > losses["chinchilla"]
               else "beats") + " to Chinchilla"),
    ]
    figures = {"chinchilla_loss": losses, "params_term_1t": rows[-2].ours,
               "data_term_300b": rows[-1].ours}
    return Section("4. Data versus parameters (Chinchilla)", rows, figures)


def _other_section(a: dict) -> Section:
    jasper_words = a["other"]["jasper_usd_per_100k_words"] / 100_000
    per_1k = jasper_words * 1000 / a["api"]["tokens_per_word"]
    rows = [Row("jasper_usd_per_1k_tokens", "Jasper.ai price per 1K tokens", per_1k,
                a["printed"]["jasper_usd_per_1k_tokens"], "$", "$82 per 100K words",
                "the article divides by 0.75 where it should multiply")]
    return Section("5. Other figures", rows, {r.key: r.ours for r in rows})


def reproduce(inputs: dict | None = None) -> list[Section]:
    a = inputs if inputs is not None else article_inputs()
    return [_api_section(a), _inference_section(a), _training_section(a),
            _chinchilla_section(a), _other_section(a)]


def figures(sections: list[Section] | None = None) -> dict:
    """All figures as one JSON-ready object with stable snake_case keys."""
    out: dict = {}
    for s in sections if sections is not None else reproduce():
        out.update(s.figures)
    return out
