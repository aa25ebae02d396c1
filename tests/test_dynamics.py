"""DynamicsModel: holdout, bootstrap, early stopping, elites, warm start, step."""

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from mbpo_lib.config import EnsembleConfig
from mbpo_lib.dynamics import DynamicsModel, improved_members, make_optimizer
from mbpo_lib.models import GaussianEnsemble

OBS, ACT = 4, 2


def linear_system(n: int, seed: int = 0):
    """s' = s + 0.1 (A s + B a) + small noise, r = w.s - 0.1 |a|^2: a known, learnable system."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(OBS, OBS, generator=g) * 0.5
    B = torch.randn(ACT, OBS, generator=g)
    obs = torch.randn(n, OBS, generator=g)
    act = torch.rand(n, ACT, generator=g) * 2 - 1
    next_obs = obs + 0.1 * (obs @ A + act @ B) + 0.01 * torch.randn(n, OBS, generator=g)
    rew = obs @ torch.randn(OBS, generator=g) - 0.1 * (act ** 2).sum(-1)
    return obs, act, rew, next_obs


def small(**overrides) -> EnsembleConfig:
    settings = {"hidden_dim": 32, "max_epochs": 30, "batch_size": 64} | overrides
    return EnsembleConfig(**settings)


@pytest.fixture(scope="module")
def fitted():
    model = DynamicsModel(OBS, ACT, small(max_epochs=60), seed=0)
    data = linear_system(1500)
    report = model.fit(*data)
    return model, report, data


def test_fit_learns_the_system_and_reports_it(fitted):
    model, report, (obs, act, rew, next_obs) = fitted
    assert report.n_holdout == 300 and report.n_train == 1200  # 20 % of 1500
    assert report.epochs == len(report.train_loss) == len(report.holdout_mse) <= 60
    assert all(len(row) == 7 for row in report.holdout_mse)
    assert report.holdout_mse[-1][0] < report.holdout_mse[0][0] / 5
    assert report.elite_holdout_mse < 0.05 * ((next_obs - obs).var() + rew.var())
    assert report.seconds > 0


def test_elites_are_the_lowest_holdout_members(fitted):
    model, report, _ = fitted
    ranked = sorted(range(7), key=lambda i: report.final_holdout_mse[i])
    assert report.elites == model.elites == ranked[:5]


def test_each_member_ends_with_its_own_best_weights(fitted):
    _, report, _ = fitted
    for member, epoch in enumerate(report.best_epoch):
        assert report.final_holdout_mse[member] == pytest.approx(report.holdout_mse[epoch][member], rel=1e-5)
    assert len(set(report.best_epoch)) > 1 or report.epochs == 1


def test_bootstraps_differ_so_members_differ(fitted):
    model, _, (obs, act, _, _) = fitted
    mean, _ = model.predict(obs[:200], act[:200])
    spread = mean.std(dim=0).mean()
    assert spread > 1e-4  # members saw different data (and started from different weights)


def test_holdout_is_capped_at_5000_rows():
    model = DynamicsModel(OBS, ACT, small(max_epochs=1, batch_size=1024), seed=0)
    report = model.fit(*linear_system(30_000))
    assert report.n_holdout == 5000 and report.n_train == 25_000


def test_improvement_rule_needs_more_than_one_percent():
    best = torch.tensor([1.0, 1.0, 1.0, 1e10])
    current = torch.tensor([0.995, 0.989, 1.2, 3.0])
    assert improved_members(best, current, 0.01).tolist() == [False, True, False, True]


def test_optimizer_applies_the_papers_weight_decay():
    """The fit's Adam, fed the loss without the decay term, moves the weights as plain Adam on the
    full loss (members + bound penalty + weight decay) does."""
    DECAYS = (1e-1, 2e-1, 3e-1, 4e-1, 5e-1)  # large, so a missing or misplaced decay shows
    def network():
        return GaussianEnsemble(5, 3, ensemble_size=3, hidden_dim=16, weight_decays=DECAYS,
                                generator=torch.Generator().manual_seed(0)).double()
    ours, reference = network(), network()
    optimizer = make_optimizer(ours, lr=1e-2)
    plain = torch.optim.Adam(reference.parameters(), lr=1e-2, foreach=False)
    groups = optimizer.param_groups
    assert sorted(id(p) for g in groups for p in g["params"]) == sorted(id(p) for p in ours.parameters())
    assert [g["weight_decay"] for g in groups] == [*DECAYS, 0.0]
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.randn(3, 8, 5, generator=g, dtype=torch.float64)
        y = torch.randn(3, 8, 3, generator=g, dtype=torch.float64)
        mean, logvar = ours(x)
        loss = ours.member_losses(mean, logvar, y).sum() + ours.bound_penalty()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        plain.zero_grad()
        reference.loss(x, y).backward()
        plain.step()
    for p, q in zip(ours.parameters(), reference.parameters(), strict=True):
        assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_training_stops_after_patience_epochs_without_improvement():
    # lr so small nothing changes: epoch 0 improves on the 1e10 start, then 6 epochs without
    config = small(lr=1e-12, max_epochs=None, patience=5)
    report = DynamicsModel(OBS, ACT, config, seed=0).fit(*linear_system(500))
    assert report.epochs == 1 + 5 + 1
    assert report.best_epoch == [0] * 7
    assert report.stopped_early


def test_max_epochs_caps_a_fit():
    report = DynamicsModel(OBS, ACT, small(max_epochs=3), seed=0).fit(*linear_system(500))
    assert report.epochs == 3
    assert not report.stopped_early


def test_fits_are_warm_started():
    model = DynamicsModel(OBS, ACT, small(max_epochs=8), seed=0)
    data = linear_system(1000)
    first = model.fit(*data)
    second = model.fit(*data)
    assert second.holdout_mse[0][0] < first.holdout_mse[0][0] / 5


def test_fit_reads_a_transition_source():
    data = linear_system(600)

    class Buffer:
        def transitions(self):
            return (*data, torch.zeros(600, dtype=torch.bool))

    direct = DynamicsModel(OBS, ACT, small(max_epochs=2), seed=3).fit(*data)
    via_buffer = DynamicsModel(OBS, ACT, small(max_epochs=2), seed=3).fit(Buffer())
    assert direct.holdout_mse == via_buffer.holdout_mse


def test_same_seed_same_fit_on_the_cpu():
    data = linear_system(600)
    a = DynamicsModel(OBS, ACT, small(max_epochs=3), seed=1)
    b = DynamicsModel(OBS, ACT, small(max_epochs=3), seed=1)
    assert a.fit(*data).holdout_mse == b.fit(*data).holdout_mse
    for pa, pb in zip(a.network.parameters(), b.network.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_step_samples_one_elite_per_row(fitted):
    model, _, (obs, act, _, next_obs) = fitted
    g = torch.Generator().manual_seed(0)
    s2, r, info = model.step(obs, act, generator=g)
    assert s2.shape == (1500, OBS) and r.shape == (1500,)
    used = info["member"]
    assert set(used.tolist()) == set(model.elites)
    counts = torch.bincount(used, minlength=7)[model.elites].float()
    assert counts.min() > 0.8 * 1500 / 5  # uniform over the elites
    mean, logvar = model.predict(obs, act)
    rows = torch.arange(1500)
    chosen_mean, chosen_std = mean[used, rows], torch.exp(0.5 * logvar[used, rows])
    z = (torch.cat([r[:, None], s2 - obs], -1) - chosen_mean) / chosen_std  # the noise drawn
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.05


def test_deterministic_step_is_the_chosen_elites_mean(fitted):
    model, _, (obs, act, _, _) = fitted
    s2, r, info = model.step(obs, act, generator=torch.Generator().manual_seed(0), deterministic=True)
    mean, _ = model.predict(obs, act)
    rows = torch.arange(obs.shape[0])
    assert_close(s2, obs + mean[info["member"], rows, 1:])
    assert_close(r, mean[info["member"], rows, 0])


def test_step_is_repeatable_and_the_grouped_path_equals_running_all_elites(fitted):
    model, _, (obs, act, _, _) = fitted
    first = model.step(obs, act, generator=torch.Generator().manual_seed(5))
    again = model.step(obs, act, generator=torch.Generator().manual_seed(5))
    full = model.step(obs, act, generator=torch.Generator().manual_seed(5), disagreement=True)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert_close(first[0], full[0])
    assert_close(first[1], full[1])
    mean, _ = model.predict(obs, act)
    expected = mean[model.elites].std(dim=0, unbiased=False).mean(dim=-1)
    assert_close(full[2]["disagreement"], expected)


def test_step_handles_100k_rows_in_one_call():
    model = DynamicsModel(OBS, ACT, small(), seed=0)
    obs, act = torch.randn(100_000, OBS), torch.rand(100_000, ACT)
    with pytest.raises(ValueError, match="has not been fitted"):
        model.step(obs, act)
    model.normalizer.fit(torch.cat([obs, act], -1))
    model.fitted = True     # random weights are enough for shapes and finiteness
    s2, r, info = model.step(obs, act, generator=torch.Generator().manual_seed(0))
    assert s2.shape == (100_000, OBS) and torch.isfinite(s2).all() and torch.isfinite(r).all()


@pytest.mark.parametrize(("config", "message"), [
    (dict(num_elites=8), "num_elites=8 exceeds ensemble_size=7"),
    (dict(ensemble_size=0), "ensemble_size must be an int >= 1, got 0"),
    (dict(holdout_ratio=1.5), "holdout_ratio must be in"),
    (dict(weight_decays=(1e-4,)), "weight_decays has 1 values"),
])
def test_bad_settings_are_refused_with_the_value(config, message):
    with pytest.raises(ValueError, match=message):
        DynamicsModel(OBS, ACT, EnsembleConfig(**config))


def test_bad_data_is_refused_with_the_shapes():
    model = DynamicsModel(OBS, ACT, small())
    obs, act, rew, next_obs = linear_system(100)
    with pytest.raises(ValueError, match=r"act must be \[N, 2\], got \[100, 3\]"):
        model.fit(obs, torch.zeros(100, 3), rew, next_obs)
    with pytest.raises(ValueError, match="same rows"):
        model.fit(obs, act, rew[:50], next_obs)
    with pytest.raises(ValueError, match="holdout"):
        model.fit(obs[:3], act[:3], rew[:3], next_obs[:3])
    with pytest.raises(ValueError, match=r"obs must be \[N, 4\]"):
        model.step(torch.zeros(5, 3), torch.zeros(5, 2))


@pytest.mark.parametrize("name", ["obs", "act", "rew", "next_obs"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_inf_in_the_data_is_refused_naming_the_array(name, value):
    data = dict(zip(("obs", "act", "rew", "next_obs"), linear_system(100), strict=True))
    data[name] = data[name].clone()
    data[name].view(-1)[[7 * data[name][0].numel(), -1]] = value   # row 7 and the last row
    model = DynamicsModel(OBS, ACT, small(max_epochs=1), seed=0)
    before = [p.clone() for p in model.network.parameters()]
    with pytest.raises(ValueError, match=rf"{name} holds 2 NaN or inf values in 2 rows \(first: row 7\)"):
        model.fit(**data)
    assert all(torch.equal(p, q) for p, q in zip(before, model.network.parameters(), strict=True))


def test_an_empty_buffer_is_refused():
    class Empty:
        def __len__(self):
            return 0

        def transitions(self):
            return tuple(torch.zeros(0, d) for d in (OBS, ACT, 1, OBS))

    with pytest.raises(ValueError, match="the transition source is empty"):
        DynamicsModel(OBS, ACT, small()).fit(Empty())


def test_a_nan_loss_names_member_and_epoch_and_keeps_the_last_good_weights():
    model = DynamicsModel(OBS, ACT, small(max_epochs=10, batch_size=100), seed=0)
    data = linear_system(500)                      # 400 training rows: 4 batches an epoch
    honest = model.network.member_losses
    calls, start_of_epoch_2 = [0], []

    def poisoned(mean, logvar, target):
        losses = honest(mean, logvar, target)
        if calls[0] == 2 * 4:                      # first batch of epoch 2
            start_of_epoch_2.extend(p.detach().clone() for p in model.network.parameters())
        calls[0] += 1
        if calls[0] > 2 * 4:
            losses = losses.clone()
            losses[3] = float("nan")
        return losses

    model.network.member_losses = poisoned
    with pytest.raises(FloatingPointError, match=r"member\(s\) \[3\] became NaN or inf in epoch 2"):
        model.fit(*data)
    for kept, good in zip(model.network.parameters(), start_of_epoch_2, strict=True):
        assert torch.equal(kept, good)
    # finite data whose loss overflows float32 gives the same clear error, and nothing is lost
    model = DynamicsModel(OBS, ACT, small(max_epochs=3), seed=0)
    before = [p.clone() for p in model.network.parameters()]
    obs, act, rew, next_obs = linear_system(300)
    with pytest.raises(FloatingPointError, match=r"epoch 0 .*check the data's scale"):
        model.fit(obs, act, rew * 1e30, next_obs)
    assert all(torch.equal(p, q) for p, q in zip(before, model.network.parameters(), strict=True))


def test_disagreement_is_higher_away_from_the_data(fitted):
    model, _, (obs, act, _, _) = fitted
    g = torch.Generator().manual_seed(0)
    inside = model.step(obs, act, g, disagreement=True)[2]["disagreement"].mean()
    outside = model.step(obs * 6, act, g, disagreement=True)[2]["disagreement"].mean()
    assert outside > 5 * inside


def test_fit_on_real_hopper_transitions_beats_predicting_no_change():
    """Random-action Hopper-v5 data: the elites' one-step error on fresh episodes is far below
    the error of "the state does not change" (predicting delta-s = 0)."""
    from mbpo_lib.envs import make_env

    def collect(seed: int, steps: int):
        env = make_env("Hopper-v5", seed=seed)
        rows, (obs, _) = [], env.reset(seed=seed)
        for _ in range(steps):
            act = env.action_space.sample()
            next_obs, rew, terminated, truncated, _ = env.step(act)
            rows.append((obs, act, rew, next_obs))
            obs = env.reset()[0] if terminated or truncated else next_obs
        env.close()
        return [torch.as_tensor(np.array(column), dtype=torch.float32) for column in zip(*rows, strict=True)]

    torch.manual_seed(0)
    model = DynamicsModel(11, 3, EnsembleConfig(max_epochs=25), seed=0)
    model.fit(*collect(0, 3000))
    obs, act, rew, next_obs = collect(1, 1000)
    mean, _ = model.predict(obs, act)
    delta = next_obs - obs
    model_mse = ((mean[model.elites].mean(0)[:, 1:] - delta) ** 2).mean()
    no_change_mse = (delta ** 2).mean()
    assert model_mse < 0.25 * no_change_mse, (float(model_mse), float(no_change_mse))  # 0.020 vs 0.218


def test_state_dict_round_trip_continues_identically(fitted):
    model, _, (obs, act, rew, next_obs) = fitted
    copy = DynamicsModel(OBS, ACT, small(max_epochs=60), seed=99)
    copy.load_state_dict(model.state_dict())
    assert copy.elites == model.elites
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    assert torch.equal(model.step(obs, act, g1)[0], copy.step(obs, act, g2)[0])
    bad = model.state_dict() | {"elites": torch.tensor([0, 1, 9, 2, 3])}
    with pytest.raises(ValueError, match="do not fit an ensemble of 7"):
        copy.load_state_dict(bad)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_and_step_stay_on_the_device():
    model = DynamicsModel(OBS, ACT, small(max_epochs=3), device="cuda", seed=0)
    obs, act, rew, next_obs = (t.cuda() for t in linear_system(800))
    model.fit(obs, act, rew, next_obs)
    s2, r, info = model.step(obs, act, generator=torch.Generator(device="cuda").manual_seed(0))
    assert s2.device.type == r.device.type == info["member"].device.type == "cuda"


def test_step_refuses_non_finite_inputs_and_mismatched_rows(fitted):
    model, _, (obs, act, _, _) = fitted
    with pytest.raises(ValueError, match=r"obs has 1500 rows and act 1499"):
        model.step(obs, act[:-1])
    for name in ("obs", "act"):
        bad = {"obs": obs.clone(), "act": act.clone()}
        bad[name][7, 0] = float("nan")
        message = rf"step: {name} holds 1 NaN or inf values in 1 rows \(first: row 7\)"
        with pytest.raises(ValueError, match=message):
            model.step(bad["obs"], bad["act"])
