"""The diagnostics of notebook 06: model error monitoring (pure functions and the trainer's
``diag_*`` columns), predictions against real trajectories, real-vs-model data, learning curves
with bootstrap bands over seeds, and the critic's bias against real returns."""

import csv
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch.testing import assert_close  # noqa: E402

from mbpo_lib import (  # noqa: E402
    PUBLISHED_RESULTS,
    DynamicsModel,
    EnsembleConfig,
    ReplayBuffer,
    align_curves,
    compare_distributions,
    confidence_band,
    diagnostic_columns,
    disagreement_error_correlation,
    discounted_returns,
    episode_continues,
    learning_curves,
    model_error_report,
    one_step_errors,
    open_loop_prediction,
    plot_predictions,
    q_value_bias,
    real_windows,
    wasserstein_per_dim,
)
from mbpo_lib.config import MBPOConfig, preset  # noqa: E402
from mbpo_lib.mbpo import MBPO, METRIC_COLUMNS, _Epoch  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- stand-in models with a known truth ------------------------------------------------------

A = torch.tensor([[0.95, -0.10, 0.0], [0.10, 0.95, 0.05], [0.0, -0.05, 0.98]])
B = torch.tensor([[0.1, 0.0, -0.1]])


def true_step(obs, act):
    """The truth of these tests: s' = s A + a B, r = sum(s) - a^2."""
    return obs @ A + act @ B, obs.sum(-1) - act[:, 0] ** 2


def true_targets(obs, act):
    next_obs, rew = true_step(obs, act)
    return torch.cat([rew[:, None], next_obs - obs], dim=-1)


class BiasedModel:
    """Member e predicts the truth plus a constant ``bias[e]`` over ``[r, s' - s]``; elites fixed."""

    device = torch.device("cpu")

    def __init__(self, bias, elites):
        self.bias, self.elites = torch.as_tensor(bias, dtype=torch.float32), list(elites)

    def predict(self, obs, act):
        mean = true_targets(obs, act)[None] + self.bias[:, None]
        return mean, torch.zeros_like(mean)

    def step(self, obs, act, generator=None, deterministic=False):
        pick = torch.randint(len(self.elites), (obs.shape[0],), generator=generator)
        y = true_targets(obs, act) + self.bias[torch.as_tensor(self.elites)[pick]]
        return obs + y[:, 1:], y[:, 0], {}


def episodes(lengths, seed=0, act_dim=1):
    """Real-looking buffer rows of consecutive episodes of the given lengths under the truth."""
    g = torch.Generator().manual_seed(seed)
    rows = {"obs": [], "act": [], "rew": [], "next_obs": []}
    for length in lengths:
        s = torch.randn(1, 3, generator=g)
        for _ in range(length):
            a = torch.rand(1, act_dim, generator=g) * 2 - 1
            s_next, r = true_step(s, a)
            for key, value in zip(rows, (s, a, r, s_next), strict=True):
                rows[key].append(value)
            s = s_next
    return [torch.cat(v) for v in rows.values()]


# --- one-step error -----------------------------------------------------------------------

def test_a_dynamics_model_that_is_its_own_truth_has_zero_error_one_step_and_open_loop():
    model = DynamicsModel(3, 1, EnsembleConfig(ensemble_size=3, num_elites=2, hidden_dim=16), seed=0)
    with torch.no_grad():                           # every member the same network
        for layer in model.network.layers:
            layer.weight[:] = layer.weight[0].clone()
            layer.bias[:] = layer.bias[0].clone()
    model.fitted = True                             # its own truth: nothing to fit
    g = torch.Generator().manual_seed(1)
    states, act = [torch.randn(16, 3, generator=g)], torch.rand(16, 8, 1, generator=g) * 2 - 1
    rews = []
    for t in range(8):                              # 16 episodes of 8 steps that the model generates
        mean, _ = model.predict(states[-1], act[:, t])
        rews.append(mean[0, :, 0])
        states.append(states[-1] + mean[0, :, 1:])
    states, rew = torch.stack(states, dim=1), torch.stack(rews, dim=1)      # [16, 9, 3], [16, 8]
    rows = (states[:, :-1].reshape(-1, 3), act.reshape(-1, 1), rew.reshape(-1), states[:, 1:].reshape(-1, 3))
    errors = one_step_errors(model, *rows)
    assert errors.mse.shape == (4,)
    assert_close(errors.mse, torch.zeros(4), atol=1e-10, rtol=0)
    assert_close(errors.disagreement, torch.zeros(128), atol=1e-6, rtol=0)
    report = model_error_report(model, rows)        # rows episode after episode, as a buffer holds them
    assert report.windows == 16 * (8 - 5 + 1)
    assert report.one_step_mse.abs().max() < 1e-10
    assert_close(report.k_step_error, torch.zeros(5), atol=1e-5, rtol=0)


