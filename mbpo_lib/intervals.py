"""Bootstrap intervals for small samples of steps-to-threshold, censored runs included.

A controlled experiment has a handful of seeds per arm (5 in the series' issue 17), and some
runs never reach the return threshold within their budget. Such a run is *censored*: we only
know its step lies beyond the budget. Here it is ``math.inf``, which sorts after every step that
was reached, so order statistics stay well defined where a mean would not:

- :func:`lower_median`: the ``ceil(n/2)``-th smallest value (for odd ``n`` the median). It is
  finite exactly when at least half the runs got there, the same rule as
  :func:`mbpo_lib.sweep.median_steps_to`.
- :func:`median_interval`: a percentile bootstrap of the lower median (resample the runs with
  replacement, take each resample's lower median, read the ``(1 - confidence) / 2`` and
  ``(1 + confidence) / 2`` order statistics of those). No interpolation between resamples, so an
  infinite bound stays infinite: "beyond the budget", printed by the report as ``>budget``.
- :func:`difference_interval`: the same for ``lower_median(a) - lower_median(b)``, for finite
  scores such as the evaluation return at the end of a budget (no censoring there), e.g. an
  arm's returns minus the baseline's.
- :func:`ratio_interval`: the same for ``lower_median(a) / lower_median(b)``, each sample
  resampled independently (the arms' runs are unpaired), e.g. an arm's steps over the baseline's.

With 5 runs a bootstrap interval is coarse (a resample's lower median is one of the 5 values)
and somewhat narrow (the percentile bootstrap under-covers at tiny n); read it as "how much the
seeds disagree", not as an exact 95 % guarantee. Every draw comes from ``numpy.random``'s
``default_rng(seed)``: the same inputs give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Interval(NamedTuple):
    """A point estimate and its bootstrap interval; ``math.inf`` for "beyond the budget"."""

    estimate: float
    low: float
    high: float


def _sample(values: Sequence[float], what: str, positive: bool = False, finite: bool = False) -> np.ndarray:
    """``values`` as a float array, refusing what has no order statistic: an empty sample, NaN,
    -inf, non-numbers, (``positive``) values <= 0, which a ratio cannot divide by, and
    (``finite``) inf, which a difference of scores cannot subtract."""
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{what} must be a sequence of numbers, got {values!r}")
    try:
        array = np.asarray(list(values), dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a sequence of numbers (math.inf for a censored run), got "
                         f"{values!r}") from None
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{what} needs at least one value, got {values!r}")
    if np.isnan(array).any() or (array == -np.inf).any():
        raise ValueError(f"{what} has NaN or -inf in {values!r}; use numbers, and math.inf for a run "
                         "that never reached the threshold")
    if positive and (array <= 0).any():
        raise ValueError(f"{what} must be > 0 to take a ratio (steps to a threshold), got {values!r}")
    if finite and np.isinf(array).any():
        raise ValueError(f"{what} must be finite scores (a return, not steps with math.inf for a "
                         f"censored run), got {values!r}")
    return array


def _check_options(confidence: float, resamples: int, seed: int) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1) such as 0.95, got {confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be an int >= 1 (e.g. 10_000), got {resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")


def _lower_index(n: int) -> int:
    """The 0-based index of the lower median in a sorted sample of ``n``: ``ceil(n/2) - 1``."""
    return (n - 1) // 2


def lower_median(values: Sequence[float]) -> float:
    """The ``ceil(n/2)``-th smallest of ``values`` (``math.inf``: censored). For odd ``n`` it is
    the median; for even ``n`` the lower of the two middle values. It is always one of the
    values (no average of a step and inf), and infinite exactly when fewer than ``ceil(n/2)``
    values are finite (fewer than half the runs reached the threshold)."""
    array = np.sort(_sample(values, "lower_median's values"))
    return float(array[_lower_index(array.size)])


def _bootstrap_medians(array: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The lower median of each of ``resamples`` resamples (with replacement) of ``array``."""
    n = array.size
    picks = array[rng.integers(0, n, size=(resamples, n))]
    k = _lower_index(n)
    return np.partition(picks, k, axis=1)[:, k]


