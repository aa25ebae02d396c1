"""Checkers for the notebooks' code exercises: they say what is right or wrong, never the answer.

Each code exercise in a notebook has two cells:

1. **the student cell**, marked ``# ✏️ YOUR ANSWER``: a function stub whose body is
   ``raise NotImplementedError`` (or a value set to ``None``) for the student to replace;
2. **the check cell**: one call such as ``mbpo_lib.exercises.check_gaussian_nll(my_nll)``, whose
   result, a :class:`Feedback`, shows as one line: ``✓`` and what was checked, ``✗`` and what is
   wrong with a hint (a shape, which input disagrees with the library, a likely slip), or ``…``
   while the stub is untouched.

A checker compares the answer with the library (``mbpo_lib.gaussian_nll``, the soft bounds of
``GaussianEnsemble``, ``geometric_compounding_error``, ``tanh_log_prob``'s correction) or with a
formula written here, on inputs it draws from a fixed seed. It never prints the expected values:
it reports the input where the answer goes wrong and the size of the error.

**How CI runs the reference solutions.** The student cells stay stubs in the committed
notebooks, so a student never sees a solution next to the exercise, and their check cells
print "not attempted yet" (a checker never raises on a stub or a wrong answer, so "Run all"
always reaches the end). Each notebook ends with a ``## Solutions`` section: the reference
solutions, whose code cells carry ``jupyter.source_hidden`` (collapsed in JupyterLab), and one
``assert mbpo_lib.exercises.check_…(reference).ok`` per exercise. nbmake runs every cell, so
CI passes every reference solution through its checker; ``tests/test_exercises.py`` shows that
each checker accepts the reference and rejects a typical wrong answer with a useful message.
This needs no environment variable and no cell that rewrites another, so it behaves the same
under nbmake, JupyterLab, Colab and the slides, where the solutions form the final slides of
the deck (after the exercises), not the main lesson.
"""

from __future__ import annotations

import math
import numbers
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .buffer import Batch, ReplayBuffer, sample_mixed
from .config import ROLLOUT_SCHEDULES
from .diagnostics import confidence_band, one_step_errors
from .models import gaussian_nll
from .rollout import branched_rollout, rollout_schedule
from .theory import geometric_compounding_error, optimal_k_discrete

CORRECT, WRONG, NOT_ATTEMPTED = "correct", "wrong", "not attempted"
_MARK = {CORRECT: "✓", WRONG: "✗", NOT_ATTEMPTED: "…"}


@dataclass(frozen=True)
class Feedback:
    """A checker's verdict: ``status`` (correct, wrong or not attempted) and a message for the student."""

    exercise: str
    status: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == CORRECT

    def __repr__(self) -> str:  # what a notebook cell shows
        return f"{_MARK[self.status]} {self.exercise}: {self.message}"

    __str__ = __repr__


class _Stub(Exception):
    """The student's cell still holds the stub."""


def _call(fn: Callable[..., Any] | None, *args: Any) -> Any:
    if fn is None:
        raise _Stub
    try:
        return fn(*args)
    except NotImplementedError as error:
        raise _Stub from error


def _checker(exercise: str):
    """Turn a check that raises ``_Wrong`` (or returns a success message) into a ``Feedback``."""

    def wrap(check):
        def run(*args: Any, **kwargs: Any) -> Feedback:
            try:
                message = check(*args, **kwargs)
            except _Stub:
                return Feedback(exercise, NOT_ATTEMPTED,
                                "not attempted yet: write your answer in the cell marked "
                                "'YOUR ANSWER' above, run it, then run this cell again.")
            except _Wrong as wrong:
                return Feedback(exercise, WRONG, str(wrong))
            except Exception as error:  # the student's code failed: say how, keep going
                return Feedback(exercise, WRONG, f"your code raised {type(error).__name__}: {error}")
            return Feedback(exercise, CORRECT, message)

        run.__name__, run.__doc__ = check.__name__, check.__doc__
        return run

    return wrap


class _Wrong(Exception):
    """What is wrong with the answer, with a hint."""


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise _Wrong(f"{what} should be a torch.Tensor, got {type(value).__name__}.")
    return value


def _same_shape(got: torch.Tensor, shape: Sequence[int], what: str, hint: str = "") -> None:
    if tuple(got.shape) != tuple(shape):
        raise _Wrong(f"{what} has shape {list(got.shape)}, expected {list(shape)}. {hint}".rstrip())


