"""The rollout-length theory: formulas against hand computation, recursions and brute force."""

import math

import numpy as np
import pytest
import torch
from stand_in_models import DriftModel
from torch.testing import assert_close

from mbpo_lib import theory


def test_linear_reading_gives_the_guides_75_percent():
    assert theory.linear_compounding_error(0.05, 15) == pytest.approx(0.75)
    assert np.allclose(theory.linear_compounding_error(0.1, np.arange(4)), [0, 0.1, 0.2, 0.3])


@pytest.mark.parametrize("lipschitz", [0.8, 1.0, 1.05, 1.3])
def test_geometric_error_is_the_recursion_e_next_equals_L_e_plus_eps(lipschitz):
    eps, error, errors = 0.05, 0.0, []
    for _ in range(30):
        error = lipschitz * error + eps
        errors.append(error)
    closed = theory.geometric_compounding_error(eps, lipschitz, np.arange(1, 31))
    assert np.allclose(closed, errors)


def test_geometric_error_at_L_1_is_linear_and_saturates_below_1():
    assert np.allclose(theory.geometric_compounding_error(0.05, 1.0, np.arange(20)),
                       theory.linear_compounding_error(0.05, np.arange(20)))
    assert theory.geometric_compounding_error(0.05, 0.5, 200) == pytest.approx(0.05 / (1 - 0.5))
    assert theory.geometric_compounding_error(0.05, 1.1, 15) > theory.linear_compounding_error(0.05, 15)


def test_simplified_bound():
    assert theory.simplified_bound(100.0, 0.1, 5, c=2.0) == pytest.approx(99.0)


def test_theorem_4_1_gap_by_hand():
    gamma, r_max, eps_pi, eps_m = 0.9, 1.0, 0.01, 0.02
    by_hand = 2 * 0.9 * 1.0 * (0.02 + 0.02) / 0.01 + 4 * 1.0 * 0.01 / 0.1
    assert theory.full_model_bound_gap(gamma, r_max, eps_pi, eps_m) == pytest.approx(by_hand)


def test_theorem_4_3_terms_by_hand():
    gamma, r_max, eps_pi, eps_m, k = 0.99, 2.0, 0.1, 0.003, 4
    shift = 2 * r_max * (gamma ** 5 * eps_pi / (1 - gamma) ** 2 + gamma ** 4 * eps_pi / (1 - gamma))
    model = 2 * r_max * k * eps_m / (1 - gamma)
    terms = theory.branched_bound_terms(k, gamma, r_max, eps_pi, eps_m)
    assert terms.policy_shift == pytest.approx(shift)
    assert terms.model == pytest.approx(model)
    assert terms.total == pytest.approx(shift + model)


def test_theorem_4_3_sides_move_in_opposite_directions():
    k = np.arange(0, 50)
    terms = theory.branched_bound_terms(k, 0.99, 1.0, 0.2, 0.01)
    assert np.all(np.diff(terms.policy_shift) < 0) and np.all(np.diff(terms.model) > 0)
    assert terms.model[0] == 0  # no rollout, no model error
    # at k = 0 the two policy-shift terms combine to 2 r_max eps_pi / (1 - gamma)^2
    assert terms.policy_shift[0] == pytest.approx(2 * 0.2 / 0.01 ** 2)


@pytest.mark.parametrize("seed", range(20))
def test_optimal_k_is_the_argmin_of_the_curve(seed):
    rng = np.random.default_rng(seed)
    gamma = rng.uniform(0.9, 0.999)
    eps_pi, eps_m = rng.uniform(0.01, 0.5), 10 ** rng.uniform(-5, -1)
    k = np.arange(0, 5001)
    total = theory.branched_bound_terms(k, gamma, 1.0, eps_pi, eps_m).total
    assert theory.optimal_k(gamma, eps_pi, eps_m, k_max=5000) == int(np.argmin(total))


@pytest.mark.parametrize(("gamma", "eps_pi", "k"),
                         [(0.9, 0.1, 3), (0.95, 0.2, 5), (0.9, 0.3, 3), (0.99, 0.1, 7)])
