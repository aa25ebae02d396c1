"""Every exercise checker accepts the reference solution, rejects a typical wrong answer with a
message that says what is wrong, and treats an untouched stub as "not attempted"."""

import math
import statistics

import numpy as np
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


# --- notebooks 03, 05 and 06: reference solutions, typical slips -----------------------------

def optimal_k(gamma, eps_pi, eps_m_new):
    if eps_m_new >= eps_pi:
        return 0
    return math.ceil(math.log(eps_m_new / eps_pi) / math.log(gamma))


def schedule_k(epoch, schedule):
    e0, e1, k0, k1 = schedule
    progress = min(1.0, max(0.0, (epoch - e0) / (e1 - e0)))
    return int(k0 + progress * (k1 - k0))


def mixed_batch(real, model, real_ratio, batch_size, generator):
    n_real = batch_size if len(model) == 0 else int(batch_size * real_ratio)
    if n_real == batch_size:
        return real.sample(n_real, generator)
    a, b = real.sample(n_real, generator), model.sample(batch_size - n_real, generator)
    return mbpo_lib.Batch(*(torch.cat([x, y]) for x, y in zip(a, b, strict=True)))


def rounded_mixed_batch(real, model, real_ratio, batch_size, generator):
    n_real = batch_size if len(model) == 0 else round(batch_size * real_ratio)
    a, b = real.sample(n_real, generator), model.sample(batch_size - n_real, generator)
    return mbpo_lib.Batch(*(torch.cat([x, y]) for x, y in zip(a, b, strict=True)))


def rollout_step(model, policy, obs, done_fn, generator):
    act = policy(obs, generator)
    next_obs, rew, _ = model.step(obs, act, generator=generator)
    done = done_fn(obs, act, next_obs)
    return (obs, act, rew, next_obs, done), next_obs[~done]


def bootstrap_band(curves, draws, confidence):
    means = curves[draws].mean(axis=1)                      # [B, T]
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    return low, high


def one_step_mse(model, obs, act, rew, next_obs):
    with torch.no_grad():
        mean, _ = model.predict(obs, act)
    target = torch.cat([rew[:, None], next_obs - obs], dim=-1)
    return ((mean[model.elites] - target) ** 2).mean(dim=(0, 1))


def _ramp(epoch, schedule, clip_low=True, clip_high=True, end=None, rounding=int):
    e0, e1, k0, k1 = schedule
    progress = (epoch - e0) / ((end or e1) - e0)
    progress = max(0.0, progress) if clip_low else progress
    progress = min(1.0, progress) if clip_high else progress
    return rounding(k0 + progress * (k1 - k0))


def _normal_band(curves, draws, confidence):
    means = curves[draws].mean(axis=1)
    z = statistics.NormalDist().inv_cdf((1 + confidence) / 2)
    return means.mean(0) - z * means.std(0), means.mean(0) + z * means.std(0)


REFERENCES_LATER = [
    (ex.check_optimal_k, (optimal_k,)),
    (ex.check_rollout_schedule, (schedule_k,)),
    (ex.check_mixed_batch, (mixed_batch,)),
    (ex.check_rollout_step, (rollout_step,)),
    (ex.check_bootstrap_band, (bootstrap_band,)),
    (ex.check_one_step_mse, (one_step_mse,)),
]

