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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .models import gaussian_nll
from .theory import geometric_compounding_error

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


__all__ = [
    "CORRECT",
    "NOT_ATTEMPTED",
    "WRONG",
    "Feedback",
    "check_bootstrap",
    "check_coverage",
    "check_gaussian_nll",
    "check_geometric_bound",
    "check_largest_k",
    "check_soft_bound",
    "check_squash_correction",
    "check_td_target",
    "check_variance_decomposition",
]