def test_optimal_k_breaks_a_tie_towards_the_shorter_rollout(gamma, eps_pi, k):
    # gap(k) = gap(k + 1) exactly when eps_pi gamma^k / (1 - gamma) = eps_m / (1 - gamma); in floats
    # the two differ by rounding only, sometimes in favour of k + 1 (e.g. 0.95, 0.2, 5)
    eps_m = eps_pi * gamma ** k
    gaps = theory.branched_bound_terms(np.array([k, k + 1]), gamma, 1.0, eps_pi, eps_m).total
    assert gaps[0] == pytest.approx(gaps[1], rel=1e-12)
    assert theory.optimal_k(gamma, eps_pi, eps_m) == k


def test_continuous_k_star_is_a_stationary_point():
    gamma, eps_pi, eps_m = 0.99, 0.1, 0.0005
    k_star = theory.optimal_k_continuous(gamma, eps_pi, eps_m)
    assert k_star > 0

    def gap(k):
        return float(theory.branched_bound_terms(k, gamma, 1.0, eps_pi, eps_m).total)

    h = 1e-4
    assert (gap(k_star + h) - gap(k_star - h)) / (2 * h) == pytest.approx(0.0, abs=1e-6)
    assert gap(k_star) < gap(k_star - 1) and gap(k_star) < gap(k_star + 1)


def test_a_poor_model_means_no_rollout():
    assert theory.optimal_k_continuous(0.99, 0.01, 1.0) == 0.0
    assert theory.optimal_k(0.99, 0.01, 1.0) == 0
    assert theory.optimal_k_continuous(0.99, 0.1, 0.0) == math.inf
    assert theory.optimal_k(0.99, 0.1, 0.0, k_max=25) == 25