def _close(got: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    return bool(torch.allclose(got.to(expected.dtype), expected, rtol=rtol, atol=atol, equal_nan=False))


def _first_mismatch(got: torch.Tensor, expected: torch.Tensor, inputs: str, rtol: float = 1e-5,
                    atol: float = 1e-6) -> str:
    """Where the answer first differs and by how much (the expected value is not shown)."""
    bad = ~torch.isclose(got.to(expected.dtype), expected, rtol=rtol, atol=atol)
    index = tuple(int(i) for i in bad.nonzero()[0])
    error = (got.to(expected.dtype) - expected).abs()
    return (f"{int(bad.sum())} of {bad.numel()} values are off (the first at {inputs}{list(index)}, "
            f"largest error {float(error[bad].max()):.3g}).")


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- notebook 00: compounding error -----------------------------------------------------------

@_checker("geometric bound")
def check_geometric_bound(fn: Callable[[float, float, torch.Tensor], torch.Tensor] | None) -> str:
    """``fn(eps, L, k)`` must return ε (L^k − 1)/(L − 1) for a float64 tensor ``k`` (same shape)."""
    k = torch.arange(1, 21, dtype=torch.float64)
    for eps, lipschitz in ((0.05, 1.1), (0.02, 1.05), (0.1, 0.9)):
        got = _as_tensor(_call(fn, eps, lipschitz, k.clone()), "fn(eps, L, k)")
        _same_shape(got, k.shape, "fn(eps, L, k)", "Return one bound per k, computed elementwise.")
        expected = torch.as_tensor(geometric_compounding_error(eps, lipschitz, k.numpy()))
        if _close(got, expected):
            continue
        if _close(got, k * eps):
            raise _Wrong(f"at L = {lipschitz} this is the linear reading kε; the bound sums the "
                         "amplified old errors, ε(1 + L + … + L^(k−1)).")
        if _close(got, eps * (lipschitz ** (k + 1) - 1) / (lipschitz - 1)):
            raise _Wrong("off by one step: the sum runs over j = 0 … k − 1, so e_1 must equal ε.")
        if _close(got, eps * lipschitz ** k):
            raise _Wrong("this is ε L^k, the last term only; the bound adds the fresh error of every step.")
        raise _Wrong(f"eps = {eps}, L = {lipschitz}: " + _first_mismatch(got, expected, "k index "))
    return "matches mbpo_lib.geometric_compounding_error for L above and below 1."


@_checker("largest k")
def check_largest_k(answer: int | None, eps: float, lipschitz: float, budget: float) -> str:
    """``answer``: the largest k whose geometric bound stays at or below ``budget``."""
    if answer is None:
        raise _Stub
    if isinstance(answer, bool) or not isinstance(answer, int) or answer < 1:
        raise _Wrong(f"give a whole number of steps k ≥ 1, got {answer!r}.")

    def bound(k: int) -> float:
        return float(geometric_compounding_error(eps, lipschitz, k))

    slack = 1e-12  # k·ε that equals the budget exactly counts as "at or below"
    if bound(answer) > budget + slack:
        linear_k = math.floor(budget / eps + slack)
        hint = (" That is the linear reading's k; the geometric bound grows faster."
                if answer == linear_k else "")
        raise _Wrong(f"at k = {answer} the bound is {bound(answer):.4f}, above {budget}.{hint}")
    if bound(answer + 1) <= budget + slack:
        raise _Wrong(f"the bound at k = {answer + 1} is still at or below {budget}: you can go further.")
    return f"k = {answer} is the largest k with ε(L^k − 1)/(L − 1) ≤ {budget}."


# --- notebook 01: the probabilistic MLP -------------------------------------------------------

@_checker("Gaussian NLL")
def check_gaussian_nll(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None) -> str:
    """``fn(mean, logvar, y)``: the elementwise −log N(y; mean, exp(logvar)), as ``mbpo_lib.gaussian_nll``."""
    g = _generator(0)
    mean = torch.randn(64, 3, generator=g, dtype=torch.float64)
    logvar = torch.rand(64, 3, generator=g, dtype=torch.float64) * 6 - 4
    y = torch.randn(64, 3, generator=g, dtype=torch.float64)
    got = _as_tensor(_call(fn, mean, logvar, y), "fn(mean, logvar, y)")
    _same_shape(got, mean.shape, "fn(mean, logvar, y)",
                "Return one value per element; do not average or sum over the batch.")
    expected = gaussian_nll(mean, logvar, y)
    if _close(got, expected):
        return "matches mbpo_lib.gaussian_nll elementwise."
    if _close(got, 2 * expected):
        raise _Wrong("twice the NLL: the Gaussian log-density carries a factor 1/2.")
    if _close(got, expected - 0.5 * math.log(2 * math.pi)):
        raise _Wrong("the constant ½ log 2π is missing (it changes no gradient, but it is part of the NLL).")
    sigma = torch.exp(0.5 * logvar)
    if _close(got, 0.5 * ((y - mean) ** 2 / sigma + logvar + math.log(2 * math.pi))):
        raise _Wrong("the squared error must be divided by the variance σ² = exp(logvar), not by σ.")
    if _close(got, -expected):
        raise _Wrong("the sign is flipped: the NLL is minus the log-density.")
    raise _Wrong(_first_mismatch(got, expected, "element "))


@_checker("soft bounds")
def check_soft_bound(fn: Callable[[torch.Tensor, float, float], torch.Tensor] | None) -> str:
    """``fn(raw, max_logvar, min_logvar)``: the soft ceiling, then the soft floor (Chua et al. 2018)."""
    raw = torch.linspace(-40.0, 40.0, 161, dtype=torch.float64)
    hi, lo = 0.5, -10.0
    got = _as_tensor(_call(fn, raw.clone(), hi, lo), "fn(raw, max_logvar, min_logvar)")
    _same_shape(got, raw.shape, "fn(raw, max_logvar, min_logvar)", "Apply the bounds elementwise.")
    if not torch.isfinite(got).all():
        raise _Wrong("some outputs are not finite: use F.softplus, which stays finite for large inputs.")
    ceiling = hi - F.softplus(hi - raw)
    expected = lo + F.softplus(ceiling - lo)
    if _close(got, expected):
        return "ceiling then floor, as GaussianEnsemble.bound_logvar: smooth and inside the bounds."
    floor_first = hi - F.softplus(hi - (lo + F.softplus(raw - lo)))
    if _close(got, floor_first):
        raise _Wrong("right pieces, wrong order: apply the ceiling first, then the floor (so the "
                     "lower bound holds exactly).")
    if _close(got, raw.clamp(lo, hi)):
        raise _Wrong("a hard clamp: its gradient is 0 beyond the bounds; the soft bounds use softplus.")
    raise _Wrong(_first_mismatch(got, expected, "raw index "))


# --- notebook 02: the ensemble ----------------------------------------------------------------

@_checker("bootstrap")
def check_bootstrap(fn: Callable[[int, int, torch.Generator], torch.Tensor] | None) -> str:
    """``fn(n, E, generator)``: row indices ``[E, n]`` drawn with replacement, one resample per member."""
    n, members = 2000, 7
    got = _as_tensor(_call(fn, n, members, _generator(3)), "fn(n, E, generator)")
    _same_shape(got, (members, n), "fn(n, E, generator)", "One row of n indices per member.")
    if got.dtype not in (torch.int64, torch.int32):
        raise _Wrong(f"indices must be integers, got {got.dtype}: use torch.randint.")
    if got.min() < 0 or got.max() >= n:
        raise _Wrong(f"indices must lie in [0, n) = [0, {n}), got {int(got.min())} to {int(got.max())}.")
    again = _call(fn, n, members, _generator(3))
    if not torch.equal(got, again):
        raise _Wrong("two calls with equally seeded generators gave different indices: draw from "
                     "the generator you are given.")
    distinct = torch.tensor([row.unique().numel() / n for row in got])
    if (distinct > 0.99).all():
        raise _Wrong("every resample holds (almost) every row once: that is a permutation, the "
                     "bootstrap draws with replacement.")
    if not ((distinct > 0.58) & (distinct < 0.68)).all():
        raise _Wrong(f"resamples hold {distinct.min():.2f} to {distinct.max():.2f} of the distinct rows; "
                     "n draws with replacement from n rows hold about 63 %.")
    if any(torch.equal(got[0], got[i]) for i in range(1, members)):
        raise _Wrong("two members got the same resample: draw all E rows of indices independently.")
    return f"[E, n] indices with replacement, about 63 % distinct rows each ({distinct.mean():.3f})."


@_checker("variance decomposition")
def check_variance_decomposition(
        fn: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None) -> str:
    """``fn(means [E, G], variances [E, G])`` → ``(aleatoric [G], epistemic [G])``, both variances."""
    g = _generator(1)
    means = torch.randn(7, 50, generator=g, dtype=torch.float64)
    variances = torch.rand(7, 50, generator=g, dtype=torch.float64) + 0.1
    answer = _call(fn, means, variances)
    if not isinstance(answer, tuple) or len(answer) != 2:
        raise _Wrong("return a pair (aleatoric, epistemic).")
    aleatoric, epistemic = (_as_tensor(a, name) for a, name in zip(answer, ("aleatoric", "epistemic"),
                                                                    strict=True))
    for got, name in ((aleatoric, "aleatoric"), (epistemic, "epistemic")):
        _same_shape(got, (50,), name, "Reduce over the members (dimension 0), keep the inputs.")
    want_a, want_e = variances.mean(0), means.var(0, unbiased=False)
    if _close(aleatoric, want_e) and _close(epistemic, want_a):
        raise _Wrong("the two terms are swapped: aleatoric is the members' mean variance.")
    if not _close(aleatoric, want_a):
        if _close(aleatoric, variances.sqrt().mean(0)) or _close(aleatoric, variances.mean(0).sqrt()):
            raise _Wrong("aleatoric should be a variance (mean of σ_i²), not a standard deviation.")
        raise _Wrong("aleatoric: " + _first_mismatch(aleatoric, want_a, "input "))
    if not _close(epistemic, want_e):
        if _close(epistemic, means.var(0, unbiased=True)):
            raise _Wrong("epistemic uses the unbiased variance (divides by E − 1); the law of total "
                         "variance over a uniform mixture divides by E: unbiased=False.")
        if _close(epistemic, means.std(0, unbiased=False)):
            raise _Wrong("epistemic should be a variance of the μ_i, not their standard deviation.")
        raise _Wrong("epistemic: " + _first_mismatch(epistemic, want_e, "input "))
    return "aleatoric = mean of σ_i², epistemic = variance of μ_i over the members (divided by E)."


@_checker("±cσ coverage")
def check_coverage(
        fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor] | None) -> str:
    """``fn(y, mean, std, c)`` → the fraction of rows with |y − mean| ≤ c·std, per output ``[D]``."""
    g = _generator(2)
    y = torch.randn(4000, 3, generator=g, dtype=torch.float64)
    std = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64).expand(4000, 3)
    mean = torch.zeros(4000, 3, dtype=torch.float64)
    for c in (1.0, 2.0):
        got = _as_tensor(_call(fn, y, mean, std, c), "fn(y, mean, std, c)")
        _same_shape(got, (3,), "fn(y, mean, std, c)", "One fraction per output dimension: average over rows.")
        expected = ((y - mean).abs() <= c * std).double().mean(0)
        if _close(got, expected, atol=1e-9):
            continue
        if _close(got, ((y - mean).abs() <= c * std ** 2).double().mean(0), atol=1e-9):
            raise _Wrong("compare |y − μ| with c·σ, a standard deviation, not a variance.")
        if _close(got, ((y - mean) <= c * std).double().mean(0), atol=1e-9):
            raise _Wrong("take the absolute error: a miss below μ counts too.")
        raise _Wrong(f"c = {c}: " + _first_mismatch(got, expected, "output "))
    return "fractions inside ±cσ per dimension; a calibrated Gaussian gives 0.683 at c = 1, 0.954 at c = 2."