def test_one_step_error_per_dimension_matches_a_hand_computation():
    bias = torch.tensor([[0.1, 0.2, -0.3, 0.0], [5.0, 5.0, 5.0, 5.0], [-0.3, 0.0, 0.1, 0.4]])
    model = BiasedModel(bias, elites=[0, 2])        # member 1 is no elite and must not count
    obs, act, rew, next_obs = episodes([40, 30])
    errors = one_step_errors(model, obs, act, rew, next_obs)
    elite_bias = bias[[0, 2]]
    assert_close(errors.mse, (elite_bias ** 2).mean(0))
    assert errors.reward_mse == pytest.approx((0.1 ** 2 + 0.3 ** 2) / 2)
    assert_close(errors.state_mse, (elite_bias[:, 1:] ** 2).mean(0))
    assert errors.mean_mse == pytest.approx(float((elite_bias ** 2).mean()))
    assert_close(errors.row_error, elite_bias.mean(0).pow(2).mean().sqrt().expand(70))
    assert_close(errors.disagreement, ((elite_bias[0] - elite_bias[1]).abs() / 2).mean().expand(70))
    # Normalised by each target's variance over the rows (1 - R^2), by hand with numpy
    target = np.concatenate([rew.numpy()[:, None], (next_obs - obs).numpy()], axis=1)
    assert_close(errors.target_var, torch.from_numpy(target.var(axis=0)), rtol=1e-5, atol=0)
    assert_close(errors.normalized_mse, (elite_bias ** 2).mean(0) / torch.from_numpy(target.var(axis=0)),
                 rtol=1e-5, atol=0)
    # a target that never varies (a constant reward) has no variance to explain: NaN, not inf
    constant = one_step_errors(model, obs, act, torch.ones_like(rew), next_obs)
    assert math.isnan(float(constant.normalized_mse[0]))
    assert torch.isfinite(constant.normalized_mse[1:]).all()


def test_one_step_error_of_a_fitted_model_equals_a_loop_over_its_elites():
    obs, act, rew, next_obs = episodes([200] * 5, seed=3)
    model = DynamicsModel(3, 1, EnsembleConfig(ensemble_size=4, num_elites=3, hidden_dim=16, max_epochs=3),
                          seed=0)
    model.fit(obs, act, rew, next_obs)
    errors = one_step_errors(model, obs[:100], act[:100], rew[:100], next_obs[:100])
    target = torch.cat([rew[:100, None], next_obs[:100] - obs[:100]], dim=-1)
    mean, _ = model.predict(obs[:100], act[:100])
    by_hand = torch.stack([((mean[e] - target) ** 2).mean(0) for e in model.elites]).mean(0)
    assert_close(errors.mse, by_hand)
    assert errors.mse.mean() > 0


# --- disagreement against error ----------------------------------------------------------------

def test_disagreement_error_correlation_on_constructed_data():
    g = torch.Generator().manual_seed(0)
    u = torch.rand(2000, generator=g)
    assert disagreement_error_correlation(u, u ** 3 + 2) == pytest.approx(1.0)     # ranks, not values
    assert disagreement_error_correlation(u, -u) == pytest.approx(-1.0)
    assert abs(disagreement_error_correlation(u, torch.rand(2000, generator=g))) < 0.1
    noisy = u + 0.3 * torch.rand(2000, generator=g)                               # related, not equal
    assert 0.6 < disagreement_error_correlation(u, noisy) < 0.99
    # ties share their average rank: Pearson of the ranks [1.5, 1.5, 3, 4] and [1, 2, 3, 4]
    expected = np.corrcoef([1.5, 1.5, 3, 4], [1, 2, 3, 4])[0, 1]
    assert disagreement_error_correlation(torch.tensor([0.0, 0.0, 1.0, 2.0]),
                                          torch.tensor([1.0, 2.0, 3.0, 4.0])) == pytest.approx(expected)
    assert math.isnan(disagreement_error_correlation(torch.ones(10), u[:10]))      # nothing to rank
    assert math.isnan(disagreement_error_correlation(u[:2], u[:2]))
    with pytest.raises(ValueError, match="one value per row each, got 5 and 4"):
        disagreement_error_correlation(u[:5], u[:4])