@pytest.mark.parametrize(("call", "message"), [
    (lambda: theory.branched_bound_terms(1, 1.0, 1.0, 0.1, 0.1), "gamma must be in"),
    (lambda: theory.branched_bound_terms(1, 0.9, 1.0, -0.1, 0.1), "eps_pi must be >= 0"),
    (lambda: theory.geometric_compounding_error(0.1, -1.0, 3), "lipschitz must be >= 0"),
    (lambda: theory.optimal_k(0.9, 0.1, 0.1, k_max=-1), "k_max must be an int >= 0"),
    (lambda: theory.full_model_bound_gap(0.0, 1.0, 0.1, 0.1), "gamma must be in"),
])
def test_bad_values_are_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_trajectory_windows_cut_an_episode():
    obs = torch.arange(11.0).unsqueeze(-1).repeat(1, 2)     # s_t = (t, t)
    act = torch.arange(10.0).unsqueeze(-1)
    w_obs, w_act = theory.trajectory_windows(obs, act, k_max=3, stride=2)
    assert w_obs.shape == (4, 4, 2) and w_act.shape == (4, 3, 1)
    assert w_obs[:, 0, 0].tolist() == [0, 2, 4, 6] and w_obs[3, 3, 0] == 9
    assert torch.equal(w_act[1, :, 0], torch.tensor([2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="one more state than actions"):
        theory.trajectory_windows(obs[:-1], act, 3)


def test_multistep_error_accumulates_a_constant_drift():
    g = torch.Generator().manual_seed(0)
    act = torch.randn(8, 5, 2, generator=g)
    obs = torch.cat([torch.zeros(8, 1, 2), torch.cumsum(act, dim=1)], dim=1)  # the true s' = s + a
    errors = theory.multistep_error(DriftModel([0.3, 0.4]), obs, act)
    assert_close(errors, 0.5 * torch.arange(1, 6, dtype=torch.float32))
    assert theory.multistep_error(DriftModel([0.3, 0.4]), obs, act, k_max=2).shape == (2,)


def test_multistep_error_of_a_dynamics_model_starts_at_its_one_step_error():
    from mbpo_lib import DynamicsModel, EnsembleConfig

    g = torch.Generator().manual_seed(0)
    obs = torch.randn(2000, 3, generator=g)
    act = torch.rand(2000, 1, generator=g)
    next_obs = 0.9 * obs + 0.1 * act
    model = DynamicsModel(3, 1, EnsembleConfig(hidden_dim=32, max_epochs=5), seed=0)
    model.fit(obs, act, torch.zeros(2000), next_obs)
    windows = torch.stack([obs[:50], next_obs[:50]], dim=1), act[:50, None]
    errors = theory.multistep_error(model, *windows, generator=torch.Generator().manual_seed(1))
    predicted, _, _ = model.step(obs[:50], act[:50], generator=torch.Generator().manual_seed(1),
                                 deterministic=True)
    assert_close(errors[0], torch.linalg.vector_norm(predicted - next_obs[:50], dim=-1).mean())
    with pytest.raises(ValueError, match="k_max"):
        theory.multistep_error(model, *windows, k_max=2)


class LinearModel:
    """A stand-in model s' = s A + a B (deterministic), with the test's device attribute."""

    device = torch.device("cpu")

    def __init__(self, A, B):
        self.A, self.B = A, B

    def step(self, obs, act, generator=None, deterministic=False):
        return obs @ self.A + act @ self.B, torch.zeros(obs.shape[0]), {}


def test_multistep_error_is_zero_for_the_true_dynamics_and_grows_for_a_perturbed_model():
    g = torch.Generator().manual_seed(0)
    A = torch.tensor([[0.99, -0.10], [0.10, 0.99]])          # a slowly spiralling system
    B = torch.tensor([[0.0, 0.1]])
    act = torch.randn(16, 12, 1, generator=g)
    states = [torch.randn(16, 2, generator=g)]
    for t in range(12):
        states.append(states[-1] @ A + act[:, t] @ B)
    obs = torch.stack(states, dim=1)
    assert torch.equal(theory.multistep_error(LinearModel(A, B), obs, act), torch.zeros(12))
    perturbed = theory.multistep_error(LinearModel(A * 1.03, B), obs, act)
    assert torch.all(perturbed[1:] > perturbed[:-1]) and perturbed[0] > 0


# --- the TV picture, Theorem 4.2, the closed form of k*, the measured slope and fits ---------

def test_the_tv_linear_sum_is_gamma_eps_over_one_minus_gamma_squared():
    for gamma, eps in ((0.9, 0.1), (0.99, 0.02), (0.5, 1.0)):
        t = np.arange(0, 20_000)
        expected = theory.discounted_linear_error(eps, gamma)
        assert np.sum(gamma ** t * t * eps) == pytest.approx(expected, rel=1e-9)
    # it is the model term of Theorem 4.1 (with eps_pi = 0) up to the factor 2 r_max
    theorem_4_1 = theory.full_model_bound_gap(0.99, 1.0, 0, 0.1)
    assert 2 * theory.discounted_linear_error(0.1, 0.99) == pytest.approx(theorem_4_1)


def test_tv_distance_of_a_chain_and_its_model_grows_at_most_linearly():
    # a conveyor (s -> s + 1) and a model that skips a state with probability eps: TV = 1 - (1 - eps)^t
    eps, n = 0.02, 200
    ring = np.roll(np.eye(n), 1, axis=1)
    model = (1 - eps) * ring + eps * np.roll(ring, 1, axis=1)
    d = d_hat = np.eye(n)[0]
    for t in range(1, 61):
        d, d_hat = d @ ring, d_hat @ model
        tv = 0.5 * np.abs(d - d_hat).sum()
        assert tv == pytest.approx(1 - (1 - eps) ** t) and tv <= t * eps + 1e-12


@pytest.mark.parametrize("seed", range(50))
def test_the_relative_gaps_argmin_is_optimal_k_and_the_closed_form(seed):
    rng = np.random.default_rng(100 + seed)
    gamma, eps_pi = rng.uniform(0.9, 0.999), rng.uniform(0.01, 0.5)
    eps_m = theory.model_error_under_new_policy(10 ** rng.uniform(-4, -0.5), rng.uniform(0, 1.5), eps_pi)
    k = np.arange(0, 30_001)
    relative = theory.relative_gap(k, gamma, eps_pi, eps_m)
    assert relative[0] == 0
    best = int(np.argmin(relative))
    assert best == theory.optimal_k(gamma, eps_pi, eps_m, k_max=30_000)
    assert best == theory.optimal_k_discrete(gamma, eps_pi, eps_m)
    assert (best > 0) == (eps_m < eps_pi)


@pytest.mark.parametrize("seed", range(30))
def test_theorem_4_2_never_recommends_a_rollout(seed):
    rng = np.random.default_rng(seed)
    gamma, eps_pi = rng.uniform(0.5, 0.9999), 10 ** rng.uniform(-5, 0)
    eps_m = rng.choice([0.0, 10 ** rng.uniform(-6, 0)])
    k = np.arange(0, 5001)
    total = theory.theorem_4_2_terms(k, gamma, 1.0, eps_pi, eps_m).total
    assert int(np.argmin(total)) == 0 and np.all(np.diff(total) > 0)
    # each step costs at least 2 r_max (eps_m + eps_pi) / (1 - gamma)
    assert np.all(np.diff(total) >= 2 * (eps_m + eps_pi) / (1 - gamma) * (1 - 1e-9))


def test_theorem_4_2_terms_by_hand():
    gamma, r_max, eps_pi, eps_m, k = 0.99, 2.0, 0.1, 0.003, 4
    shift = 2 * r_max * (gamma ** 5 * eps_pi / (1 - gamma) ** 2 + gamma ** 4 * eps_pi / (1 - gamma))
    terms = theory.theorem_4_2_terms(k, gamma, r_max, eps_pi, eps_m)
    assert terms.policy_shift == pytest.approx(shift)
    assert terms.model == pytest.approx(2 * r_max * k * (eps_m + 2 * eps_pi) / (1 - gamma))


def test_relative_gap_is_in_units_of_the_largest_return():
    gamma, eps_pi, eps_m = 0.99, 0.1, 0.09
    gaps = theory.branched_bound_terms(np.array([0, 7]), gamma, 1.0, eps_pi, eps_m).total
    assert theory.relative_gap(7, gamma, eps_pi, eps_m) == pytest.approx((gaps[1] - gaps[0]) * (1 - gamma))
    assert theory.relative_gap(1, gamma, eps_pi, 0.0, theorem="4.2") == pytest.approx(2 * eps_pi)


def test_optimal_k_ties_at_eps_m_new_equal_to_eps_pi_go_to_no_rollout():
    assert theory.optimal_k(0.99, 0.1, 0.1) == 0 == theory.optimal_k_discrete(0.99, 0.1, 0.1)
    assert theory.optimal_k(0.99, 0.1, 0.0999) == 1 == theory.optimal_k_discrete(0.99, 0.1, 0.0999)
    assert theory.optimal_k(0.99, 0.1, 0.045) == 80 and theory.optimal_k(0.99, 0.1, 0.09) == 11
    assert theory.optimal_k_discrete(0.99, 0.1, 0.0) == math.inf


def test_fit_slope_recovers_a_known_slope():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.5, 400)
    y = 0.1 + 0.35 * x + rng.normal(0, 0.005, 400)
    fit = theory.fit_slope(x, y)
    assert fit.slope == pytest.approx(0.35, abs=0.01) and fit.intercept == pytest.approx(0.1, abs=0.005)
    assert fit.r2 > 0.9 and fit(0.2) == pytest.approx(fit.intercept + 0.2 * fit.slope)


def test_fit_compounding_recovers_an_affine_and_a_geometric_curve():
    k = np.arange(1, 31)
    affine = theory.fit_compounding(0.2 + 0.05 * k)
    assert (affine.a, affine.b) == (pytest.approx(0.2), pytest.approx(0.05)) and affine.affine_misfit < 1e-9
    assert affine.verdict().startswith("affine")
    geometric = theory.fit_compounding(theory.geometric_compounding_error(0.03, 1.12, k))
    assert geometric.lipschitz == pytest.approx(1.12, abs=1e-3)
    assert geometric.eps == pytest.approx(0.03, rel=1e-2)
    assert geometric.geometric_misfit < 1e-3 < geometric.affine_misfit
    bumpy = theory.fit_compounding(0.1 + 0.05 * k + 0.3 * np.sin(k))
    assert bumpy.verdict().startswith("neither")


def test_policy_divergence_against_closed_forms():
    def phi(x):
        return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))

    g = torch.Generator().manual_seed(0)
    mean_p, mean_q = torch.tensor([[0.0], [0.0], [1.0]]), torch.tensor([[0.5], [2.0], [1.0]])
    log_std = torch.full((3, 1), math.log(0.7))
    kl, tv = theory.gaussian_policy_divergence(mean_p, log_std, mean_q, log_std, samples=200_000, generator=g)
    # equal variances in 1-D: TV = 2 Phi(|Δμ| / 2σ) - 1, KL = Δμ² / 2σ²
    delta = (mean_q - mean_p).abs()[:, 0].numpy()
    assert_close(tv, torch.tensor(2 * phi(delta / (2 * 0.7)) - 1, dtype=torch.float32), atol=5e-3, rtol=0)
    assert_close(kl, torch.tensor(delta ** 2 / (2 * 0.49), dtype=torch.float32))
    p = torch.distributions.Normal(torch.randn(5, 3, generator=g), torch.rand(5, 3, generator=g) + 0.2)
    q = torch.distributions.Normal(torch.randn(5, 3, generator=g), torch.rand(5, 3, generator=g) + 0.2)
    kl, tv = theory.gaussian_policy_divergence(p.loc, p.scale.log(), q.loc, q.scale.log(), generator=g)
    assert_close(kl, torch.distributions.kl_divergence(p, q).sum(-1))
    assert torch.all((tv >= 0) & (tv <= 1))


