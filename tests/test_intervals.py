"""Bootstrap intervals of steps-to-threshold: known answers, censored runs (math.inf), a coverage
check on a distribution whose median is known, ratios, differences of finite scores, determinism
and bad input."""

import math

import numpy as np
import pytest

from mbpo_lib.intervals import Interval, difference_interval, lower_median, median_interval, ratio_interval

INF = math.inf


def test_lower_median_is_the_ceil_half_th_smallest_and_handles_censored_runs():
    assert lower_median([300, 100, 200]) == 200
    assert lower_median([400, 100, 300, 200]) == 200                 # the lower of the two middles
    assert lower_median([7]) == 7
    assert lower_median([1000, INF, 1250, INF, 1500]) == 1500        # 3 of 5 got there
    assert lower_median([1000, INF, INF, 1250]) == 1250              # 2 of 4: still half
    assert lower_median([1000, INF, INF, INF, 1500]) == INF          # 2 of 5: beyond the budget
    assert lower_median((INF,)) == INF


def test_equal_values_give_a_zero_width_interval():
    assert median_interval([1500] * 5) == Interval(1500.0, 1500.0, 1500.0)
    assert median_interval([INF] * 3) == Interval(INF, INF, INF)
    assert median_interval([42]) == (42.0, 42.0, 42.0)


def test_the_interval_holds_the_estimate_and_lies_within_the_sample():
    values = [1000, 1250, 1500, 2000, 2500, 3000, 4500]
    estimate, low, high = median_interval(values)
    assert estimate == 2000 and low <= estimate <= high
    assert low in values and high in values                        # order statistics, no interpolation
    assert (low, high) != (estimate, estimate)
    narrow = median_interval(values, confidence=0.5)
    assert low <= narrow.low <= narrow.high <= high


def test_censored_runs_make_the_high_bound_infinite():
    # one of five censored: a resample draws it 3+ times with P = 0.058 > 2.5 %, so "maybe beyond"
    assert median_interval([1000, 1250, 1500, 2000, INF]) == (1500.0, 1000.0, INF)
    # three of five: the estimate itself is beyond the budget, the low bound still finite
    estimate, low, high = median_interval([1000, 1250, INF, INF, INF])
    assert estimate == INF and high == INF and low == 1000


def test_coverage_of_the_true_median_on_a_known_distribution():
    rng = np.random.default_rng(2024)
    true_median = 1000 * math.log(2)                                # exponential, scale 1000
    trials = 200
    hits = 0
    for trial in range(trials):
        _, low, high = median_interval(rng.exponential(1000, 21), resamples=2000, seed=trial)
        hits += low <= true_median <= high
    assert 0.88 <= hits / trials <= 0.99            # nominal 0.95; 200 trials: +-0.03 at 2 sigma


def test_the_same_seed_gives_the_same_interval_and_another_seed_may_not():
    values = np.random.default_rng(0).exponential(1000, 9)
    assert median_interval(values, seed=3) == median_interval(list(values), seed=3)
    other = values[::-1] + 100
    assert ratio_interval(values, other, seed=3) == ratio_interval(values, other, seed=3)
    assert len({median_interval(values, resamples=50, seed=s) for s in range(20)}) > 1


def test_ratio_of_known_samples():
    assert ratio_interval([3000] * 5, [1500] * 5) == Interval(2.0, 2.0, 2.0)
    a, b = [2000, 2500, 3000, 3500, 4000], [1000, 1250, 1500, 1750, 2000]
    estimate, low, high = ratio_interval(a, b)
    assert estimate == 2.0 and low <= 2.0 <= high
    assert low >= min(a) / max(b) and high <= max(a) / min(b)


def test_a_sample_against_itself_includes_one():
    values = [1000, 1250, 1500, 2000, 4000]
    estimate, low, high = ratio_interval(values, values)
    assert estimate == 1.0 and low < 1.0 < high
    censored = [1000, 1250, 1500, INF, INF]
    estimate, low, high = ratio_interval(censored, censored)
    assert estimate == 1.0 and low <= 1.0 <= high


