"""Small stages on exact cases: the router's choice and the LRU cache's recency."""

from types import SimpleNamespace

from sim.serving.cache import LRU
from sim.serving.stages.router import LeastOutstanding, RoundRobin


def _replicas(*loads):
    return [SimpleNamespace(outstanding=n) for n in loads]


def test_least_outstanding_takes_the_fewest_and_breaks_ties_to_the_lowest_index():
    pick = LeastOutstanding().pick
    assert pick(_replicas(3, 1, 2)) == 1
    assert pick(_replicas(2, 1, 1)) == 1
    assert pick(_replicas(0, 0, 0)) == 0


def test_round_robin_cycles():
    rr, reps = RoundRobin(), _replicas(0, 0, 0)
    assert [rr.pick(reps) for _ in range(5)] == [0, 1, 2, 0, 1]


def test_lru_evicts_the_least_recently_used():
    cache = LRU(capacity=2, ttl=None)
    cache.insert(1, 0.0)
    cache.insert(2, 1.0)
    assert cache.lookup(1, 2.0)  # 1 is now the most recent
    cache.insert(3, 3.0)  # evicts 2, not 1
    assert cache.lookup(1, 4.0) and cache.lookup(3, 4.0) and not cache.lookup(2, 4.0)


def test_lru_entries_expire_after_their_ttl():
    cache = LRU(capacity=10, ttl=5.0)
    cache.insert(1, 0.0)
    assert cache.lookup(1, 5.0) and not cache.lookup(1, 5.1)