def _percentiles(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    """The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` order statistics of ``stats``,
    the outer neighbour where they fall between two (no interpolation: inf stays inf)."""
    ordered = np.sort(stats)
    last = ordered.size - 1
    tail = (1.0 - confidence) / 2.0
    low = ordered[math.floor(tail * last + 1e-9)]
    high = ordered[math.ceil((1.0 - tail) * last - 1e-9)]
    return float(low), float(high)


def median_interval(values: Sequence[float], confidence: float = 0.95, resamples: int = 10_000,
                    seed: int = 0) -> Interval:
    """The lower median of ``values`` and its percentile-bootstrap interval.

    ``values``: steps to the threshold, ``math.inf`` for a run that never reached it. A bound is
    infinite when more than the tail share of resamples have a censored lower median: with even
    1 of 5 runs censored, ``high`` is inf at 95 % (about 6 % of resamples draw that run 3 or more
    times), i.e. "could be beyond the budget". Equal values give a
    zero-width interval. Raises ``ValueError`` for an empty sample, NaN or -inf, a confidence
    outside (0, 1), ``resamples`` < 1 or a negative ``seed``.
    """
    array = _sample(values, "median_interval's values")
    _check_options(confidence, resamples, seed)
    stats = _bootstrap_medians(array, resamples, np.random.default_rng(seed))
    low, high = _percentiles(stats, confidence)
    return Interval(lower_median(array), low, high)


def _ratio(top: np.ndarray | float, bottom: np.ndarray | float) -> np.ndarray:
    """``top / bottom`` with inf / finite = inf and finite / inf = 0; inf / inf is NaN here (the
    callers decide what a ratio of two censored medians means)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(top, dtype=float) / np.asarray(bottom, dtype=float)


def ratio_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95, resamples: int = 10_000,
                   seed: int = 0) -> Interval:
    """``lower_median(a) / lower_median(b)`` and its percentile-bootstrap interval, ``a`` and
    ``b`` resampled independently (unpaired runs: an arm's seeds and the baseline's).

    Values must be > 0 (``math.inf``: censored). Censored medians: ``inf / x = inf`` (``a``
    never got there, ``b`` did: slower beyond any bound) and ``x / inf = 0``. When both are
    censored the ratio is unknown, anything from 0 to inf: the estimate is then NaN, and a
    resample in which both are censored counts as 0 for the low bound and as inf for the high
    bound, so such resamples widen the interval instead of being dropped or guessed. A sample
    with itself gives an estimate of 1 and an interval around 1. Raises ``ValueError`` as
    :func:`median_interval`, and for values <= 0.
    """
    first = _sample(a, "ratio_interval's a", positive=True)
    second = _sample(b, "ratio_interval's b", positive=True)
    _check_options(confidence, resamples, seed)
    rng = np.random.default_rng(seed)
    ratios = _ratio(_bootstrap_medians(first, resamples, rng), _bootstrap_medians(second, resamples, rng))
    unknown = np.isnan(ratios)
    low, _ = _percentiles(np.where(unknown, 0.0, ratios), confidence)
    _, high = _percentiles(np.where(unknown, np.inf, ratios), confidence)
    return Interval(float(_ratio(lower_median(first), lower_median(second))), low, high)


def difference_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95,
                        resamples: int = 10_000, seed: int = 0) -> Interval:
    """``lower_median(a) - lower_median(b)`` and its percentile-bootstrap interval, ``a`` and
    ``b`` resampled independently (unpaired runs: an arm's seeds and the baseline's).

    For finite scores, where larger or smaller has no budget to run past: returns at the end of
    a run, any sign. With 3 runs an arm every resample's median is one of the 3 values, so the
    interval reaches from about ``min(a) - max(b)`` to ``max(a) - min(b)``: it says how far the
    seeds disagree, and an interval that holds 0 means no difference was measured. Raises
    ``ValueError`` as :func:`median_interval`, and for infinite values.
    """
    first = _sample(a, "difference_interval's a", finite=True)
    second = _sample(b, "difference_interval's b", finite=True)
    _check_options(confidence, resamples, seed)
    rng = np.random.default_rng(seed)
    differences = _bootstrap_medians(first, resamples, rng) - _bootstrap_medians(second, resamples, rng)
    low, high = _percentiles(differences, confidence)
    return Interval(lower_median(first) - lower_median(second), low, high)
