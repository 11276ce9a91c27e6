"""The article's cost framework as small, general, pure functions.

No number of a particular scenario lives here: every input is an argument. Units: money in US
dollars, time in seconds (hours where a price is per hour), FLOPs and bytes as plain floats.
This module imports nothing of the simulator but its units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce

from sim.units import SECONDS_PER_HOUR, TOKENS_PER_WORD

HOURS_PER_YEAR = 8766.0  # 365.25 days


# --- API-price estimate (docs/modelling.md section 1) -------------------------------------------

def words_to_tokens(words: float, tokens_per_word: float = TOKENS_PER_WORD) -> float:
    return words * tokens_per_word


def billed_tokens(query: float, response: float, fanout: int = 1, branch_prompt: float = 0.0
                  ) -> float:
    """Tokens billed for one query: the query once, then `fanout` branches of prompt + response.

    ChatGPT-equivalent: fanout = samples, branch_prompt = 0. Two-stage summarizer: fanout = K,
    branch_prompt = the passage each summary reads.
    """
    return query + fanout * (branch_prompt + response)


def api_bill(tokens: float, usd_per_1k_tokens: float) -> float:
    return tokens / 1000.0 * usd_per_1k_tokens


def cost_after_cache_and_margin(bill: float, cache_hit_rate: float, gross_margin: float) -> float:
    """The provider's cost of a query: misses reach the model; the price includes margin."""
    return bill * (1.0 - cache_hit_rate) * (1.0 - gross_margin)


def annual_searches(monthly_searches: float, penetration_then: float, penetration_now: float
                    ) -> float:
    """Scale a year of searches by internet penetration (the article's 34% -> 60%)."""
    return monthly_searches * 12.0 * penetration_now / penetration_then


def revenue_per_query(annual_revenue: float, annual_queries: float) -> float:
    return annual_revenue / annual_queries


def apply_reductions(cost: float, factors: list[float] | tuple[float, ...]) -> float:
    """A chain of multiplicative reductions, e.g. (1/4 for smaller models, 1/2 for in-house)."""
    return reduce(lambda acc, f: acc * f, factors, cost)


# --- Compute cost (docs/modelling.md sections 2 and 3) -----------------------------------------

def flops_per_token(params: float, factor: float = 2.0) -> float:
    """~2N FLOPs per token for inference, ~6N for training (dense decoder-only)."""
    return factor * params


def processor_seconds(flops: float, peak_flops: float, mfu: float) -> float:
    if not 0.0 < mfu <= 1.0:
        raise ValueError(f"mfu must be in (0, 1], got {mfu}")
    return flops / (peak_flops * mfu)


def usd_per_second(usd_per_hour: float) -> float:
    return usd_per_hour / SECONDS_PER_HOUR


def cost_per_token(params: float, peak_flops: float, mfu: float, usd_per_hour: float,
                   factor: float = 2.0) -> float:
    """$ per token on one processor priced at `usd_per_hour`, at a fixed utilization."""
    seconds = processor_seconds(flops_per_token(params, factor), peak_flops, mfu)
    return seconds * usd_per_second(usd_per_hour)


def training_flops(params: float, tokens: float) -> float:
    return flops_per_token(params, 6.0) * tokens


def training_cost(params: float, tokens: float, peak_flops: float, mfu: float,
                  usd_per_hour: float) -> float:
    """6*N*D FLOPs / (peak * MFU) processor-seconds, priced per processor-hour."""
    seconds = processor_seconds(training_flops(params, tokens), peak_flops, mfu)
    return seconds * usd_per_second(usd_per_hour)


def implied_mfu(flops: float, processors: int, peak_flops: float, seconds: float) -> float:
    """The utilization a run of known size and length achieved."""
    return flops / (processors * peak_flops * seconds)


def training_memory_bytes(params: float, bytes_per_param: float = 20.0) -> float:
    """Weights, gradients and Adam states in mixed precision: ~20 bytes per parameter."""
    return params * bytes_per_param


def min_processors(memory_bytes: float, capacity_bytes: float) -> int:
    return math.ceil(memory_bytes / capacity_bytes)


def in_house_usd_per_hour(purchase_usd: float, amortization_years: float, board_power_w: float,
                          pue: float, usd_per_kwh: float) -> float:
    """Owning instead of renting: straight-line amortization plus facility-adjusted energy."""
    capital = purchase_usd / (amortization_years * HOURS_PER_YEAR)
    energy = board_power_w / 1000.0 * pue * usd_per_kwh
    return capital + energy


@dataclass(frozen=True)
class OwnedCost:
    """What an owned accelerator costs: its capital (plus its server share) amortized per
    chip-hour, and each kWh it draws, at the facility's PUE and the electricity price."""

    capex_usd_per_chip_hour: float
    usd_per_it_kwh: float  # pue x $/kWh: a kWh drawn by the chip costs this much delivered

    @classmethod
    def of(cls, capex_usd: float, server_share_usd: float, years: float, pue: float,
           usd_per_kwh: float) -> OwnedCost:
        return cls((capex_usd + server_share_usd) / (years * HOURS_PER_YEAR), pue * usd_per_kwh)

    def usd_per_chip_hour_at(self, watts: float) -> float:
        """A chip-hour drawing `watts` throughout."""
        return self.capex_usd_per_chip_hour + watts / 1000.0 * self.usd_per_it_kwh


def per_year_from_per_generation(gain_per_generation: float, years_per_generation: float = 2.0
                                 ) -> float:
    """+50% per ~2-year generation is ~22% per year."""
    return (1.0 + gain_per_generation) ** (1.0 / years_per_generation) - 1.0


# --- Chinchilla (docs/modelling.md section 4) --------------------------------------------------

@dataclass(frozen=True)
class ChinchillaFit:
    """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, approach 3)."""

    E: float = 1.69
    A: float = 406.4
    B: float = 410.7
    alpha: float = 0.34
    beta: float = 0.28

    def params_term(self, params: float) -> float:
        return self.A / params**self.alpha

    def data_term(self, tokens: float) -> float:
        return self.B / tokens**self.beta

    def loss(self, params: float, tokens: float) -> float:
        return self.E + self.params_term(params) + self.data_term(tokens)


def chinchilla_loss(params: float, tokens: float, fit: ChinchillaFit = ChinchillaFit()) -> float:
    return fit.loss(params, tokens)