class SpreadModel(BiasedModel):
    """Two elites that err by +/- c*|s_0| per output: disagreement and error both grow with |s_0|."""

    def __init__(self):
        super().__init__(torch.zeros(2, 4), elites=[0, 1])

    def predict(self, obs, act):
        y = true_targets(obs, act)
        spread = 0.5 * obs[:, :1].abs()
        return torch.stack([y + 2 * spread, y - spread]), torch.zeros(2, *y.shape)


def test_a_model_whose_spread_tracks_its_error_has_a_high_correlation():
    obs, act, rew, next_obs = episodes([300], seed=4)
    errors = one_step_errors(SpreadModel(), obs, act, rew, next_obs)
    assert disagreement_error_correlation(errors.disagreement, errors.row_error) == pytest.approx(1.0)
    constant = one_step_errors(BiasedModel(torch.randn(3, 4), [0, 1, 2]), obs, act, rew, next_obs)
    assert math.isnan(disagreement_error_correlation(constant.disagreement, constant.row_error))


# --- windows inside episodes and the report ------------------------------------------------------

def test_windows_never_cross_an_episode_boundary():
    lengths = [7, 2, 5, 10]
    obs, act, rew, next_obs = episodes(lengths)
    link = episode_continues(obs, next_obs)
    starts = np.cumsum([0, *lengths])[1:-1]
    assert (~link).nonzero().flatten().tolist() == [s - 1 for s in starts]   # breaks before each start
    w_obs, w_act = real_windows(obs, act, next_obs, k_max=3)
    assert w_obs.shape == (5 + 0 + 3 + 8, 4, 3) and w_act.shape == (16, 3, 1)      # L - k + 1 per episode
    for window, actions in zip(w_obs, w_act, strict=True):                      # each step is the truth
        for t in range(3):
            assert_close(true_step(window[t:t + 1], actions[t:t + 1])[0][0], window[t + 1])
    # a terminated row ends its episode even if the next row's state happened to match:
    # the windows starting at rows 1 and 2 would run past row 2
    terminated = torch.zeros(obs.shape[0])
    terminated[2] = 1.0
    assert real_windows(obs, act, next_obs, 3, terminated)[0].shape[0] == 16 - 2
    few, _ = real_windows(obs, act, next_obs, 3, max_windows=4)
    assert few.shape[0] == 4 and torch.equal(few[0], w_obs[0]) and torch.equal(few[-1], w_obs[-1])
    assert real_windows(obs[:2], act[:2], next_obs[:2], 3)[0].shape == (0, 4, 3)
    with pytest.raises(ValueError, match="k_max must be an int >= 1, got 0"):
        real_windows(obs, act, next_obs, 0)


def test_model_error_report_is_zero_for_the_truth_and_grows_with_a_bias():
    obs, act, rew, next_obs = episodes([30, 30, 30], seed=2)
    batch = (obs, act, rew, next_obs, torch.zeros(90))
    exact = model_error_report(BiasedModel(torch.zeros(2, 4), [0, 1]), batch)
    assert exact.rows == 90 and exact.windows == 3 * (30 - 5 + 1)
    assert torch.equal(exact.one_step_mse, torch.zeros(4))
    assert_close(exact.k_step_error, torch.zeros(5), atol=1e-5, rtol=0)
    biased = model_error_report(BiasedModel(torch.full((2, 4), 0.05), [0, 1]), batch)
    assert torch.all(biased.k_step_error[1:] > biased.k_step_error[:-1])           # compounding
    assert biased.k_step_error[0] == pytest.approx(0.05 * math.sqrt(3), rel=1e-4)
    metrics = biased.metrics()
    assert tuple(metrics) == diagnostic_columns(3)
    assert metrics["diag_one_step_mse_s2"] == pytest.approx(0.0025)
    nmse = one_step_errors(BiasedModel(torch.full((2, 4), 0.05), [0, 1]), obs, act, rew,
                           next_obs).normalized_mse
    assert metrics["diag_one_step_nmse_s2"] == pytest.approx(float(nmse[3]))
    assert metrics["diag_one_step_nmse"] == pytest.approx(float(nmse.mean()))
    assert exact.metrics()["diag_one_step_nmse"] == 0.0
    assert metrics["diag_k_step_error_k1"] == pytest.approx(float(biased.k_step_error[0]))
    short = model_error_report(BiasedModel(torch.zeros(2, 4), [0, 1]), batch, max_rows=4)
    assert short.rows == 4 and short.windows == 0 and torch.isnan(short.k_step_error).all()