def test_k_step_rollouts_of_a_drifting_model():
    g = torch.Generator().manual_seed(0)
    act = torch.randn(8, 6, 2, generator=g)
    obs = torch.cat([torch.zeros(8, 1, 2), torch.cumsum(act, dim=1)], dim=1)
    measured = theory.k_step_rollouts(DriftModel([0.3, 0.4]), obs, act, show=2, samples=3)
    assert np.allclose(measured.errors, 0.5 * np.arange(1, 7)) and measured.k_max == 6
    assert measured.rollouts.shape == (3, 7, 2) and measured.mean_rollout.shape == (7, 2)
    drift = np.arange(7)[:, None] * [0.3, 0.4]
    assert np.allclose(measured.rollouts[1] - measured.true_states, drift, atol=1e-5)
    assert measured.fits.affine_misfit < 1e-6 and measured.windows == 8
    with pytest.raises(ValueError, match="show must index one of the 8 windows"):
        theory.k_step_rollouts(DriftModel([0.3, 0.4]), obs, act, show=8)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: theory.discounted_linear_error(0.1, 1.0), "gamma must be in"),
    (lambda: theory.discounted_linear_error(-0.1, 0.9), "eps must be >= 0"),
    (lambda: theory.theorem_4_2_terms(1, 0.9, 1.0, 0.1, -0.1), "eps_m must be >= 0"),
    (lambda: theory.relative_gap(1, 0.9, 0.1, 0.1, theorem="4.4"), "theorem must be '4.2' or '4.3'"),
    (lambda: theory.relative_gap(1, 0.0, 0.1, 0.1), "gamma must be in"),
    (lambda: theory.optimal_k_discrete(1.5, 0.1, 0.1), "gamma must be in"),
    (lambda: theory.model_error_under_new_policy(0.1, -1.0, 0.1), "slope must be >= 0"),
    (lambda: theory.fit_slope([1.0], [2.0]), "same length >= 2"),
    (lambda: theory.fit_slope([1.0, 1.0], [2.0, 3.0]), "two distinct values"),
    (lambda: theory.fit_compounding([0.1, 0.0, 0.2]), "positive finite"),
    (lambda: theory.gaussian_policy_divergence(torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2, 2),
                                               torch.zeros(2, 2)), r"must all be \[B, act_dim\]"),
])
def test_new_functions_refuse_bad_values_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()
