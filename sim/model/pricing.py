"""Prices in one place: what a chip-hour costs, rented or owned, and on what basis.

A price is given as a catalog key of an accelerator (`lambda-on-demand`), a kind
(`on-demand`, `1-year`, `3-year`, `in-house`, `spot`) or a plain $ per chip-hour. A kind picks,
for each accelerator, its latest catalog price of that kind dated on or before `as_of`
(YYYY-MM; default: the latest of all), so a comparison of accelerators is on one kind of
price and, with `as_of`, one date. An owned chip-hour is its capital amortized plus its energy
at full (prompt-phase) power and its share of its host's: the figure a ranking or a price
before a run uses (a run measures the energy instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sim.errors import Problem, SearchsimError
from sim.model import catalog
from sim.model.economics import OwnedCost

PRICE_KINDS = ("on-demand", "1-year", "3-year", "in-house", "spot")
STALE_MONTHS = 6  # compared prices further apart than this are flagged
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Quote:
    """A chip-hour price and where it comes from, for the reader."""

    usd_per_chip_hour: float
    source: str  # "provider, kind, date", or what the figure is
    date: str = ""  # YYYY-MM of a catalog price ("" for a given or owned price)
    kind: str = ""


def month_index(date: str, field: str = "price_date") -> int:
    """Months since year 0 of a YYYY-MM date (refused otherwise)."""
    m = _MONTH.match(date)
    if m is None:
        raise SearchsimError(Problem(field, date, "a month as YYYY-MM, e.g. 2026-03"))
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def of_kind(hardware: str, kind: str, as_of: str | None = None) -> catalog.Price:
    """`hardware`'s latest catalog price of `kind` dated on or before `as_of` (ties: the
    first in the catalog)."""
    hw = catalog.accelerator(hardware)
    limit = month_index(as_of) if as_of is not None else None
    best = None
    for p in hw.prices:
        if p.kind != kind or (limit is not None and month_index(p.date) > limit):
            continue
        if best is None or month_index(p.date) > month_index(best.date):
            best = p
    if best is None:
        kinds = sorted({p.kind for p in hw.prices if limit is None or
                        month_index(p.date) <= limit})
        when = f" dated on or before {as_of}" if as_of is not None else ""
        raise SearchsimError(Problem("economics.price", kind, f"a price kind {hw.key} has"
                                     f"{when}: " + (", ".join(kinds) or "none")))
    return best


def catalog_price(hardware: str, price: str, as_of: str | None = None) -> catalog.Price:
    """A catalog price of `hardware`: its key, or a kind (see `of_kind`)."""
    if price in PRICE_KINDS:
        return of_kind(hardware, price, as_of)
    return catalog.accelerator(hardware).price(price)


def quote(hardware: str, price: str | float, as_of: str | None = None) -> Quote:
    """A rented chip-hour of `hardware`: a catalog key or kind, or a $/chip-hour given."""
    if isinstance(price, int | float):
        if not 0 < price < float("inf"):
            raise SearchsimError(Problem("economics.price", price, "a positive $/chip-hour"))
        return Quote(float(price), "given $/chip-hour")
    p = catalog_price(hardware, price, as_of)
    return Quote(p.usd_per_chip_hour, f"{p.provider}, {p.kind}, {p.date}", p.date, p.kind)


def chip_hour(hardware: str, price: str | float, as_of: str | None = None) -> float:
    return quote(hardware, price, as_of).usd_per_chip_hour


def basis_of(hardware: str, price: str | float) -> str | float:
    """The basis a price of `hardware` stands for, to price other accelerators alike: a
    catalog key becomes its kind; a kind, "owned" or a $/chip-hour stays as it is."""
    if isinstance(price, str) and price not in PRICE_KINDS and price != "owned":
        return catalog.accelerator(hardware).price(price).kind
    return price


def owned_chip_hour(cost: OwnedCost, hardware: str, host_w_per_chip: float = 0.0) -> float:
    """An owned chip-hour at full (prompt-phase) power plus its share of its host's draw."""
    hw = catalog.accelerator(hardware)
    return cost.usd_per_chip_hour_at(hw.power.prefill_w + host_w_per_chip)


def default_owned_chip_hour(hardware: str) -> float | None:
    """The chip alone owned on the catalog's defaults (purchase price, years, PUE, $/kWh), at
    full power with no server or host: None where the catalog has no purchase price."""
    hw, own = catalog.accelerator(hardware), catalog.ownership()
    if hw.purchase_usd is None:
        return None
    cost = OwnedCost.of(hw.purchase_usd, 0.0, own.years, own.pue, own.usd_per_kwh)
    return owned_chip_hour(cost, hw.key)


def spread(dates: list[str]) -> tuple[int, str, str] | None:
    """(months between, earliest, latest) of the dated prices compared, when they are more
    than STALE_MONTHS apart: a ranking across years of price cuts says more about the dates
    than the hardware."""
    dated = sorted({d for d in dates if d}, key=month_index)
    if len(dated) < 2:
        return None
    months = month_index(dated[-1]) - month_index(dated[0])
    return (months, dated[0], dated[-1]) if months > STALE_MONTHS else None