def test_the_monitoring_uses_its_own_generator():
    obs, act, rew, next_obs = episodes([40, 40], seed=5)
    model = BiasedModel(torch.randn(3, 4), [0, 1, 2])
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = model_error_report(model, (obs, act, rew, next_obs), seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)                 # the global stream untouched
    b = model_error_report(model, (obs, act, rew, next_obs), seed=7)
    assert torch.equal(a.k_step_error, b.k_step_error)
    c = model_error_report(model, (obs, act, rew, next_obs), seed=8)
    assert not torch.equal(a.k_step_error, c.k_step_error)                   # elite draws differ


def test_latest_reads_the_newest_rows_also_after_the_buffer_wraps():
    buffer = ReplayBuffer(5, 1, 1)
    for i in range(8):
        buffer.add([float(i)], [0.0], float(i), [i + 1.0], False)
    assert buffer.latest(3).rew.tolist() == [5.0, 6.0, 7.0]
    assert buffer.latest(100).rew.tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert episode_continues(buffer.latest(5).obs, buffer.latest(5).next_obs).all()


# --- the trainer logs the monitoring ---------------------------------------------------------

ENV = "InvertedPendulum-v5"
TIMING = {c for c in METRIC_COLUMNS if c.startswith("seconds_")}


def smoke(**overrides):
    return preset(ENV).smoke().with_overrides(**{"total_steps": 300, "checkpoint_every": 0, **overrides})


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("monitored")
    trainer = MBPO(smoke(), run_dir=run_dir)
    trainer.train(progress=False)
    return trainer, run_dir