# --- notebook 04: SAC -------------------------------------------------------------------------

@_checker("squash correction")
def check_squash_correction(fn: Callable[[torch.Tensor], torch.Tensor] | None) -> str:
    """``fn(u)`` on float32 ``u``: log(1 − tanh² u), finite and accurate even where tanh saturates."""
    u = torch.tensor([-25.0, -12.0, -3.0, -0.5, 0.0, 0.7, 2.0, 5.0, 9.0, 12.0, 20.0, 40.0])
    got = _as_tensor(_call(fn, u.clone()), "fn(u)")
    _same_shape(got, u.shape, "fn(u)", "Apply it elementwise.")
    u64 = u.double()
    exact = 2 * math.log(2) - 2 * torch.logaddexp(u64, -u64)
    if torch.isinf(got).any():
        raise _Wrong("−inf where tanh rounds to ±1 (|u| ≳ 9 in float32): never form 1 − tanh²u.")
    if not torch.isfinite(got).all():
        raise _Wrong("some values are nan: check the formula at large |u|.")
    if _close(got.float(), torch.log(1 - torch.tanh(u) ** 2 + 1e-6), rtol=1e-3, atol=1e-3):
        raise _Wrong("the '+ 1e-6' patch: finite, but it flattens at log 1e-6 ≈ −13.8 where the true "
                     "value keeps falling. Rewrite 1 − tanh²u without tanh.")
    if not _close(got.double(), exact, rtol=1e-5, atol=1e-5):
        raise _Wrong(_first_mismatch(got.double(), exact, "u index ", rtol=1e-5, atol=1e-5))
    return "finite and accurate for every u, including |u| = 40."


