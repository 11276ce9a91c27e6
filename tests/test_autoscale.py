"""A day of diurnal load: hours grouped by rate, each sized as a steady state, the plan
never larger in a quieter hour, and the day's cost autoscaled against the peak all day."""

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.main import app
from sim.errors import SearchsimError
from sim.runner import autoscale, sizing
from sim.scenario import loading
from tests.test_sizing import BASE

PROFILE = [0.25] * 6 + [0.5] * 6 + [1.0] * 6 + [0.75] * 5 + [0.0]


def _diurnal(profile=PROFILE):
    raw = copy.deepcopy(BASE)
    raw["workload"].update(arrival="diurnal", profile=profile)
    return loading.from_dict(raw)


@given(profile=st.lists(st.sampled_from([0.0, 0.1, 0.4, 0.5, 0.9, 1.0, 1.7]), min_size=24,
                        max_size=24).filter(lambda p: max(p) > 0),
       count=st.one_of(st.none(), st.integers(1, 30)))
def test_bands_cover_every_busy_hour_once_at_their_highest_rate(profile, count):
    bands = autoscale.bands(tuple(profile), count)
    hours = sorted(h for b in bands for h in b.hours)
    assert hours == [h for h, m in enumerate(profile) if m > 0]
    assert all(b.multiplier == max(profile[h] for h in b.hours) for b in bands)
    assert [b.multiplier for b in bands] == sorted((b.multiplier for b in bands), reverse=True)
    # a band never splits equal rates, and distinct rates are each a band unless grouped
    for b in bands:
        others = [h for o in bands if o is not b for h in o.hours]
        assert not {profile[h] for h in b.hours} & {profile[h] for h in others}
    if count is None:
        assert len(bands) == len({m for m in profile if m > 0})
    else:
        assert len(bands) <= count


def test_the_plan_is_the_running_minimum_down_from_the_peak():
    assert autoscale.plan_of([5, 6, None, 3, 4]) == [5, 5, 5, 3, 3]
    assert autoscale.plan_of([2]) == [2]


@pytest.fixture(scope="module")
def day():
    s = _diurnal()
    peak_s = autoscale.peak_scenario(s)
    assert peak_s.workload.arrival == "poisson" and peak_s.workload.rate_qps == 6.0
    rows = sizing.size(peak_s, sizing.candidates(peak_s, ["h100"], [4], [1]), 1, 12, 0.95,
                       jobs=2, replications=2)
    c = sizing.Candidate(**rows[0]["candidate"])
    return s, c, rows[0], autoscale.size_day(s, c, rows[0], 1, 0.95, sizing.seeds_of(s, 2),
                                             jobs=2)


def test_each_band_runs_its_smallest_passing_fleet(day):
    s, c, peak, plan = day
    assert plan["bands"][0]["replicas"] == peak["replicas"]
    counts = [b["replicas"] for b in plan["bands"]]
    assert counts == sorted(counts, reverse=True) and counts[-1] < counts[0]
    for b in plan["bands"]:
        hour = autoscale.hour_scenario(s, b["multiplier"])
        r, seeds = b["replicas"], sizing.seeds_of(s, 2)
        assert b["met"] and sizing.probe(hour, c, r, seeds).meets(0.95)
        if b["replicas_found"] == r and r > 1:  # found by its own search: the smallest
            assert not sizing.probe(hour, c, r - 1, seeds).meets(0.95)


def test_the_days_cost_adds_up(day):
    s, c, _, plan = day
    hours = plan["hours"]
    assert [h["multiplier"] for h in hours] == PROFILE
    assert hours[23]["replicas"] == hours[23]["accelerators"] == 0  # idle: no fleet
    usd = c.usd_per_chip_hour  # one chip per replica (tp 1)
    auto, peak = plan["autoscaled"], plan["peak_provisioned"]
    assert auto["accelerator_hours"] == sum(h["accelerators"] for h in hours)
    assert peak["accelerator_hours"] == 24 * max(h["accelerators"] for h in hours)
    assert auto["usd_per_day"] == pytest.approx(auto["accelerator_hours"] * usd)
    queries = sum(6.0 * m * 3600 for m in PROFILE)
    assert auto["cost_per_query"] == pytest.approx(auto["usd_per_day"] / queries)
    assert auto["revenue_share"] == pytest.approx(auto["cost_per_query"] / 0.0476)
    assert plan["saving"] == pytest.approx(1 - auto["usd_per_day"] / peak["usd_per_day"])
    assert 0 < plan["saving"] < 1


