"""Distributions know their analytic mean and variance; samples agree with them."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.model.distributions import Buffered, Empirical, Exponential, Fixed, Gamma, Lognormal, scv


@settings(max_examples=25, deadline=None, derandomize=True)  # the same draws in CI
@given(mean=st.floats(0.5, 1000.0), cv=st.floats(0.1, 2.0), seed=st.integers(0, 2**32 - 1))
def test_samples_match_analytic_moments(mean, cv, seed):
    rng = np.random.default_rng(seed)
    for d in (Gamma(mean, cv), Lognormal(mean, cv), Exponential(mean)):
        x = d.sample(rng, 400_000)
        assert x.mean() == pytest.approx(d.mean, rel=0.03)
        assert x.var() == pytest.approx(d.variance, rel=0.35 if cv > 1.5 else 0.1)


def test_fixed_and_empirical():
    assert Fixed(3.0).variance == 0 and scv(Fixed(3.0)) == 0
    e = Empirical((1.0, 2.0, 7.0), (0.5, 0.25, 0.25))
    assert e.mean == pytest.approx(2.75)
    assert e.variance == pytest.approx(0.5 * 1.75**2 + 0.25 * 0.75**2 + 0.25 * 4.25**2)
    x = e.sample(np.random.default_rng(1), 200_000)
    assert x.mean() == pytest.approx(2.75, rel=0.01)
    assert scv(Exponential(4.0)) == 1.0


def test_buffered_draws_are_the_bulk_draws_in_order():
    a = Buffered(Exponential(1.0), np.random.default_rng(5), size=7).take(20)
    rng = np.random.default_rng(5)
    b = np.concatenate([rng.exponential(1.0, 7) for _ in range(3)])[:20]
    assert a == b.tolist()