WRONG_ANSWERS_LATER = [
    (ex.check_optimal_k, lambda g, p, m: math.floor(math.log(m / p) / math.log(g)) if m < p else 0, "short"),
    (ex.check_optimal_k, lambda g, p, m: math.ceil(math.log(m / p) / math.log(g)), "negative"),
    (ex.check_optimal_k, lambda g, p, m: max(0, math.ceil(math.log(p / m) / (1 - g))), "approximation"),
    (ex.check_optimal_k, lambda g, p, m: 3.5, "whole number"),
    (ex.check_rollout_schedule, lambda e, s: _ramp(e, s, rounding=round), "floor"),
    (ex.check_rollout_schedule, lambda e, s: _ramp(e, s, clip_high=False), "stays at k1"),
    (ex.check_rollout_schedule, lambda e, s: _ramp(e, s, clip_low=False), "stays at k0"),
    (ex.check_rollout_schedule, lambda e, s: _ramp(e, s, end=100), "epoch 100"),
    (ex.check_mixed_batch, rounded_mixed_batch, "truncated with int()"),
    (ex.check_mixed_batch, lambda r, m, q, b, g: mbpo_lib.Batch(*(torch.cat([x, y]) for x, y in zip(
        r.sample(int(b * q), g), m.sample(b - int(b * q), g), strict=True))), "empty model buffer"),
    (ex.check_mixed_batch, lambda r, m, q, b, g: mixed_batch(r, m, 1 - q if len(m) else q, b, g), "swapped"),
    (ex.check_mixed_batch, lambda r, m, q, b, g: mixed_batch(r, m, q, b, None), "seeded"),
    (ex.check_rollout_step,
     lambda *args: (lambda w, s: (tuple(x[~w[4]] for x in w), s))(*rollout_step(*args)), "written too"),
    (ex.check_rollout_step, lambda *args: (lambda w, s: (w, w[0][~w[4]]))(*rollout_step(*args)),
     "old states"),
    (ex.check_rollout_step, lambda *args: (lambda w, s: (w, w[3]))(*rollout_step(*args)), "branch stops"),
    (ex.check_rollout_step, lambda *args: (lambda w, s: (w, w[3][w[4]]))(*rollout_step(*args)), "inverted"),
    (ex.check_rollout_step, lambda m, p, o, d, g: rollout_step(m, lambda obs, _: p(obs, None), o, d, g),
     "actions differ"),
    (ex.check_bootstrap_band, lambda c, d, q: tuple(np.quantile(c[d].mean(1), [1 - q, q], axis=0)),
     "each tail"),
    (ex.check_bootstrap_band, lambda c, d, q: (c.mean(0) - 1.96 * c.std(0), c.mean(0) + 1.96 * c.std(0)),
     "single seeds"),
    (ex.check_bootstrap_band, _normal_band, "normal approximation"),
    (ex.check_bootstrap_band, lambda c, d, q: bootstrap_band(c, d, q)[::-1], "swapped"),
    (ex.check_bootstrap_band, lambda c, d, q: tuple(np.quantile(c[d].mean(2), [0.025, 0.975], axis=0)),
     "shape"),
    (ex.check_one_step_mse, lambda m, o, a, r, n: ((m.predict(o, a)[0][m.elites]
                                                    - torch.cat([r[:, None], n], -1)) ** 2).mean((0, 1)),
     "change s' − s"),
    (ex.check_one_step_mse, lambda m, o, a, r, n: ((m.predict(o, a)[0]
                                                    - torch.cat([r[:, None], n - o], -1)) ** 2).mean((0, 1)),
     "elites only"),
    (ex.check_one_step_mse, lambda m, o, a, r, n: ((m.predict(o, a)[0][m.elites].mean(0)
                                                    - torch.cat([r[:, None], n - o], -1)) ** 2).mean(0),
     "average prediction"),
    (ex.check_one_step_mse, lambda m, o, a, r, n: one_step_mse(m, o, a, r, n).mean(), "shape"),
]


@pytest.mark.parametrize(("checker", "args"), REFERENCES_LATER, ids=lambda x: getattr(x, "__name__", ""))
def test_the_reference_solution_passes_notebooks_03_to_06(checker, args):
    feedback = checker(*args)
    assert feedback.ok, feedback
    assert repr(feedback).startswith("✓")


@pytest.mark.parametrize(("checker", "wrong", "phrase"), WRONG_ANSWERS_LATER,
                         ids=[f"{c.__name__}-{p}" for c, _, p in WRONG_ANSWERS_LATER])
def test_a_typical_wrong_answer_is_rejected_notebooks_03_to_06(checker, wrong, phrase):
    feedback = checker(wrong)
    assert feedback.status == ex.WRONG, feedback
    assert phrase in feedback.message, feedback
    assert repr(feedback).startswith("✗")


@pytest.mark.parametrize(("checker", "args"), REFERENCES_LATER, ids=lambda x: getattr(x, "__name__", ""))
def test_an_untouched_stub_is_not_attempted_notebooks_03_to_06(checker, args):
    for untouched in (stub, None):
        feedback = checker(untouched)
        assert feedback.status == ex.NOT_ATTEMPTED and not feedback.ok
        assert "YOUR ANSWER" in feedback.message


def test_the_k_star_checker_never_prints_the_expected_k():
    feedback = ex.check_optimal_k(lambda g, p, m: optimal_k(g, p, m) + 7)
    assert feedback.status == ex.WRONG and "too large" in feedback.message
    assert f"k* = {optimal_k(0.99, 0.1, 0.09)} " not in feedback.message


# --- 07 ---------------------------------------------------------------------------------------
# Notebook 07, your own task: the reference solutions its Solutions section holds, and the
# typical slips each checker must name.

