"""Heavy-traffic theory checks (rho = 0.9): long runs, many replications. Run with -m slow."""

import pytest

from sim.model import queueing
from tests.helpers import confidence_interval, measured, replicate
from tests.test_theory import _mmc

pytestmark = pytest.mark.slow


def test_retrieval_mmc_at_rho_0_9():
    lam, mean_s, c = 9.0, 0.4, 4
    waits = replicate(_mmc(lam, mean_s, c, duration=20000.0), list(range(21, 31)),
                      lambda r: measured(r).retrieval_wait_s.mean())
    theory = queueing.mmc_mean_wait(lam, 1 / mean_s, c)
    mean, lo, hi = confidence_interval(waits)
    assert lo <= theory <= hi, (theory, mean, lo, hi)