def test_the_smoke_run_logs_finite_diagnostics_for_every_epoch(monitored):
    trainer, run_dir = monitored
    columns = diagnostic_columns(trainer.obs_dim)
    assert trainer.metric_columns == (*METRIC_COLUMNS, *columns) and "seconds_monitor" in METRIC_COLUMNS
    assert len(trainer.history) == 2
    for row in trainer.history:
        assert all(math.isfinite(row[c]) for c in columns), {c: row[c] for c in columns}
        assert row["diag_rows"] == trainer.config.model_train_freq            # the steps since the last fit
        assert row["diag_windows"] > 0 and row["diag_one_step_mse"] > 0 and row["diag_one_step_nmse"] > 0
        assert 0 <= row["seconds_monitor"] < row["seconds_total"]
    with open(run_dir / "metrics.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(trainer.metric_columns)
    last = trainer.history[-1]["diag_k_step_error_k5"]
    assert float(table[-1]["diag_k_step_error_k5"]) == pytest.approx(last)


def test_turning_the_monitoring_off_changes_no_other_number(monitored):
    trainer, _ = monitored
    quiet = MBPO(smoke(monitor_model=False))
    quiet.train(progress=False)
    columns = set(diagnostic_columns(trainer.obs_dim))
    for on, off in zip(trainer.history, quiet.history, strict=True):
        assert all(math.isnan(off[c]) for c in columns)
        assert {k: v for k, v in on.items() if k not in columns | TIMING} == \
            {k: v for k, v in off.items() if k not in columns | TIMING}
    for a, b in zip(trainer.model.network.parameters(), quiet.model.network.parameters(), strict=True):
        assert torch.equal(a, b)


def test_plain_sac_logs_nan_diagnostics():
    trainer = MBPO(smoke(real_ratio=1.0, updates_per_step=1, total_steps=200))
    row = trainer.train(progress=False)[-1]
    assert all(math.isnan(row[c]) for c in diagnostic_columns(trainer.obs_dim))


def test_monitor_model_is_a_validated_config_field_and_old_configs_read_as_on():
    config = smoke(monitor_model=False)
    assert MBPOConfig.from_dict(config.to_dict()) == config
    old = {k: v for k, v in config.to_dict().items() if k != "monitor_model"}
    assert MBPOConfig.from_dict(old).monitor_model is True
    with pytest.raises(ValueError, match="monitor_model must be True or False, got 1"):
        smoke(monitor_model=1)


def test_an_epoch_saved_before_the_monitor_phase_existed_still_loads():
    epoch = _Epoch()
    epoch.load_state_dict({"seconds": {"env": 1.0, "model": 0.0, "rollout": 0.0, "sac": 0.0, "eval": 0.0}})
    assert epoch.seconds["monitor"] == 0.0 and epoch.seconds["env"] == 1.0


# --- predictions against the real trajectory ------------------------------------------------------

def test_open_loop_prediction_follows_the_truth_and_drifts_with_a_bias():
    obs, act, rew, next_obs = episodes([12], seed=6)
    trajectory = (torch.cat([obs, next_obs[-1:]]), act)
    exact = open_loop_prediction(BiasedModel(torch.zeros(2, 4), [0, 1]), trajectory, samples=3)
    assert_close(exact.mean, trajectory[0], atol=1e-5, rtol=0)
    assert exact.samples.shape == (3, 13, 3)
    biased = open_loop_prediction(BiasedModel(torch.full((2, 4), 0.1), [0, 1]), trajectory)
    gap = (biased.mean - trajectory[0]).norm(dim=-1)
    assert gap[0] == 0 and torch.all(gap[2:] > gap[1:-1] * 0.99) and gap[-1] > gap[1]
    from_batch = open_loop_prediction(BiasedModel(torch.zeros(2, 4), [0, 1]), _batch(obs, act, rew, next_obs))
    assert torch.equal(from_batch.real, exact.real)


def _batch(obs, act, rew, next_obs):
    buffer = ReplayBuffer(obs.shape[0], 3, 1)
    buffer.add_batch(obs, act, rew, next_obs, torch.zeros(obs.shape[0]))
    return buffer.latest(obs.shape[0])


def test_plot_predictions_draws_one_panel_per_dimension_and_refuses_two_episodes():
    obs, act, rew, next_obs = episodes([15], seed=7)
    model = DynamicsModel(3, 1, EnsembleConfig(ensemble_size=3, num_elites=2, hidden_dim=16, max_epochs=2),
                          seed=0)
    model.fit(obs, act, rew, next_obs)
    fig = plot_predictions(model, (torch.cat([obs, next_obs[-1:]]), act), samples=5)
    assert isinstance(fig, Figure) and len([ax for ax in fig.axes if ax.get_visible()]) == 3
    fig = plot_predictions(model, _batch(obs, act, rew, next_obs), dims=[2], samples=0)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    two = _batch(*episodes([5, 5], seed=8))
    with pytest.raises(ValueError, match="row 5 does not continue row 4"):
        plot_predictions(model, two)
    with pytest.raises(ValueError, match=r"dims must be a non-empty list of state dimensions in \[0, 2\]"):
        plot_predictions(model, (torch.cat([obs, next_obs[-1:]]), act), dims=[3])



def test_plot_predictions_clips_each_panel_to_the_real_range_and_insets_the_first_steps():
    obs, act, rew, next_obs = episodes([40], seed=9)
    model = DynamicsModel(3, 1, EnsembleConfig(ensemble_size=3, num_elites=2, hidden_dim=16, max_epochs=2),
                          seed=0)
    model.fit(obs, act, rew, next_obs)
    trajectory = (torch.cat([obs, next_obs[-1:]]), act)
    real = trajectory[0].numpy()
    fig = plot_predictions(model, trajectory, samples=3, inset=10)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(panels) == 3
    for j, ax in enumerate(panels):
        lo, hi = ax.get_ylim()
        span = real[:, j].max() - real[:, j].min()
        assert np.isclose(lo, real[:, j].min() - 0.25 * span)
        assert np.isclose(hi, real[:, j].max() + 0.25 * span)
        (sub,) = ax.child_axes                                   # the inset: the first 10 steps
        assert max(line.get_xdata().max() for line in sub.get_lines()) == 10
    unclipped = plot_predictions(model, trajectory, samples=0, clip=False, inset=0)
    assert all(not ax.child_axes for ax in unclipped.axes)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="inset must be an int >= 0"):
            plot_predictions(model, trajectory, inset=bad)

# --- real against model data -------------------------------------------------------------------