@_checker("critic target")
def check_td_target(fn: Callable[..., torch.Tensor] | None) -> str:
    """``fn(rew, terminated, truncated, next_q1, next_q2, next_log_pi, alpha, gamma)`` → y ``[B]``."""
    g = _generator(4)
    batch = 32
    rew = torch.randn(batch, generator=g)
    terminated = (torch.arange(batch) % 5 == 0).float()
    truncated = (torch.arange(batch) % 7 == 3).float()
    next_q1, next_q2 = torch.randn(batch, generator=g) * 5, torch.randn(batch, generator=g) * 5
    next_log_pi = torch.randn(batch, generator=g)
    alpha, gamma = 0.2, 0.99
    got = _as_tensor(_call(fn, rew, terminated, truncated, next_q1, next_q2, next_log_pi, alpha, gamma),
                     "fn(...)")
    _same_shape(got, (batch,), "the target y", "One target per row; check for broadcasting.")

    def target(mask: torch.Tensor, q: torch.Tensor, sign: float = -1.0) -> torch.Tensor:
        return rew + gamma * (1 - mask) * (q + sign * alpha * next_log_pi)

    low, high = torch.minimum(next_q1, next_q2), torch.maximum(next_q1, next_q2)
    expected = target(terminated, low)
    if _close(got, expected):
        return "y = r + γ(1 − terminated)(min_i Q̄_i − α log π); truncated rows bootstrap."
    if _close(got, target(torch.maximum(terminated, truncated), low)):
        raise _Wrong("the truncated rows stop the bootstrap: only `terminated` ends the task.")
    if _close(got, target(terminated, high)):
        raise _Wrong("the maximum of the two target critics: take the minimum, against overestimation.")
    if _close(got, target(terminated, low, sign=1.0)):
        raise _Wrong("the entropy term has the wrong sign: the soft value is Q − α log π.")
    if _close(got, target(torch.zeros(batch), low)):
        raise _Wrong("no mask: a terminated row keeps only its reward.")
    raise _Wrong(_first_mismatch(got, expected, "row "))


# --- notebook 03: how long may a rollout be -----------------------------------------------------

