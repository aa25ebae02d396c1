"""EnsembleLinear, GaussianEnsemble and Normalizer against references and on a known problem."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from mbpo_lib.models import (
    PAPER_WEIGHT_DECAYS,
    EnsembleLinear,
    GaussianEnsemble,
    Normalizer,
    gaussian_nll,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def looped_forward(model: GaussianEnsemble, x: torch.Tensor, member: int):
    """One member computed on its own with plain F.linear: the reference for the batched net."""
    h = x
    for layer in model.layers[:-1]:
        h = F.silu(F.linear(h, layer.weight[member].T, layer.bias[member, 0]))
    last = model.layers[-1]
    mean, raw = F.linear(h, last.weight[member].T, last.bias[member, 0]).chunk(2, dim=-1)
    return mean, model.bound_logvar(raw)


def test_ensemble_linear_equals_a_loop_over_members():
    layer = EnsembleLinear(5, 3, ensemble_size=4, generator=gen())
    with torch.no_grad():
        layer.bias.normal_(generator=gen(1))
    x = torch.randn(4, 10, 5, generator=gen(2))
    out = layer(x)
    assert out.shape == (4, 10, 3)
    for e in range(4):
        assert_close(out[e], x[e] @ layer.weight[e] + layer.bias[e])
    members = torch.tensor([3, 1])
    assert_close(layer(x[:2], members), torch.stack([x[0] @ layer.weight[3] + layer.bias[3],
                                                     x[1] @ layer.weight[1] + layer.bias[1]]))


def test_ensemble_linear_init_is_the_papers_truncated_normal():
    layer = EnsembleLinear(400, 300, ensemble_size=3, generator=gen())
    std = 1 / (2 * math.sqrt(400))
    assert layer.weight.abs().max() <= 2 * std
    # a normal truncated at 2 sigma has std 0.8796 sigma
    assert layer.weight.std().item() == pytest.approx(0.8796 * std, rel=0.02)
    assert torch.count_nonzero(layer.bias) == 0
    assert torch.equal(EnsembleLinear(400, 300, 3, generator=gen()).weight, layer.weight)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"in_features": 0, "out_features": 3, "ensemble_size": 2}, "in_features"),
    ({"in_features": 3, "out_features": 3, "ensemble_size": 0}, "ensemble_size"),
])
def test_ensemble_linear_refuses_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EnsembleLinear(**kwargs)


def test_gaussian_ensemble_is_the_papers_network():
    model = GaussianEnsemble(14, 12, generator=gen())
    assert model.ensemble_size == 7
    assert [(layer.in_features, layer.out_features) for layer in model.layers] == [
        (14, 200), (200, 200), (200, 200), (200, 200), (200, 24)]
    assert model.weight_decays == PAPER_WEIGHT_DECAYS
    assert torch.all(model.max_logvar == 0.5) and torch.all(model.min_logvar == -10)


def test_batched_forward_equals_a_loop_over_members():
    model = GaussianEnsemble(6, 4, ensemble_size=5, hidden_dim=32, generator=gen()).double()
    x = torch.randn(5, 17, 6, generator=gen(1), dtype=torch.float64)
    mean, logvar = model(x)
    assert mean.shape == logvar.shape == (5, 17, 4)
    for e in range(5):
        ref_mean, ref_logvar = looped_forward(model, x[e], e)
        assert_close(mean[e], ref_mean)
        assert_close(logvar[e], ref_logvar)
    shared_mean, _ = model(x[0])  # [B, in] goes through every member
    assert_close(shared_mean, model(x[0].expand(5, -1, -1))[0])


def test_forward_refuses_a_wrong_shape_naming_it():
    model = GaussianEnsemble(6, 4, ensemble_size=3, hidden_dim=8)
    with pytest.raises(ValueError, match=r"expected input \[3, B, 6\].*got \[2, 5, 6\]"):
        model(torch.zeros(2, 5, 6))


def test_forward_per_row_equals_each_rows_own_member():
    model = GaussianEnsemble(6, 4, ensemble_size=7, hidden_dim=32, generator=gen()).double()
    x = torch.randn(300, 6, generator=gen(1), dtype=torch.float64)
    member = torch.tensor([0, 2, 3, 5, 6])[torch.randint(5, (300,), generator=gen(2))]
    mean, logvar = model.forward_per_row(x, member)
    full_mean, full_logvar = model(x)
    rows = torch.arange(300)
    assert_close(mean, full_mean[member, rows])
    assert_close(logvar, full_logvar[member, rows])
    single = torch.full((300,), 4)  # one member only
    assert_close(model.forward_per_row(x, single)[0], full_mean[4])


def test_forward_without_autograd_is_the_same_and_leaves_the_input_alone():
    """Under no_grad SiLU runs in place (a speed path): same numbers, input untouched."""
    model = GaussianEnsemble(6, 4, ensemble_size=5, hidden_dim=32, generator=gen())
    x = torch.randn(5, 40, 6, generator=gen(1))
    x_copy = x.clone()
    with_grad = model(x)
    with torch.no_grad():
        without = model(x)
        per_row = model.forward_per_row(x[0], torch.arange(40) % 5)
    assert torch.equal(x, x_copy)
    assert torch.equal(with_grad[0].detach(), without[0]) and torch.equal(with_grad[1].detach(), without[1])
    rows = torch.arange(40)
    assert torch.equal(per_row[0], model(x[0])[0][rows % 5, rows].detach())


def test_logvar_bounds_hold_everywhere_and_pass_the_middle_through():
    model = GaussianEnsemble(1, 3, ensemble_size=1, hidden_dim=8).double()
    raw = torch.linspace(-1e4, 1e4, 2001, dtype=torch.float64).unsqueeze(-1).expand(-1, 3)
    logvar = model.bound_logvar(raw)
    # the second softplus may lift the top by log(1 + exp(min - max)) (3e-5 here), no more
    top = model.max_logvar + torch.log1p(torch.exp(model.min_logvar - model.max_logvar))
    assert torch.all(logvar <= top + 1e-12) and torch.all(logvar >= model.min_logvar)
    moderate = model.bound_logvar(torch.linspace(-20, 20, 41, dtype=torch.float64).unsqueeze(-1))
    assert torch.all(moderate < top) and torch.all(moderate > model.min_logvar)
    assert torch.all(logvar[1:] >= logvar[:-1])  # monotone
    middle = torch.tensor([[-3.0, -4.0, -5.0]], dtype=torch.float64)
    assert_close(model.bound_logvar(middle), middle, atol=0.05, rtol=0)


def test_nll_matches_torch_distributions():
    mean = torch.randn(3, 50, 4, generator=gen(), dtype=torch.float64)
    logvar = torch.randn(3, 50, 4, generator=gen(1), dtype=torch.float64)
    target = torch.randn(3, 50, 4, generator=gen(2), dtype=torch.float64)
    reference = -torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(target)
    assert_close(gaussian_nll(mean, logvar, target), reference)
    # the paper's per-member loss is 2 * NLL - log(2 pi), averaged over batch and dims
    expected = (2 * reference - math.log(2 * math.pi)).mean(dim=(1, 2))
    assert_close(GaussianEnsemble.member_losses(mean, logvar, target), expected)


def test_weight_decay_and_bound_penalty_are_the_papers_sums():
    model = GaussianEnsemble(3, 2, ensemble_size=2, hidden_dim=8, generator=gen())
    expected = sum(wd * 0.5 * (layer.weight ** 2).sum()
                   for wd, layer in zip(PAPER_WEIGHT_DECAYS, model.layers, strict=True))
    assert_close(model.weight_decay_loss(), expected)
    assert_close(model.bound_penalty(), torch.tensor(0.01 * (2 * 0.5 - 2 * -10.0)))
    x, y = torch.randn(2, 5, 3, generator=gen(1)), torch.randn(2, 5, 2, generator=gen(2))
    mean, logvar = model(x)
    total = model.member_losses(mean, logvar, y).sum() + model.bound_penalty() + model.weight_decay_loss()
    assert_close(model.loss(x, y), total)


def test_the_bounds_are_trained():
    model = GaussianEnsemble(3, 2, ensemble_size=2, hidden_dim=8, generator=gen())
    model.loss(torch.randn(2, 5, 3, generator=gen(1)), torch.randn(2, 5, 2, generator=gen(2))).backward()
    assert model.max_logvar.grad is not None and torch.all(model.max_logvar.grad != 0)
    assert model.min_logvar.grad is not None and torch.all(model.min_logvar.grad != 0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_layers": 0}, "num_layers"),
    ({"num_layers": 3}, "paper's weight decays are for 4 hidden layers"),
    ({"weight_decays": (1e-4,) * 4}, "needs 5 non-negative"),
    ({"weight_decays": (1e-4, 1e-4, 1e-4, 1e-4, -1.0)}, "needs 5 non-negative"),
    ({"init_max_logvar": -20.0}, "init_min_logvar"),
])
def test_gaussian_ensemble_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianEnsemble(3, 2, **kwargs)


def test_learns_a_heteroscedastic_function():
    """y = sin(3x) + noise with std 0.1 + 0.1 (x + 1): the fit recovers the mean and the noise level."""
    g = gen(0)
    torch.manual_seed(0)
    x = torch.rand(2000, 1, generator=g) * 2 - 1
    noise_std = 0.1 + 0.1 * (x + 1)
    y = torch.sin(3 * x) + noise_std * torch.randn(2000, 1, generator=g)
    model = GaussianEnsemble(1, 1, ensemble_size=1, hidden_dim=64, num_layers=2,
                             weight_decays=(0.0, 0.0, 0.0), generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(1500):
        idx = torch.randint(2000, (256,), generator=g)
        loss = model.loss(x[idx].unsqueeze(0), y[idx].unsqueeze(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
    probe = torch.tensor([[-0.8], [0.0], [0.8]])
    with torch.no_grad():
        mean, logvar = model(probe)
    assert_close(mean[0], torch.sin(3 * probe), atol=0.06, rtol=0)
    assert_close(torch.exp(0.5 * logvar[0]), 0.1 + 0.1 * (probe + 1), rtol=0.2, atol=0.0)


def test_normalizer_standardises_and_keeps_constant_dimensions():
    x = torch.randn(1000, 3, generator=gen()) * torch.tensor([2.0, 0.5, 0.0]) + torch.tensor([1.0, -3.0, 7.0])
    norm = Normalizer(3).fit(x)
    z = norm.transform(x)
    assert_close(z[:, :2].mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    assert_close(z[:, :2].std(0, unbiased=False), torch.ones(2), atol=1e-5, rtol=0)
    assert norm.std[2] == 1.0 and torch.all(z[:, 2] == 0)  # constant input: divided by 1
    copy = Normalizer(3)
    copy.load_state_dict(norm.state_dict())
    assert_close(copy(x), z)


def test_normalizer_refuses_data_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"fit needs data \[N >= 1, 3\], got \[10, 2\]"):
        Normalizer(3).fit(torch.zeros(10, 2))