def test_ratio_with_censored_medians():
    # a never reached, b did: infinitely slower; the other way round: 0
    assert ratio_interval([INF] * 3, [1000] * 3) == Interval(INF, INF, INF)
    assert ratio_interval([1000] * 3, [INF] * 3) == Interval(0.0, 0.0, 0.0)
    # both censored: unknown, anything from 0 to inf
    estimate, low, high = ratio_interval([INF] * 3, [INF] * 3)
    assert math.isnan(estimate) and (low, high) == (0.0, INF)


def test_difference_of_known_samples():
    assert difference_interval([300.0] * 3, [100.0] * 3) == Interval(200.0, 200.0, 200.0)
    a, b = [-50.0, 400.0, 1000.0], [100.0, 250.0, 300.0]
    estimate, low, high = difference_interval(a, b)
    assert estimate == 150.0 and low <= estimate <= high
    assert low >= min(a) - max(b) and high <= max(a) - min(b)      # order statistics of the samples
    assert low < 0 < high                                           # these seeds disagree too much
    shifted = difference_interval([v + 500 for v in a], b)          # shifting a shifts everything
    assert shifted == Interval(estimate + 500, low + 500, high + 500)


def test_a_sample_minus_itself_holds_zero_and_the_seed_fixes_the_interval():
    values = [115.0, 1006.0, 560.0, 300.0, 745.0]
    estimate, low, high = difference_interval(values, values)
    assert estimate == 0.0 and low < 0.0 < high
    again = difference_interval(np.array(values), tuple(values), seed=4)
    assert difference_interval(values, values, seed=4) == again


def test_difference_coverage_on_two_known_distributions():
    rng = np.random.default_rng(7)
    hits, trials = 0, 200                     # medians of N(300, 100) and N(100, 100) differ by 200
    for trial in range(trials):
        a, b = rng.normal(300, 100, 25), rng.normal(100, 100, 25)
        _, low, high = difference_interval(a, b, resamples=2000, seed=trial)
        hits += low <= 200 <= high
    assert 0.88 <= hits / trials <= 0.99            # nominal 0.95


@pytest.mark.parametrize("call, message", [
    (lambda: difference_interval([1.0, INF], [2.0]), "difference_interval's a must be finite scores"),
    (lambda: difference_interval([1.0], [math.nan]), "difference_interval's b has NaN"),
    (lambda: difference_interval([1.0], []), "difference_interval's b needs at least one value"),
    (lambda: difference_interval([1.0], [2.0], confidence=2), r"confidence must be a number in \(0, 1\)"),
    (lambda: lower_median([]), "needs at least one value"),
    (lambda: median_interval([]), "needs at least one value"),
    (lambda: median_interval([1.0, math.nan]), "NaN or -inf"),
    (lambda: median_interval([1.0, -INF]), "NaN or -inf"),
    (lambda: median_interval("123"), "sequence of numbers"),
    (lambda: median_interval([1, "a"]), "sequence of numbers"),
    (lambda: median_interval([1, 2], confidence=-0.5), r"confidence must be a number in \(0, 1\)"),
    (lambda: median_interval([1, 2], confidence=1.0), r"confidence must be a number in \(0, 1\)"),
    (lambda: median_interval([1, 2], confidence=95), r"got 95"),
    (lambda: median_interval([1, 2], resamples=0), "resamples must be an int >= 1"),
    (lambda: median_interval([1, 2], resamples=10.5), "resamples must be an int >= 1"),
    (lambda: median_interval([1, 2], seed=-1), "seed must be an int >= 0"),
    (lambda: ratio_interval([], [1]), "ratio_interval's a needs at least one value"),
    (lambda: ratio_interval([1], [0, 2]), "ratio_interval's b must be > 0"),
    (lambda: ratio_interval([-5], [2]), "must be > 0"),
])
def test_bad_input_is_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()