def _whole_number(value: Any, what: str) -> int:
    """``value`` as an int when it is a whole number (int, NumPy integer or integral float)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, numbers.Real)):
        raise _Wrong(f"{what} should be a whole number of steps, got {type(value).__name__} {value!r}.")
    if not isinstance(value, numbers.Integral):
        if not math.isfinite(value) or value != math.floor(value):
            raise _Wrong(f"{what} should be a whole number of steps, got {value!r}: k counts model steps.")
    return int(value)


def _optimal_k_settings() -> list[tuple[float, float, float]]:
    """(γ, ε_π, ε_m′): fixed cases (a tie at ε_m′ = ε_π, ε_m′ > ε_π) and random ones, none near a tie."""
    settings = [(0.99, 0.1, 0.09), (0.99, 0.1, 0.045), (0.99, 0.1, 0.1), (0.99, 0.1, 0.3),
                (0.9, 0.5, 0.01), (0.999, 0.2, 0.15), (0.95, 0.3, 0.2)]
    rng = np.random.default_rng(5)
    while len(settings) < 47:
        gamma, eps_pi, eps_m = rng.uniform(0.9, 0.999), rng.uniform(0.01, 0.5), 10 ** rng.uniform(-3, 0)
        steps = math.log(eps_m / eps_pi) / math.log(gamma)
        if abs(steps - round(steps)) > 1e-3:           # no setting whose answer hangs on rounding
            settings.append((float(gamma), float(eps_pi), float(eps_m)))
    return settings


@_checker("Theorem 4.3's k*")
def check_optimal_k(fn: Callable[[float, float, float], int] | None) -> str:
    """``fn(gamma, eps_pi, eps_m_new)``: the first k ≥ 0 with γ^k ε_π ≤ ε_m′, as
    ``mbpo_lib.optimal_k_discrete`` (0 when ε_m′ ≥ ε_π)."""
    settings = _optimal_k_settings()
    for gamma, eps_pi, eps_m in settings:
        got = _whole_number(_call(fn, gamma, eps_pi, eps_m), "fn(gamma, eps_pi, eps_m_new)")
        expected = int(optimal_k_discrete(gamma, eps_pi, eps_m))
        if got == expected:
            continue
        where = f"at γ = {gamma:.4g}, ε_π = {eps_pi:.4g}, ε_m′ = {eps_m:.4g}"
        if got < 0:
            raise _Wrong(f"{where} your k* is negative. Where ε_m′ ≥ ε_π even the first step costs more "
                         "than it gains: k* = 0, never below.")
        steps = math.log(eps_m / eps_pi) / math.log(gamma)
        if expected > 0 and got == math.floor(steps):
            raise _Wrong(f"{where} your k* is one step short: there γ^k ε_π is still above ε_m′, so one "
                         "more step still lowers the gap. Round up, not down.")
        if expected > 0 and got == math.ceil(math.log(eps_pi / eps_m) / (1 - gamma)):
            raise _Wrong(f"{where} this is the γ → 1 approximation ln(ε_π/ε_m′)/(1 − γ); the exact "
                         "condition γ^k ε_π ≤ ε_m′ divides by ln(1/γ).")
        direction = "large" if got > expected else "small"
        raise _Wrong(f"{where} your k* = {got} is too {direction}: check γ^k ε_π ≤ ε_m′ at your k "
                     "and at k − 1.")
    return (f"matches mbpo_lib.optimal_k_discrete on {len(settings)} settings, including the tie "
            "ε_m′ = ε_π and ε_m′ > ε_π (k* = 0).")


def _schedule_slips(epoch: int, e0: int, e1: int, k0: int, k1: int) -> dict[str, float]:
    """The k that common slips give at ``epoch`` (each before any rounding except its own)."""
    p = (epoch - e0) / (e1 - e0)
    return {
        "round": round(k0 + min(1.0, max(0.0, p)) * (k1 - k0)),
        "no ceiling": int(k0 + max(0.0, p) * (k1 - k0)),
        "no floor": int(k0 + min(1.0, p) * (k1 - k0)),
        "guide": int(k0 + min(1.0, max(0.0, (epoch - e0) / (100 - e0))) * (k1 - k0)) if e0 < 100 else None,
        "integer division": int(k0 + min(1, max(0, (epoch - e0) // (e1 - e0))) * (k1 - k0)),
    }


_SCHEDULE_HINTS = {
    "round": "k is the floor of k0 + p (k1 − k0) (int() truncates, as the official code does), not the "
             "rounded value.",
    "no ceiling": "after epoch e1 the ramp is over: clip the progress p at 1, so k stays at k1.",
    "no floor": "before epoch e0 the ramp has not started: clip the progress p at 0, so k stays at k0.",
    "guide": "the ramp ends at the schedule's own e1, not at epoch 100 (the guide's version).",
    "integer division": "the progress p is a fraction between 0 and 1: with integer division k jumps "
                        "from k0 to k1 in one step.",
}


@_checker("rollout schedule")
def check_rollout_schedule(fn: Callable[[int, tuple[int, int, int, int]], int] | None) -> str:
    """``fn(epoch, (e0, e1, k0, k1))``: the rollout length k at ``epoch``, as
    ``mbpo_lib.rollout_schedule``."""
    schedules = sorted({tuple(s) for s in ROLLOUT_SCHEDULES.values()}
                       | {(20, 100, 1, 15), (10, 50, 2, 7), (0, 30, 1, 25), (5, 300, 1, 25)})
    for schedule in schedules:
        for epoch in range(0, 401):
            got = _whole_number(_call(fn, epoch, schedule), "fn(epoch, schedule)")
            expected = rollout_schedule(epoch, schedule)
            if got == expected:
                continue
            for slip, value in _schedule_slips(epoch, *schedule).items():
                if value is not None and value != expected and got == value:
                    raise _Wrong(f"at epoch {epoch} of schedule {list(schedule)}: {_SCHEDULE_HINTS[slip]}")
            direction = "large" if got > expected else "small"
            raise _Wrong(f"at epoch {epoch} of schedule {list(schedule)} your k = {got} is too "
                         f"{direction}. k = ⌊k0 + p (k1 − k0)⌋ with p the progress, clipped to [0, 1].")
    return f"matches mbpo_lib.rollout_schedule on {len(schedules)} schedules, epochs 0 to 400."


# --- notebook 05: the MBPO loop -----------------------------------------------------------------

def _marked_buffer(rows: int, real: bool, obs_dim: int = 3, act_dim: int = 1) -> ReplayBuffer:
    """Rows whose source shows: obs ``±(row number)`` (+ real, − model), reward 1 real, 0 model."""
    sign = 1.0 if real else -1.0
    index = torch.arange(1, rows + 1, dtype=torch.float32)[:, None]
    buffer = ReplayBuffer(rows, obs_dim, act_dim)
    buffer.add_batch(sign * index.expand(rows, obs_dim), torch.zeros(rows, act_dim),
                     torch.full((rows,), 1.0 if real else 0.0), sign * (index + 0.5).expand(rows, obs_dim),
                     torch.zeros(rows))
    return buffer


def _as_batch(answer: Any, what: str) -> Batch:
    if not isinstance(answer, tuple) or len(answer) != 5:
        raise _Wrong(f"{what} should return a Batch (obs, act, rew, next_obs, terminated), as "
                     f"ReplayBuffer.sample does; got {type(answer).__name__}.")
    return Batch(*(_as_tensor(x, f"{what}.{name}") for x, name in zip(answer, Batch._fields, strict=True)))


@_checker("mixed batch")
def check_mixed_batch(fn: Callable[..., Batch] | None) -> str:
    """``fn(real, model, real_ratio, batch_size, generator)``: SAC's batch, as ``mbpo_lib.sample_mixed``
    (``int(batch_size * real_ratio)`` real rows, all real while the model buffer is empty)."""
    real, model = _marked_buffer(1_000, real=True), _marked_buffer(5_000, real=False)
    for real_ratio, batch_size in ((0.05, 256), (0.5, 100), (0.3, 10), (0.25, 64), (0.9, 20)):
        what = f"fn(real, model, {real_ratio}, {batch_size}, generator)"
        batch = _as_batch(_call(fn, real, model, real_ratio, batch_size, _generator(8)), what)
        sizes = {name: len(x) for name, x in zip(Batch._fields, batch, strict=True)}
        if set(sizes.values()) != {batch_size}:
            raise _Wrong(f"{what} has {sizes} rows per field; every field should have batch_size = "
                         f"{batch_size} rows.")
        from_real = batch.obs[:, 0] > 0
        if not torch.equal(batch.rew == 1, from_real) or not torch.equal(batch.next_obs[:, 0] > 0, from_real):
            raise _Wrong("the fields of a row come from different transitions: sample whole rows from each "
                         "buffer, then concatenate every field in the same order.")
        expected = int((sample_mixed(real, model, real_ratio, batch_size, _generator(8)).rew == 1).sum())
        got = int(from_real.sum())
        if got != expected:
            if got == round(batch_size * real_ratio):
                raise _Wrong(f"{got} real rows at batch_size = {batch_size}, real_ratio = {real_ratio}: "
                             "the number of real rows is truncated with int(), as the official code "
                             "does, not rounded.")
            if got in (batch_size - expected, int(batch_size * (1 - real_ratio))):
                raise _Wrong(f"{got} real rows of {batch_size} at real_ratio = {real_ratio}: the shares "
                             "are swapped; real_ratio is the real share.")
            raise _Wrong(f"{got} real rows of {batch_size} at real_ratio = {real_ratio}: the real share "
                         "should be int(batch_size · real_ratio) rows.")
        real_rows = batch.obs[from_real, 0]
        if len(real_rows) > 1 and torch.equal(real_rows.sort().values, torch.arange(1.0, len(real_rows) + 1)):
            raise _Wrong("the real rows are the buffer's first rows: draw them at random with "
                         "ReplayBuffer.sample(n, generator).")
        again = _as_batch(_call(fn, real, model, real_ratio, batch_size, _generator(8)), what)
        if not torch.equal(again.obs, batch.obs):
            raise _Wrong("two calls with equally seeded generators gave different batches: pass the "
                         "generator you are given to every sample call.")
    empty = ReplayBuffer(100, 3, 1)
    try:
        batch = _as_batch(_call(fn, real, empty, 0.05, 256, _generator(9)), "fn(real, empty model, ...)")
    except (_Stub, _Wrong):
        raise
    except Exception as error:
        raise _Wrong(f"with an empty model buffer (before the first rollout) your code raised "
                     f"{type(error).__name__}: then every row should come from the real buffer.") from error
    if len(batch.obs) != 256 or not bool((batch.obs[:, 0] > 0).all()):
        raise _Wrong("with an empty model buffer (before the first rollout) every one of the batch_size "
                     "rows should come from the real buffer.")
    return ("int(batch_size · real_ratio) real rows (12 of 256 at 0.05), the rest from the model, "
            "whole rows, and all real while the model buffer is empty.")


class _ToyModel:
    """A small stochastic 'model' for the rollout exercise: ``step`` draws its noise from ``generator``."""

    obs_dim, act_dim, device = 4, 2, torch.device("cpu")

    def step(self, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator | None = None,
             deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, dict]:
        noise = 0.05 * torch.randn(obs.shape, generator=generator)
        next_obs = obs + 0.2 * torch.tanh(act.sum(dim=1, keepdim=True)) + noise
        return next_obs, -next_obs.pow(2).sum(dim=1), {}


def _toy_policy(obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.tanh(obs[:, :2] + 0.3 * torch.randn(obs.shape[0], 2, generator=generator))


def _toy_done(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    return next_obs[:, 0] > 0.6


class _Recorder:
    """A transition sink that keeps every ``add_batch`` call (one per rollout step)."""

    obs_dim = 4

    def __init__(self) -> None:
        self.writes: list[tuple[torch.Tensor, ...]] = []

    def add_batch(self, *fields: torch.Tensor) -> None:
        self.writes.append(tuple(f.clone() for f in fields))


@_checker("rollout step")
def check_rollout_step(fn: Callable[..., tuple[tuple[torch.Tensor, ...], torch.Tensor]] | None) -> str:
    """``fn(model, policy, obs, done_fn, generator)`` → ``((obs, act, rew, next_obs, done), survivors)``:
    one step of ``mbpo_lib.branched_rollout``: every row written, the live rows' next states go on."""
    obs = 0.6 + 0.3 * torch.randn(64, 4, generator=_generator(10))
    recorder = _Recorder()
    branched_rollout(_ToyModel(), _toy_policy, obs, 2, _toy_done, generator=_generator(11), buffer=recorder)
    (e_obs, e_act, e_rew, e_next, e_done), e_survivors = recorder.writes[0], recorder.writes[1][0]
    answer = _call(fn, _ToyModel(), _toy_policy, obs.clone(), _toy_done, _generator(11))
    if not isinstance(answer, tuple) or len(answer) != 2:
        raise _Wrong("return a pair: (the written transitions (obs, act, rew, next_obs, done), "
                     "the survivors).")
    written, survivors = answer
    if not isinstance(written, tuple) or len(written) != 5:
        raise _Wrong("the written transitions should be a tuple (obs, act, rew, next_obs, done).")
    w_obs, w_act, w_rew, w_next, w_done = (_as_tensor(x, name) for x, name in zip(
        written, ("obs", "act", "rew", "next_obs", "done"), strict=True))
    survivors = _as_tensor(survivors, "survivors")
    n, n_alive = len(obs), int((~e_done).sum())
    if len(w_obs) == n_alive:
        raise _Wrong(f"you wrote {n_alive} of {n} rows: a row that terminates at this step is written too, "
                     "with done = True (the critic learns from it that falling ends the reward).")
    for got, want, name in ((w_obs, e_obs, "obs"), (w_act, e_act, "act"), (w_rew, e_rew, "rew"),
                            (w_next, e_next, "next_obs"), (w_done, e_done, "done")):
        _same_shape(got, want.shape, f"written {name}", "Write one row per input row.")
    if not torch.equal(w_obs, e_obs):
        raise _Wrong("the written obs should be the input rows, unchanged and in their order.")
    if not _close(w_act, e_act):
        raise _Wrong("the actions differ: draw them first, act = policy(obs, generator), with the "
                     "generator you are given (the same draws, in the same order, as branched_rollout).")
    if not (_close(w_next, e_next) and _close(w_rew, e_rew)):
        raise _Wrong("the model's prediction differs: next_obs, rew, _ = model.step(obs, act, "
                     "generator=generator), after the policy.")
    if not torch.equal(w_done.bool(), e_done):
        raise _Wrong("done should be done_fn(obs, act, next_obs): the known rule on the predicted state.")
    alive = ~e_done
    if tuple(survivors.shape) == tuple(e_survivors.shape) and _close(survivors, obs[alive]):
        raise _Wrong("the survivors are the rows' old states: a branch goes on from its predicted next "
                     "state ŝ_{j+1}, not from ŝ_j.")
    if tuple(survivors.shape) == tuple(e_next.shape) and _close(survivors, e_next):
        raise _Wrong(f"all {n} rows go on: a terminated branch stops, so keep only the rows whose done "
                     "is False.")
    if tuple(survivors.shape) == tuple(e_next[e_done].shape) and _close(survivors, e_next[e_done]):
        raise _Wrong("the mask is inverted: the rows that go on are those whose done is False.")
    _same_shape(survivors, e_survivors.shape, "survivors", f"{n_alive} of {n} rows are still alive.")
    if not _close(survivors, e_survivors):
        raise _Wrong("survivors: " + _first_mismatch(survivors, e_survivors, "row "))
    return (f"as branched_rollout: all {n} rows written ({n - n_alive} with done = True), the next states "
            f"of the {n_alive} live rows go on.")


