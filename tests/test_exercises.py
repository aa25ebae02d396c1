"""Every exercise checker accepts the reference solution, rejects a typical wrong answer with a
message that says what is wrong, and treats an untouched stub as "not attempted"."""

import math

import pytest
import torch
import torch.nn.functional as F

import mbpo_lib
from mbpo_lib import exercises as ex


def stub(*args):
    raise NotImplementedError


# --- reference solutions (the ones the notebooks' Solutions sections hold) --------------------

def geometric_bound(eps, lipschitz, k):
    return eps * (lipschitz ** k - 1) / (lipschitz - 1)


def nll(mean, logvar, y):
    return 0.5 * ((y - mean) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi))


def soft_bound(raw, max_logvar, min_logvar):
    logvar = max_logvar - F.softplus(max_logvar - raw)
    return min_logvar + F.softplus(logvar - min_logvar)


def bootstrap(n, members, generator):
    return torch.randint(n, (members, n), generator=generator)


def decompose(means, variances):
    return variances.mean(0), means.var(0, unbiased=False)


def coverage(y, mean, std, c):
    return ((y - mean).abs() <= c * std).float().mean(0)


def squash(u):
    return 2 * (math.log(2) - u - F.softplus(-2 * u))


def td_target(rew, terminated, truncated, q1, q2, log_pi, alpha, gamma):
    return rew + gamma * (1 - terminated) * (torch.minimum(q1, q2) - alpha * log_pi)


REFERENCES = [
    (ex.check_geometric_bound, (geometric_bound,)),
    (ex.check_gaussian_nll, (nll,)),
    (ex.check_soft_bound, (soft_bound,)),
    (ex.check_bootstrap, (bootstrap,)),
    (ex.check_variance_decomposition, (decompose,)),
    (ex.check_coverage, (coverage,)),
    (ex.check_squash_correction, (squash,)),
    (ex.check_td_target, (td_target,)),
]

# (checker, a typical wrong answer, a phrase the message must contain)
WRONG_ANSWERS = [
    (ex.check_geometric_bound, lambda eps, L, k: k * eps, "linear reading"),
    (ex.check_geometric_bound, lambda eps, L, k: eps * (L ** (k + 1) - 1) / (L - 1), "off by one"),
    (ex.check_geometric_bound, lambda eps, L, k: torch.tensor(0.3), "shape"),
    (ex.check_gaussian_nll, lambda m, lv, y: 2 * nll(m, lv, y), "factor 1/2"),
    (ex.check_gaussian_nll, lambda m, lv, y: nll(m, lv, y).mean(), "one value per element"),
    (ex.check_gaussian_nll,
     lambda m, lv, y: 0.5 * ((y - m) ** 2 / torch.exp(0.5 * lv) + lv + math.log(2 * math.pi)), "σ²"),
    (ex.check_soft_bound, lambda raw, hi, lo: raw.clamp(lo, hi), "hard clamp"),
    (ex.check_soft_bound,
     lambda raw, hi, lo: hi - F.softplus(hi - (lo + F.softplus(raw - lo))), "wrong order"),
    (ex.check_bootstrap, lambda n, e, g: torch.stack([torch.randperm(n, generator=g) for _ in range(e)]),
     "permutation"),
    (ex.check_bootstrap, lambda n, e, g: torch.randint(n, (n,), generator=g).expand(e, n), "same resample"),
    (ex.check_bootstrap, lambda n, e, g: torch.randint(n, (e, n)), "seeded"),
    (ex.check_variance_decomposition, lambda m, v: (v.mean(0), m.var(0)), "unbiased"),
    (ex.check_variance_decomposition, lambda m, v: (m.var(0, unbiased=False), v.mean(0)), "swapped"),
    (ex.check_coverage, lambda y, m, s, c: ((y - m) <= c * s).float().mean(0), "absolute"),
    (ex.check_coverage, lambda y, m, s, c: ((y - m).abs() <= c * s).float().mean(), "shape"),
    (ex.check_squash_correction, lambda u: torch.log(1 - torch.tanh(u) ** 2), "−inf"),
    (ex.check_squash_correction, lambda u: torch.log(1 - torch.tanh(u) ** 2 + 1e-6), "1e-6"),
    (ex.check_td_target,
     lambda r, d, t, q1, q2, lp, a, g: td_target(r, torch.maximum(d, t), t, q1, q2, lp, a, g), "truncated"),
    (ex.check_td_target,
     lambda r, d, t, q1, q2, lp, a, g: r + g * (1 - d) * (torch.maximum(q1, q2) - a * lp), "minimum"),
    (ex.check_td_target,
     lambda r, d, t, q1, q2, lp, a, g: r + g * (1 - d) * (torch.minimum(q1, q2) + a * lp), "sign"),
]


@pytest.mark.parametrize(("checker", "args"), REFERENCES, ids=lambda x: getattr(x, "__name__", ""))
def test_the_reference_solution_passes(checker, args):
    feedback = checker(*args)
    assert feedback.ok, feedback
    assert repr(feedback).startswith("✓")


@pytest.mark.parametrize(("checker", "wrong", "phrase"), WRONG_ANSWERS,
                         ids=[f"{c.__name__}-{p}" for c, _, p in WRONG_ANSWERS])
def test_a_typical_wrong_answer_is_rejected_with_a_helpful_message(checker, wrong, phrase):
    feedback = checker(wrong)
    assert feedback.status == ex.WRONG, feedback
    assert phrase in feedback.message, feedback
    assert repr(feedback).startswith("✗")


@pytest.mark.parametrize(("checker", "args"), REFERENCES, ids=lambda x: getattr(x, "__name__", ""))
def test_an_untouched_stub_is_not_attempted_and_does_not_raise(checker, args):
    for untouched in (stub, None):
        feedback = checker(untouched)
        assert feedback.status == ex.NOT_ATTEMPTED and not feedback.ok
        assert "YOUR ANSWER" in feedback.message


def test_code_that_crashes_is_reported_not_raised():
    feedback = ex.check_gaussian_nll(lambda mean, logvar, y: mean @ torch.ones(5))
    assert feedback.status == ex.WRONG and "RuntimeError" in feedback.message


def test_largest_k_accepts_the_answer_and_says_which_way_a_wrong_one_is_off():
    eps, lipschitz, budget = 0.02, 1.05, 0.2
    k_star = max(k for k in range(1, 100) if geometric_bound(eps, lipschitz, k) <= budget)
    assert ex.check_largest_k(k_star, eps, lipschitz, budget).ok
    too_far = ex.check_largest_k(10, eps, lipschitz, budget)  # kε = 0.2: the linear reading's k
    assert not too_far.ok and "linear reading" in too_far.message and "above" in too_far.message
    too_short = ex.check_largest_k(k_star - 2, eps, lipschitz, budget)
    assert not too_short.ok and "go further" in too_short.message
    assert ex.check_largest_k(None, eps, lipschitz, budget).status == ex.NOT_ATTEMPTED
    assert "whole number" in ex.check_largest_k(7.5, eps, lipschitz, budget).message


def test_feedback_never_prints_the_expected_values():
    # a wrong NLL that matches no known slip: the message names where and how much, not the answer
    feedback = ex.check_gaussian_nll(lambda mean, logvar, y: nll(mean, logvar, y) + 0.1 * mean)
    assert feedback.status == ex.WRONG and "values are off" in feedback.message
    expected = mbpo_lib.gaussian_nll(*(torch.zeros(1),) * 3)
    assert f"{float(expected):.3g}" not in feedback.message


def test_the_module_is_exported():
    assert mbpo_lib.exercises is ex
