"""Small stages on exact cases: the router's choice and the LRU cache's recency."""

from types import SimpleNamespace

from sim.serving.cache import LRU
from sim.serving.stages.router import LeastOutstanding, RoundRobin


def _replicas(*loads, speeds=None):
    return [SimpleNamespace(outstanding=n, speed=1.0 if speeds is None else speeds[i])
            for i, n in enumerate(loads)]


def test_least_outstanding_takes_the_fewest_and_breaks_ties_to_the_lowest_index():
    pick = LeastOutstanding().pick
    assert pick(_replicas(3, 1, 2)) == 1
    assert pick(_replicas(2, 1, 1)) == 1
    assert pick(_replicas(0, 0, 0)) == 0


def test_least_outstanding_weighs_each_replica_by_its_speed():
    """(outstanding + 1) / speed: a replica twice as fast takes the next request until it
    holds about twice the other's load."""
    pick = LeastOutstanding().pick
    assert pick(_replicas(2, 1, speeds=(2.0, 1.0))) == 0  # 3/2 < 2/1
    assert pick(_replicas(3, 1, speeds=(2.0, 1.0))) == 0  # 4/2 = 2/1: ties to the lowest
    assert pick(_replicas(4, 1, speeds=(2.0, 1.0))) == 1  # 5/2 > 2/1


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