def test_wasserstein_per_dim_by_hand():
    assert_close(wasserstein_per_dim(torch.tensor([[0.0], [1.0]]), torch.tensor([[0.5]])),
                 torch.tensor([0.5], dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 2, generator=g), torch.randn(300, 2, generator=g)
    sorted_gap = (torch.sort(x, 0)[0] - torch.sort(y, 0)[0]).abs().mean(0).double()   # equal sizes
    assert_close(wasserstein_per_dim(x, y), sorted_gap)
    assert_close(wasserstein_per_dim(x, x + torch.tensor([0.7, -2.0])),
                 torch.tensor([0.7, 2.0], dtype=torch.float64))


def test_compare_distributions_flags_a_shift_and_not_an_equal_distribution():
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([1.0, 10.0, 0.1, 3.0])
    real = torch.randn(20_000, 4, generator=g) * scale
    same = compare_distributions(real, torch.randn(20_000, 4, generator=g) * scale)
    assert not same.shifted and same.shift < 0.05 and same.shifted_dims == []
    moved = real[:10_000] + 0.5 * scale * torch.tensor([1.0, 1.0, 1.0, 0.0])
    shifted = compare_distributions(real, moved)
    assert shifted.shifted and shifted.shift == pytest.approx(0.375, abs=0.03)
    assert sorted(shifted.shifted_dims) == [0, 1, 2]
    assert shifted.standardized_mean_difference[:3] == pytest.approx([0.5] * 3, abs=0.03)
    # a model that collapses the spread keeps the mean (standardized difference ~0) but not W1
    collapsed = compare_distributions(real, 0.2 * torch.randn(20_000, 4, generator=g) * scale)
    assert np.abs(collapsed.standardized_mean_difference).max() < 0.05 and collapsed.shifted
    assert "shifted" in str(shifted) and isinstance(shifted.plot(), Figure)


def test_compare_distributions_reads_replay_buffers():
    g = torch.Generator().manual_seed(1)
    real, model = ReplayBuffer(3000, 2, 1), ReplayBuffer(500, 2, 1, dtype=torch.bfloat16)
    real.add_batch(torch.zeros(3000, 2), torch.zeros(3000, 1), torch.zeros(3000),
                   torch.randn(3000, 2, generator=g), torch.zeros(3000))
    model.add_batch(torch.zeros(500, 2), torch.zeros(500, 1), torch.zeros(500),
                    torch.randn(500, 2, generator=g) + 2.0, torch.zeros(500))
    result = compare_distributions(real, model, max_rows=1000)
    assert result.real_samples.shape == (1000, 2) and result.model_samples.shape == (500, 2)
    assert result.shifted and result.model_mean == pytest.approx([2.0, 2.0], abs=0.15)
    assert compare_distributions(real, model, max_rows=1000).shift == result.shift     # seeded draw
    with pytest.raises(ValueError, match="model buffer is empty"):
        compare_distributions(real, ReplayBuffer(10, 2, 1))
    with pytest.raises(ValueError, match="states must be 'obs' or 'next_obs', got 'act'"):
        compare_distributions(real, model, states="act")


# --- learning curves ---------------------------------------------------------------------------

def test_the_band_equals_the_mean_when_all_seeds_agree():
    curve = np.array([0.0, 100.0, 250.5, 1000.0])
    band = confidence_band(np.tile(curve, (6, 1)))
    assert np.array_equal(band.low, curve) and np.array_equal(band.high, curve)
    assert band.seeds == 6 and band.resamples == 2000
    one = confidence_band(curve[None] + 1.0)
    assert np.array_equal(one.low, one.high)


def test_the_band_covers_the_true_mean_at_about_its_rate_and_shrinks_with_more_seeds():
    rng = np.random.default_rng(0)
    truth = np.linspace(0.0, 3000.0, 2000)       # 2000 steps with independent noise: 2000 trials
    coverage, width = {}, {}
    for seeds in (5, 20):
        band = confidence_band(truth + 100.0 * rng.standard_normal((seeds, truth.size)), seed=1)
        coverage[seeds] = np.mean((band.low <= truth) & (truth <= band.high))
        width[seeds] = np.mean(band.high - band.low)
    assert 0.89 <= coverage[20] <= 0.965        # percentile bootstrap: ~93 % at 20 seeds
    assert 0.78 <= coverage[5] <= 0.89          # ~85 % at 5 (the docstring's warning)
    assert 0.45 < width[20] / width[5] < 0.7     # ~ sqrt(5 / 20), the standard error's rate
    again = confidence_band(truth + 100.0 * np.random.default_rng(0).standard_normal((5, truth.size)), seed=1)
    first = confidence_band(truth + 100.0 * np.random.default_rng(0).standard_normal((5, truth.size)), seed=1)
    assert np.array_equal(again.low, first.low)                                  # seeded resampling


def test_bad_curves_are_refused_by_name():
    with pytest.raises(ValueError, match="NaN or inf"):
        confidence_band([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="confidence must be a float in"):
        confidence_band([[1.0]], confidence=95)
    with pytest.raises(ValueError, match="resamples must be an int >= 1, got 0"):
        confidence_band([[1.0]], resamples=0)


def test_align_curves_drops_missing_evaluations_and_keeps_the_shared_range():
    runs = [([0, 100, 200, 300], [0.0, float("nan"), 20.0, 30.0]),
            ([100, 200, 300, 400], [5.0, 15.0, 35.0, 40.0])]
    steps, curves = align_curves(runs)
    assert steps.tolist() == [100, 200, 300]
    assert curves.tolist() == [[10.0, 20.0, 30.0], [5.0, 15.0, 35.0]]       # 10 interpolated at 100
    with pytest.raises(ValueError, match="share no step range"):
        align_curves([([0, 1], [0, 1]), ([5, 6], [0, 1])])
    with pytest.raises(ValueError, match="run 1 has 2 steps and 3 returns"):
        align_curves([([0, 1], [0, 1]), ([0, 1], [0, 1, 2])])


def test_learning_curves_plot_the_band_and_the_papers_points():
    assert PUBLISHED_RESULTS["Hopper-v5"]["MBPO"] == ((75_000, 3000.0), (125_000, 3350.0))
    assert PUBLISHED_RESULTS["InvertedPendulum-v5"]["MBPO"][0] == (3_000, 1000.0)
    rng = np.random.default_rng(0)
    steps = np.arange(1, 126) * 1000
    runs = {"MBPO": [(steps, 3000 * (1 - np.exp(-steps / 40_000)) + rng.normal(0, 100, steps.size))
                     for _ in range(4)],
            "SAC": [(steps, 1500 * steps / 125_000 + rng.normal(0, 100, steps.size)) for _ in range(3)]}
    fig = learning_curves(runs, reference="Hopper-v5")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "MBPO: mean of 4 seeds" in labels and "SAC: 95% bootstrap band" in labels
    assert {f"{name}, paper: read off its plots, ±10 %" for name in ("MBPO", "SAC")} <= set(labels)
    single = learning_curves(runs["SAC"][:1])
    assert "MBPO (ours): mean of 1 seeds" in single.axes[0].get_legend_handles_labels()[1]
    with pytest.raises(ValueError, match="no published results for 'Pong'"):
        learning_curves(runs, reference="Pong")


# --- the critic against real returns ---------------------------------------------------------------


def test_discounted_returns_by_hand():
    assert discounted_returns([1.0, 2.0, 3.0], 0.5).tolist() == [2.75, 3.5, 3.0]   # 1 + 0.5 * 2 + 0.25 * 3
    assert discounted_returns(torch.tensor([1.0, 1.0, 1.0]), 1.0).tolist() == [3.0, 2.0, 1.0]
    assert discounted_returns(np.array([5.0]), 0.0).tolist() == [5.0]
    assert discounted_returns([], 0.9).shape == (0,)
    with pytest.raises(ValueError, match=r"gamma must be a number in \[0, 1\], got 1.5"):
        discounted_returns([1.0], 1.5)
    with pytest.raises(ValueError, match=r"rewards must be one episode's \[T\] rewards"):
        discounted_returns([[1.0, 2.0]], 0.9)


class KnownCritic:
    """A stand-in agent whose Q is known: obs[:, 0] carries the true return G of its state, the
    first critic says G + offset and the second G + 10 (so the min takes the first)."""

    def __init__(self, offset, gamma=0.9, reward_scale=1.0):
        from types import SimpleNamespace

        self.offset, self.device = offset, torch.device("cpu")
        self.config = SimpleNamespace(gamma=gamma, reward_scale=reward_scale)

    def critic(self, obs, act):
        return torch.stack([obs[:, 0] + self.offset, obs[:, 0] + 10.0])

    critic_target = critic


def known_episode(rewards, gamma, terminated, g_of_obs=None):
    """An EvalEpisode-like record whose observations carry G (from ``g_of_obs`` or the rewards)."""
    from mbpo_lib import EvalEpisode

    rewards = np.asarray(rewards, dtype=np.float64)
    g = discounted_returns(rewards, gamma) if g_of_obs is None else g_of_obs
    obs = np.stack([np.append(g, 0.0), np.zeros(len(rewards) + 1)], axis=1)
    return EvalEpisode(obs, np.zeros((len(rewards), 1)), rewards, terminated, not terminated,
                       float(rewards.sum()))


def test_q_value_bias_is_the_known_offset_and_uses_the_min_of_the_twin_critics():
    gamma = 0.9
    episodes = [known_episode(np.linspace(1, 2, 12), gamma, True), known_episode(np.ones(5), gamma, True)]
    result = q_value_bias(KnownCritic(3.0, gamma), episodes)                 # gamma from agent.config
    g = np.concatenate([discounted_returns(e.rewards, gamma) for e in episodes])
    assert result.states == 17                                                # terminated: every state
    assert result.bias == pytest.approx(3.0) and result.mc_return == pytest.approx(g.mean())
    assert result.q_mean == pytest.approx(g.mean() + 3.0)
    assert result.bias_normalized == pytest.approx(3.0 / abs(g.mean()))
    assert q_value_bias(KnownCritic(-2.0, gamma), episodes, target=True).bias == pytest.approx(-2.0)
    # the reward scale of the agent's target multiplies the rewards
    doubled = q_value_bias(KnownCritic(0.0, gamma, reward_scale=2.0), episodes)
    assert doubled.mc_return == pytest.approx(2 * g.mean()) and doubled.bias == pytest.approx(-g.mean())


def test_a_truncated_episode_keeps_only_the_states_whose_missing_tail_is_small():
    gamma, T = 0.9, 30
    rewards = np.ones(T)
    # the observation carries the true infinite-horizon value 1 / (1 - gamma) = 10
    episode = known_episode(rewards, gamma, False, g_of_obs=np.full(T, 10.0))
    result = q_value_bias(KnownCritic(0.0, gamma), [episode], tail=0.1)
    # 0.9^(T - t) <= 0.1 for T - t >= 22 (0.9^22 = 0.098): t = 0..8
    kept = discounted_returns(rewards, gamma)[:9]
    assert result.states == 9 and result.mc_return == pytest.approx(kept.mean())
    assert 0 < result.bias <= 0.1 * 10                                        # only the cut tail is missing
    assert q_value_bias(KnownCritic(0.0, gamma), [episode], tail=0.0).states == 0
    long = known_episode(np.ones(1000), 0.99, False)
    assert q_value_bias(KnownCritic(0.0, 0.99), [long]).states == 1000 - 458  # gamma 0.99, tail 0.01
    empty = q_value_bias(KnownCritic(0.0, gamma), [episode], tail=0.0)
    assert empty.states == 0 and all(math.isnan(v) for v in empty[:4])


def test_q_value_bias_with_a_zero_mean_return_and_bad_arguments():
    negative = known_episode([1.0, -1.0, 0.0], 1.0, True)                    # G = 0, -1, 0: mean -1/3
    result = q_value_bias(KnownCritic(1.0, 1.0), [negative])
    assert result.bias == pytest.approx(1.0) and result.bias_normalized == pytest.approx(3.0)   # / |mean G|
    flat = known_episode([0.0, 0.0], 0.9, True)
    assert math.isnan(q_value_bias(KnownCritic(1.0), [flat]).bias_normalized)  # mean G = 0: NaN
    with pytest.raises(ValueError, match=r"tail must be a number in \[0, 1\]"):
        q_value_bias(KnownCritic(1.0), [flat], tail=2)
    with pytest.raises(TypeError, match=r"agent must have critic\(obs, act\)"):
        q_value_bias(object(), [flat], gamma=0.9)
    with pytest.raises(ValueError, match="the agent has no config.gamma; give gamma"):
        q_value_bias(object(), [flat])
    broken = flat._replace(actions=np.zeros((5, 1)))
    with pytest.raises(ValueError, match=r"episode 0: observations must be \[T \+ 1 or T, obs_dim\]"):
        q_value_bias(KnownCritic(1.0), [broken])


def test_q_value_bias_of_a_sac_on_evaluation_episodes():
    from mbpo_lib import SAC, SACConfig, evaluate_episodes

    agent = SAC(4, 1, SACConfig(hidden_sizes=(16, 16)), seed=0)
    episodes = evaluate_episodes(agent, "InvertedPendulum-v5", episodes=2, seed=3)
    result = q_value_bias(agent, episodes)
    states = sum(e.length for e in episodes)                                  # all terminated
    obs = torch.as_tensor(np.concatenate([e.observations[:-1] for e in episodes]), dtype=torch.float32)
    act = torch.as_tensor(np.concatenate([e.actions for e in episodes]), dtype=torch.float32)
    with torch.no_grad():
        q = agent.critic(obs, act).amin(0).double()
    assert result.states == states and result.q_mean == pytest.approx(q.mean().item(), rel=1e-6)
    assert result.bias == pytest.approx(result.q_mean - result.mc_return, rel=1e-9, abs=1e-12)