# --- notebook 06: results and diagnostics -------------------------------------------------------

@_checker("bootstrap band")
def check_bootstrap_band(
        fn: Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]] | None) -> str:
    """``fn(curves [S, T], draws [B, S], confidence)`` → ``(low [T], high [T])``: the percentile band
    of the mean over seeds, from the given resample indices, as ``mbpo_lib.confidence_band``."""
    rng = np.random.default_rng(6)
    seeds, steps, resamples = 5, 40, 2_000
    curves = (100 * np.sin(np.linspace(0, 3, steps))[None] + rng.normal(0, 20, (seeds, steps))
              + np.linspace(0, 60, seeds)[:, None])
    scale = float(np.abs(curves).max())
    for confidence, seed in ((0.95, 0), (0.8, 1)):
        draws = np.random.default_rng(seed).integers(0, seeds, size=(resamples, seeds))
        answer = _call(fn, curves.copy(), draws.copy(), confidence)
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise _Wrong("return a pair (low, high).")
        low, high = (np.asarray(torch.as_tensor(x).detach().cpu(), dtype=float) for x in answer)
        for got, name in ((low, "low"), (high, "high")):
            if got.shape != (steps,):
                raise _Wrong(f"{name} has shape {list(got.shape)}, expected [{steps}]: one value per step; "
                             "average each resample over its seeds (curves[draws] is [B, S, T]).")
        band = confidence_band(curves, confidence, resamples, seed)

        def close(a: np.ndarray, b: np.ndarray) -> bool:
            return bool(np.allclose(a, b, rtol=1e-6, atol=1e-9 * scale))

        if close(low, band.low) and close(high, band.high):
            continue
        if close(low, band.high) and close(high, band.low):
            raise _Wrong("low and high are swapped.")
        means = curves[draws].mean(axis=1)                                     # [B, T]
        if close(low, np.quantile(means, 1 - confidence, axis=0)):
            raise _Wrong(f"a {100 * confidence:g} % band leaves (1 − c)/2 in each tail: take the "
                         f"{50 * (1 - confidence):g} % and {50 * (1 + confidence):g} % quantiles.")
        spread = high - low
        if bool(np.all(spread > 1.8 * (band.high - band.low))):
            raise _Wrong("the band is far too wide: that is the spread of single seeds; the band is for "
                         "their mean, so take the quantiles of the resampled means.")
        z = statistics.NormalDist().inv_cdf((1 + confidence) / 2)
        normal = [center + z * means.std(axis=0, ddof=ddof) for center in (band.mean, means.mean(axis=0))
                  for ddof in (0, 1)]
        if any(close(high, value) for value in normal):
            raise _Wrong("a normal approximation (mean ± z · std): the percentile bootstrap takes the "
                         "quantiles of the resampled means themselves.")
        raise _Wrong(f"confidence {confidence}: low: "
                     + _first_mismatch(torch.as_tensor(low), torch.as_tensor(band.low), "step ",
                                       rtol=1e-6, atol=1e-9 * scale))
    return "the percentile bootstrap band of the mean over seeds, as mbpo_lib.confidence_band."