def precision_recall(probability, terminated, threshold):
    predicted = probability >= threshold
    caught = (predicted & terminated).sum()
    return float(caught / predicted.sum()), float(caught / terminated.sum())


def walker_termination(obs, act, next_obs):
    z, angle = next_obs[:, 0], next_obs[:, 1]
    return ~((z > 0.8) & (z < 2.0) & (angle > -1) & (angle < 1))


REFERENCES_07 = [
    (ex.check_precision_recall, (precision_recall,)),
    (ex.check_walker_termination, (walker_termination,)),
]

WRONG_ANSWERS_07 = [
    (ex.check_precision_recall, lambda p, d, t: precision_recall(p, d, t)[::-1], "swapped"),
    (ex.check_precision_recall, lambda p, d, t: precision_recall(p - 1e-3 * (p == t), d, t),
     "equals the threshold"),
    (ex.check_precision_recall, lambda p, d, t: precision_recall(p, d, 0.5), "threshold passed in"),
    (ex.check_precision_recall, lambda p, d, t: (float(((p >= t) == d).float().mean()),) * 2, "accuracy"),
    (ex.check_precision_recall, lambda p, d, t: precision_recall(p, d, t)[0], "a pair"),
    (ex.check_walker_termination, lambda o, a, n: ~walker_termination(o, a, n), "healthy"),
    (ex.check_walker_termination, lambda o, a, n: walker_termination(o, a, o), "next_obs"),
    (ex.check_walker_termination, lambda o, a, n: (n[:, 0] <= 0.8) | (n[:, 0] >= 2) | (n[:, 1].abs() >= 1),
     "NaN"),
    (ex.check_walker_termination, lambda o, a, n: ~((n[:, 0] >= 0.8) & (n[:, 0] <= 2) & (n[:, 1].abs() <= 1)),
     "open"),
    (ex.check_walker_termination, lambda o, a, n: ~((n[:, 0] > 0.8) & (n[:, 1].abs() < 1)), "upper height"),
    (ex.check_walker_termination, lambda o, a, n: walker_termination(o, a, n).float(), "dtype torch.float32"),
    (ex.check_walker_termination, lambda o, a, n: n < 0, "shape [600, 17]"),
]


@pytest.mark.parametrize(("checker", "args"), REFERENCES_07, ids=lambda x: getattr(x, "__name__", ""))
def test_the_reference_solution_passes_notebook_07(checker, args):
    feedback = checker(*args)
    assert feedback.ok, feedback
    assert repr(feedback).startswith("✓")


@pytest.mark.parametrize(("checker", "wrong", "phrase"), WRONG_ANSWERS_07,
                         ids=[f"{c.__name__}-{p}" for c, _, p in WRONG_ANSWERS_07])
def test_a_typical_wrong_answer_is_rejected_notebook_07(checker, wrong, phrase):
    feedback = checker(wrong)
    assert feedback.status == ex.WRONG, feedback
    assert phrase in feedback.message, feedback
    assert repr(feedback).startswith("✗")


@pytest.mark.parametrize(("checker", "args"), REFERENCES_07, ids=lambda x: getattr(x, "__name__", ""))
def test_an_untouched_stub_is_not_attempted_notebook_07(checker, args):
    for untouched in (stub, None):
        feedback = checker(untouched)
        assert feedback.status == ex.NOT_ATTEMPTED and not feedback.ok
        assert "YOUR ANSWER" in feedback.message


def test_the_07_references_agree_with_the_library_and_a_near_miss_is_named_not_solved():
    # the library's classifier decides p >= threshold, and the Hopper rule is the library's own
    from mbpo_lib.learned_termination import classification_scores

    g = torch.Generator().manual_seed(0)
    p, d = torch.rand(50, generator=g), torch.rand(50, generator=g) < 0.3
    assert precision_recall(p, d, 0.4) == pytest.approx(classification_scores(p >= 0.4, d)[:2])
    rows = torch.randn(64, 17, generator=g)
    rows[:, 0] += 1.2
    assert torch.equal(walker_termination(rows, torch.zeros(64, 6), rows),
                       mbpo_lib.termination_fn("Walker2d-v5")(rows, torch.zeros(64, 6), rows))
    feedback = ex.check_precision_recall(lambda p, d, t: (precision_recall(p, d, t)[0] + 0.01,
                                                          precision_recall(p, d, t)[1]))
    assert feedback.status == ex.WRONG
    assert feedback.message == "at threshold 0.5: precision off by 0.01."   # where and how much, no answer
