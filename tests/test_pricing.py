"""Prices in one place: a kind picks each accelerator's latest price by a date, keys and
numbers pass through, an owned chip-hour adds its host's share, and bad input is refused."""

import pytest

from sim.errors import SearchsimError
from sim.model import catalog, pricing
from sim.model.economics import OwnedCost


def test_a_kind_is_the_latest_price_of_that_kind_by_the_date():
    assert pricing.quote("h100", "on-demand").date == "2026-03"  # RunPod, the latest
    assert pricing.quote("h100", "on-demand", "2026-02").date == "2024-10"  # Lambda
    assert pricing.quote("h100", "on-demand", "2024-09").usd_per_chip_hour == 98.32 / 8
    assert pricing.quote("h100", "on-demand", "2023-07").date == "2023-07"  # inclusive
    # two prices of one month: the first in the catalog
    assert pricing.quote("h200", "on-demand", "2026-03").source.startswith("Spheron")


def test_every_dated_kind_is_the_maximum_over_the_catalog():
    """Hand oracle over the whole catalog: the chosen price is dated no later than the date,
    and no price of that kind sits between it and the date."""
    for hw in catalog.accelerators().values():
        for kind in {p.kind for p in hw.prices}:
            for as_of in ("2023-12", "2025-06", "2026-12"):
                eligible = [p for p in hw.prices if p.kind == kind and p.date <= as_of]
                if not eligible:
                    with pytest.raises(SearchsimError, match=f"on or before {as_of}"):
                        pricing.quote(hw.key, kind, as_of)
                    continue
                latest = max(p.date for p in eligible)
                assert pricing.quote(hw.key, kind, as_of).date == latest


def test_keys_and_numbers_pass_through_and_bad_ones_are_refused():
    assert pricing.quote("h100", "lambda-on-demand").usd_per_chip_hour == 2.99
    assert pricing.quote("h100", 1.5) == pricing.Quote(1.5, "given $/chip-hour")
    with pytest.raises(SearchsimError, match="positive"):
        pricing.quote("h100", -1.0)
    with pytest.raises(SearchsimError, match="price_date: got '2026-13'"):
        pricing.quote("h100", "on-demand", "2026-13")
    with pytest.raises(SearchsimError, match="none"):
        pricing.quote("h20", "on-demand")  # no rental price in the catalog


def test_basis_of_a_key_is_its_kind():
    assert pricing.basis_of("h100", "lambda-on-demand") == "on-demand"
    assert pricing.basis_of("a100_40gb", "aws-p4d-1y") == "1-year"
    assert pricing.basis_of("h100", "owned") == "owned"
    assert pricing.basis_of("h100", 2.0) == 2.0


def test_an_owned_chip_hour_adds_its_share_of_the_host():
    cost = OwnedCost.of(30000.0, 0.0, 3.0, 1.25, 0.1)
    bare = pricing.owned_chip_hour(cost, "h100")
    assert bare == pytest.approx(30000 / (3 * 8766) + 0.7 * 1.25 * 0.1)  # 700 W prompt phase
    assert pricing.owned_chip_hour(cost, "h100", 125.0) - bare == pytest.approx(
        0.125 * 1.25 * 0.1)
    assert pricing.default_owned_chip_hour("h20") is None  # no purchase price
    assert pricing.default_owned_chip_hour("gaudi3") == pytest.approx(
        15625 / (catalog.ownership().years * 8766) + 0.9 * catalog.ownership().pue
        * catalog.ownership().usd_per_kwh)


def test_spread_flags_more_than_six_months():
    assert pricing.spread(["2025-01", "2025-07", ""]) is None
    assert pricing.spread(["2025-01", "2025-08"]) == (7, "2025-01", "2025-08")
    assert pricing.spread(["2024-12", "2025-01"]) is None  # across a year end: one month


def test_every_current_accelerator_has_a_dated_sourced_price_or_says_not():
    """The 2025-26 accelerators: each rental price is dated and sourced; which have none is
    pinned, so a gap is a decision, not an accident."""
    current = ["h100", "h200", "b200", "gb200", "h20", "l40s", "mi300x", "mi325x", "tpu_v5e",
               "tpu_v6e", "gaudi3"]
    unpriced = {k for k in current if not catalog.accelerator(k).prices}
    assert unpriced == {"h20", "gaudi3"}
    for k in set(current) - unpriced:
        prices = catalog.accelerator(k).prices
        assert all(p.source and p.provider for p in prices)
        assert max(pricing.month_index(p.date) for p in prices) >= pricing.month_index("2025-01")
    three = {k for k in current
             if {"on-demand", "spot"} <= {p.kind for p in catalog.accelerator(k).prices}
             and {"1-year", "3-year"} & {p.kind for p in catalog.accelerator(k).prices}}
    assert three == {"h100", "l40s"}