class _ToyEnsemble:
    """A linear 'ensemble' of 5 members, 3 of them elites, for the one-step error exercise."""

    obs_dim, act_dim, device = 4, 2, torch.device("cpu")

    def __init__(self) -> None:
        g = _generator(12)
        self.weights = 0.3 * torch.randn(5, self.obs_dim + self.act_dim, 1 + self.obs_dim, generator=g)
        self.weights[[1, 4]] *= 4.0                                 # the two non-elites are poor
        self.elites = [0, 2, 3]

    def predict(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.einsum("ni,eio->eno", torch.cat([obs, act], dim=-1), self.weights)
        return mean, torch.zeros_like(mean)


@_checker("one-step error per output")
def check_one_step_mse(fn: Callable[..., torch.Tensor] | None) -> str:
    """``fn(model, obs, act, rew, next_obs)`` → ``[1 + obs_dim]``: per output (reward first), the
    elites' squared error of the predicted mean, averaged over elites and rows, as
    ``mbpo_lib.one_step_errors(...).mse``."""
    model, g = _ToyEnsemble(), _generator(13)
    obs, act = torch.randn(200, 4, generator=g), torch.rand(200, 2, generator=g) * 2 - 1
    truth = torch.einsum("ni,io->no", torch.cat([obs, act], -1), model.weights[model.elites].mean(0))
    truth = truth + 0.1 * torch.randn(truth.shape, generator=g)
    rew, next_obs = truth[:, 0], obs + truth[:, 1:]
    got = _as_tensor(_call(fn, model, obs.clone(), act.clone(), rew.clone(), next_obs.clone()),
                     "fn(model, obs, act, rew, next_obs)")
    got = got.detach().cpu()
    _same_shape(got, (5,), "fn(model, obs, act, rew, next_obs)",
                "One value per output, [r, s' − s]: average over the elites and the rows only.")
    expected = one_step_errors(model, obs, act, rew, next_obs).mse
    if _close(got, expected, rtol=1e-4, atol=1e-7):
        return "matches mbpo_lib.one_step_errors: elites only, targets [r, s' − s], per output."
    mean = model.predict(obs, act)[0]
    target = torch.cat([rew[:, None], next_obs - obs], dim=-1)
    elites = mean[model.elites]
    slips = {
        "the targets are the next states; the model predicts the change s' − s (and the reward first)":
            ((elites - torch.cat([rew[:, None], next_obs], -1)) ** 2).mean(dim=(0, 1)),
        "every member counted: average over the elites only (model.elites), the members the rollouts use":
            ((mean - target) ** 2).mean(dim=(0, 1)),
        "this is the error of the elites' average prediction; the library averages each elite's own "
        "squared error": ((elites.mean(0) - target) ** 2).mean(0),
        "the reward should come first, then the state dimensions":
            ((elites - torch.cat([next_obs - obs, rew[:, None]], -1)) ** 2).mean(dim=(0, 1)),
        "a root: report the mean squared error, not its square root":
            ((elites - target) ** 2).mean(dim=(0, 1)).sqrt(),
    }
    for hint, value in slips.items():
        if _close(got, value, rtol=1e-4, atol=1e-7):
            raise _Wrong(hint + ".")
    raise _Wrong(_first_mismatch(got, expected, "output ", rtol=1e-4, atol=1e-7))


__all__ = [
    "CORRECT",
    "NOT_ATTEMPTED",
    "WRONG",
    "Feedback",
    "check_bootstrap",
    "check_bootstrap_band",
    "check_coverage",
    "check_gaussian_nll",
    "check_geometric_bound",
    "check_largest_k",
    "check_mixed_batch",
    "check_one_step_mse",
    "check_optimal_k",
    "check_rollout_schedule",
    "check_rollout_step",
    "check_soft_bound",
    "check_squash_correction",
    "check_td_target",
    "check_variance_decomposition",
]



# --- 07 ---------------------------------------------------------------------------------------
# Notebook 07, your own task: scoring a learned termination rule, and writing a task's rule from
# its documentation. The library is the reference (``classification_scores`` of
# ``mbpo_lib.learned_termination``, ``termination_fn("Walker2d-v5")``), and the answer's result is
# checked by ``CheckedFunction`` (shape, dtype, device), as a training run checks a termination.

def _scores_07(predicted: torch.Tensor, terminated: torch.Tensor) -> tuple[float, float]:
    from .learned_termination import classification_scores

    precision, recall, _ = classification_scores(predicted, terminated)
    return precision, recall


def _same_07(got: Sequence[float], want: Sequence[float]) -> bool:
    return all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(got, want, strict=True))