def test_scaling_an_hour_ahead_runs_the_next_hours_fleet_before_it_is_needed():
    fleets = [(r, r, float(r)) for r in [1, 1, 3, 3, 2, 1] + [1] * 18]
    ahead = autoscale.hour_ahead(fleets)
    assert [a[0] for a in ahead[:6]] == [1, 3, 3, 3, 2, 1]  # up an hour early, down on time
    assert ahead[23][0] == 1  # the day wraps to hour 0


def test_the_hour_ahead_plan_lies_between_tracking_and_the_peak(day):
    _, c, _, plan = day
    tracked = [h["replicas"] for h in plan["hours"]]
    ahead_hours = sum(max(tracked[h], tracked[(h + 1) % 24]) for h in range(24))
    assert plan["autoscaled_hour_ahead"]["accelerator_hours"] == ahead_hours  # tp 1
    auto, ahead, peak = (plan[k]["usd_per_day"] for k in
                         ("autoscaled", "autoscaled_hour_ahead", "peak_provisioned"))
    assert ahead == pytest.approx(ahead_hours * c.usd_per_chip_hour)
    assert auto < ahead < peak  # the profile's ramps cost an hour each
    assert plan["saving_hour_ahead"] == pytest.approx(1 - ahead / peak)


def test_a_flat_day_saves_nothing():
    s = _diurnal([1.0] * 24)
    peak = {"result": {}, "replicas": 3, "replicas_per_shard": None, "probes": [],
            "candidate": {}}
    c = sizing.candidates(s, ["h100"], [4], [1])[0]
    plan = autoscale.size_day(s, c, peak, 1, 0.95, (1,))  # one band: nothing more to run
    assert len(plan["bands"]) == 1 and plan["saving"] == pytest.approx(0.0, abs=1e-12)
    assert plan["saving_hour_ahead"] == pytest.approx(0.0, abs=1e-12)
    assert {h["replicas"] for h in plan["hours"]} == {3}


def test_a_day_needs_a_diurnal_scenario(runner, tmp_path):
    s = loading.from_dict(BASE)
    with pytest.raises(SearchsimError, match="workload.arrival"):
        autoscale.peak_scenario(s)
    path = tmp_path / "s.toml"
    path.write_text(loading.dumps(s))
    res = runner.invoke(app, ["size", str(path), "--diurnal"])
    assert res.exit_code == 2 and res.stderr == (
        "error: workload.arrival: got 'poisson', expected \"diurnal\" with a 24-hour profile "
        "(the day to follow)\n")


@pytest.mark.parametrize("args", [["--bands", "2"], ["--diurnal", "--bands", "0"]])
def test_bands_need_diurnal_and_a_count(runner, tmp_path, args):
    path = tmp_path / "day.toml"
    path.write_text(loading.dumps(_diurnal()))
    res = runner.invoke(app, ["size", str(path), *args])
    assert res.exit_code == 2 and res.stderr == (
        f"error: --bands: got {args[-1]}, expected an integer >= 1, with --diurnal\n")


def test_size_diurnal_json(runner, tmp_path):
    path = tmp_path / "day.toml"
    path.write_text(loading.dumps(_diurnal([0.5] * 12 + [1.0] * 12)))
    res = runner.invoke(app, ["size", str(path), "--diurnal", "--replicas", "1:8",
                              "--replications", "1", "--target", "0.9", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["day"]["hours"]) == 24 and len(out["day"]["bands"]) == 2
    assert out["fleets"][0]["replicas"] == out["day"]["bands"][0]["replicas"]


def test_a_peak_no_fleet_meets_shows_the_ranking_then_says_why(runner, tmp_path):
    path = tmp_path / "day.toml"
    path.write_text(loading.dumps(_diurnal()))
    res = runner.invoke(app, ["size", str(path), "--diurnal", "--replicas", "1:1",
                              "--replications", "1"])
    assert res.exit_code == 2
    assert "every probe" in res.stdout  # the ranking came first
    assert res.stderr.startswith("error: replicas: got 1, expected a range in which the "
                                 "peak hour can be met: not met at 1 replicas")
