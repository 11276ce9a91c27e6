"""The semantic cache (issue 22): a threshold of 1 is no semantic cache byte for byte; the
threshold trades hits for false hits; clusters partition the keys."""

import numpy as np
import pytest

from sim.errors import SearchsimError
from sim.io.rundir import summary_json
from sim.model.distributions import Fixed, Lognormal
from sim.runner.api import run
from sim.scenario import loading
from sim.serving.cache import LRU
from sim.serving.semantic import Clusters, SemanticCache
from tests.conftest import SCENARIOS

SHORT = ["run.duration_s=240", "run.warmup_s=20"]


def test_a_threshold_of_one_is_no_semantic_cache_byte_for_byte():
    plain = run(loading.load(SCENARIOS / "modern_two_stage.toml", SHORT))
    off = run(loading.load(SCENARIOS / "modern_two_stage.toml",
                           [*SHORT, "cache.semantic={threshold=1.0, lookup_s=0.5}"]))
    assert summary_json(off.summary) == summary_json(plain.summary)
    assert off.queries.to_pandas().equals(plain.queries.to_pandas())  # NaN equal to NaN
    assert off.requests.to_pandas().equals(plain.requests.to_pandas())


def test_fixed_distances_serve_paraphrases_only_or_everything():
    """Paraphrases at distance 0.01, other intents at 0.5: at a 0.9 threshold only
    paraphrases are served (no false hit); at 0.4 every cached near-duplicate is, and the
    false share is the drawn share of other intents."""
    def semantic(threshold):
        table = (f"{{threshold={threshold}, paraphrase_distance={{dist='fixed', value=0.01}}, "
                 "other_distance={dist='fixed', value=0.5}, paraphrase_share=0.6, "
                 "cluster_size={dist='fixed', value=8}, lookup_s=0.002}")
        return [*SHORT, "run.duration_s=600", f"cache.semantic={table}"]
    strict = run(loading.load(SCENARIOS / "modern_two_stage.toml", semantic(0.9))).summary
    loose = run(loading.load(SCENARIOS / "modern_two_stage.toml", semantic(0.4))).summary
    assert strict["answers_from_other_queries"] > 20
    assert strict["semantic_false_hit_share"] == 0.0
    assert loose["answers_from_other_queries"] > strict["answers_from_other_queries"]
    n, share = loose["answers_from_other_queries"], loose["semantic_false_hit_share"]
    sd = (0.4 * 0.6 / n) ** 0.5
    assert abs(share - 0.4) < 4 * sd  # 1 - paraphrase_share, within 4 standard errors


def test_near_serves_the_most_popular_cached_member_within_the_threshold():
    class Cfg:
        threshold, paraphrase_share = 0.9, 1.0
        paraphrase_distance = type("D", (), {"build": lambda self: Fixed(0.05)})()
        other_distance = paraphrase_distance

    cache = LRU(10)
    clusters = Clusters(100, Fixed(5), np.random.default_rng(0))
    assert list(clusters.members(7)) == [5, 6, 7, 8, 9] and list(clusters.members(-4)) == [-4]
    sem = SemanticCache(cache, clusters, Cfg(), np.random.default_rng(1))
    assert sem.near(7, 0.0) == (False, False)  # nothing cached in its cluster
    cache.insert(9, 0.0)
    cache.insert(6, 0.0)
    cache.insert(1, 0.0)
    assert sem.near(7, 1.0) == (True, False) and list(cache._entries)[-1] == 6  # 6 used
    assert sem.near(3, 1.0) == (True, False)  # cluster 0-4: key 1
    assert sem.near(12, 1.0) == (False, False) and sem.lookups == 4
    Cfg.threshold = 0.96  # distance 0.05 above the 0.04 it admits
    assert SemanticCache(cache, clusters, Cfg(), np.random.default_rng(1)).near(7, 1.0) == (
        False, False)


def test_clusters_partition_the_keys_with_sizes_from_the_law():
    c = Clusters(10_000, Lognormal(6.0, 1.0), np.random.default_rng(2))
    seen, key, sizes = 0, 0, []
    while key < 10_000:
        m = c.members(key)
        assert m.start == key and len(m) >= 1
        sizes.append(len(m))
        seen += len(m)
        key = m.stop
    assert seen == 10_000
    assert np.mean(sizes[:-1]) == pytest.approx(6.0, rel=0.1)


def test_a_semantic_cache_needs_the_lru_result_cache():
    with pytest.raises(SearchsimError, match="cache.semantic.*policy = 'lru'"):
        loading.from_dict({"cache": {"policy": "bernoulli", "semantic": {}}})