def _as_float_07(value: Any, what: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _Wrong(f"{what} should be a number (a float, or a one-element tensor), got "
                     f"{type(value).__name__}.")
    return float(value)


@_checker("precision and recall")
def check_precision_recall(fn: Callable[[torch.Tensor, torch.Tensor, float], Any] | None) -> str:
    """``fn(probability [N], terminated [N] bool, threshold)`` → ``(precision, recall)`` of the
    rule "terminal where probability >= threshold", as :class:`~mbpo_lib.TerminationClassifier`
    decides."""
    g = _generator(7)
    terminated = torch.rand(400, generator=g) < 0.15
    probability = (0.55 * terminated + 0.5 * torch.rand(400, generator=g)).clamp(0, 1)
    probability[::23], probability[5::29] = 0.5, 0.3          # rows exactly at a threshold
    for threshold in (0.5, 0.3, 0.8):
        answer = _call(fn, probability.clone(), terminated.clone(), threshold)
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            raise _Wrong("return a pair (precision, recall).")
        got = [_as_float_07(v, name) for v, name in zip(answer, ("precision", "recall"), strict=True)]
        want = _scores_07(probability >= threshold, terminated)
        if _same_07(got, want):
            continue
        if _same_07(got, want[::-1]):
            raise _Wrong("precision and recall are swapped: precision counts among the rows predicted "
                         "terminal, recall among the rows that really are terminal.")
        if _same_07(got, _scores_07(probability > threshold, terminated)):
            raise _Wrong(f"at threshold {threshold}: a row whose probability equals the threshold is "
                         "terminal too (>=, as the classifier decides).")
        if threshold != 0.5 and _same_07(got, _scores_07(probability >= 0.5, terminated)):
            raise _Wrong(f"at threshold {threshold} you give the scores at 0.5: use the threshold passed in.")
        accuracy = float(((probability >= threshold) == terminated).float().mean())
        if any(math.isclose(v, accuracy, abs_tol=1e-6) for v in got):
            raise _Wrong("that is the accuracy (the share of all rows right); precision and recall count "
                         "terminal rows only: TP / (TP + FP) and TP / (TP + FN).")
        off = [name for name, a, b in zip(("precision", "recall"), got, want, strict=True)
               if not math.isclose(a, b, abs_tol=1e-6)]
        raise _Wrong(f"at threshold {threshold}: {' and '.join(off)} off by "
                     f"{max(abs(a - b) for a, b in zip(got, want, strict=True)):.3g}.")
    return "precision TP/(TP+FP) and recall TP/(TP+FN) of p >= threshold, at three thresholds."


def _walker_rows_07(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Walker2d-like ``(obs, next_obs)`` [B, 17] around every boundary of the rule, with NaN
    heights; ``obs`` is ``next_obs`` shifted by a row, so a rule read off ``obs`` gives itself away."""
    n = 600
    next_obs = torch.randn(n, 17, generator=g)
    next_obs[:, 0] = 0.6 + 1.6 * torch.rand(n, generator=g)           # height, across 0.8 and 2.0
    next_obs[:, 1] = 2.6 * (torch.rand(n, generator=g) - 0.5)         # torso angle, across +-1
    next_obs[::13, 0], next_obs[1::17, 0] = 0.8, 2.0                  # exactly on the boundaries
    next_obs[2::19, 1], next_obs[3::23, 1] = 1.0, -1.0
    next_obs[4::41, 0] = float("nan")                                 # a NaN height is not healthy
    return next_obs.roll(1, dims=0), next_obs


@_checker("Walker2d's termination rule")
def check_walker_termination(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None
                             ) -> str:
    """``fn(obs [B, 17], act [B, 6], next_obs [B, 17])`` → ``terminated`` bool ``[B]``: Walker2d-v5's
    rule, ``mbpo_lib.termination_fn("Walker2d-v5")``, called as a training run calls it."""
    from .task_functions import CheckedFunction
    from .termination import termination_fn

    obs, next_obs = _walker_rows_07(_generator(8))
    act = torch.zeros(obs.shape[0], 6)
    if fn is None:
        raise _Stub
    try:
        got = CheckedFunction(fn, "termination", "my_walker_termination")(obs.clone(), act, next_obs.clone())
    except NotImplementedError as error:
        raise _Stub from error
    except ValueError as error:                   # the library's own message: shape, dtype or device
        raise _Wrong(str(error)) from None
    rule = termination_fn("Walker2d-v5")
    want = rule(obs, act, next_obs)
    if torch.equal(got, want):
        return "agrees with termination_fn('Walker2d-v5') on every row, boundaries and NaN heights included."
    z, angle = next_obs[:, 0], next_obs[:, 1]
    slips = [
        (~want, "this is True where the walker is healthy: terminated is the opposite, not healthy."),
        (torch.zeros_like(want), "nothing is ever terminal: compare next_obs with the healthy ranges."),
        (rule(obs, act, obs), "decided on obs: Gymnasium decides on the state after the step, next_obs."),
        ((z <= 0.8) | (z >= 2.0) | (angle <= -1) | (angle >= 1),
         "right except where the height is NaN: a NaN fails every comparison, so 'z <= 0.8 or ...' never "
         "fires on it. Write the healthy condition and negate it, as Gymnasium does."),
        (~((z >= 0.8) & (z <= 2.0) & (angle >= -1) & (angle <= 1)),
         "the boundaries: the healthy ranges are open (0.8 < z < 2.0, -1 < angle < 1), so a height of "
         "exactly 0.8 or an angle of exactly 1 ends the episode."),
        (~((z > 0.8) & (angle > -1) & (angle < 1)),
         "the upper height bound is missing: a walker higher than 2.0 (thrown up) is not healthy either."),
        (~((z > 0.8) & (z < 2.0)), "the torso angle is missing: -1 < next_obs[:, 1] < 1."),
        (~((angle > -1) & (angle < 1)), "the height is missing: 0.8 < next_obs[:, 0] < 2.0."),
    ]
    for value, hint in slips:
        if torch.equal(got, value):
            raise _Wrong(hint)
    bad = (got != want).nonzero().squeeze(1)
    rows = ", ".join(str(int(i)) for i in bad[:5]) + (", ..." if bad.numel() > 5 else "")
    which = "row" if bad.numel() == 1 else "rows"
    raise _Wrong(f"{bad.numel()} of {want.numel()} rows disagree with Walker2d-v5's rule ({which} {rows}); "
                 "check each condition on next_obs.")


__all__ += ["check_precision_recall", "check_walker_termination"]
