"""Levels: the flat-memory `MarkedLevel` keeps the same integrals as the full log at its
marks, and shards' levels sum."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.serving.monitor import Level, MarkedLevel, Marks, total

# gaps on a coarse grid as well as arbitrary ones: changes land exactly on marks
changes = st.lists(st.tuples(st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]),
                                       st.floats(0.0, 5.0)), st.integers(-3, 3)),
                   min_size=0, max_size=60)


def _both(steps, marks):
    full, marked, now = Level(), MarkedLevel(marks), 0.0
    for gap, delta in steps:
        now += gap
        full.add(now, delta)
        marked.add(now, delta)
    return full, marked, now


@settings(max_examples=200, deadline=None)
@given(steps=changes, grid=st.sampled_from([0.5, 1.0, 7.0]),
       extra=st.lists(st.floats(0.0, 100.0), max_size=4), tail=st.floats(0.0, 10.0))
def test_marked_level_equals_the_full_log_at_its_marks(steps, grid, extra, tail):
    marks = Marks(grid, tuple(extra))
    full, marked, now = _both(steps, marks)
    end = now + tail
    marked.close(end)
    edges = np.append(np.arange(0.0, end, grid), end)
    # exactly the same arithmetic: integrals agree to the last bit
    assert marked.cumulative(edges).tolist() == full.cumulative(edges).tolist()
    for t in extra:
        if t <= end:
            assert marked.integral(0.0, t) == full.integral(0.0, t)
        else:  # a mark past the end: extrapolated from the end, equal to rounding
            assert marked.integral(0.0, t) == pytest.approx(full.integral(0.0, t))
    later = end + 3.0  # past the end the level holds its last value
    assert marked.integral(end, later) == pytest.approx(full.integral(end, later))


def test_a_time_that_is_not_a_mark_is_refused():
    marked = MarkedLevel(Marks(10.0))
    marked.add(3.0, 1)
    marked.add(25.0, 1)
    marked.close(30.0)
    assert marked.integral(10.0, 20.0) == 10.0
    with pytest.raises(KeyError, match="marks"):
        marked.integral(0.0, 12.5)


def test_marked_levels_of_shards_sum_including_past_a_shorter_shard_s_end():
    a, b = MarkedLevel(Marks(1.0)), MarkedLevel(Marks(1.0))
    a.add(0.5, 2)
    a.close(2.0)  # holds 2 after its end
    b.add(1.5, 1)
    b.close(4.0)
    c = MarkedLevel(Marks(1.0))  # an end between marks, which the others did not keep
    c.close(2.5)
    assert total([a, b, c]).integral(0.0, 4.0) == pytest.approx(2 * 3.5 + 2.5)
    both = total([a, b])
    assert both.integral(0.0, 4.0) == pytest.approx(2 * 3.5 + 2.5)
    assert both.bin_means(np.array([0.0, 1.0, 2.0, 3.0, 4.0])).tolist() == \
        pytest.approx([1.0, 2.5, 3.0, 3.0])
