"""matmul_precision: the setting is checked, scoped to the library's own work, and keeps results."""

import dataclasses

import pytest
import torch

from mbpo_lib import SAC, DynamicsModel, EnsembleConfig, GaussianEnsemble, MBPOConfig, SACConfig, preset
from mbpo_lib.models import CPU_ROWS_PER_SLICE
from mbpo_lib.precision import (
    MATMUL_PRECISIONS,
    check_matmul_precision,
    matmul_precision,
    product_rounding_error,
    resolve_matmul_precision,
)

# "medium" may round each input of a product to bfloat16: 8 significant bits, so a relative error
# of at most 2**-8 per input (round to nearest; 2**-7 if truncated). Tolerances below allow for
# that much; on a CPU without AMX oneDNN keeps float32 and the results agree far more closely.
BFLOAT16_EPS = 2.0 ** -8


def mkldnn_flag():
    matmul = getattr(torch.backends.mkldnn, "matmul", None)
    if matmul is None or not hasattr(matmul, "fp32_precision"):
        pytest.skip("this torch has no torch.backends.mkldnn.matmul.fp32_precision (torch < 2.9)")
    return matmul


@pytest.mark.parametrize("bad", ["low", "float32", "bf16", None, 1])
def test_a_bad_setting_is_refused_naming_the_value_and_the_choices(bad):
    with pytest.raises(ValueError, match=r"matmul_precision must be one of \('highest', 'medium', 'auto'\)"):
        check_matmul_precision(bad)
    with pytest.raises(ValueError, match="EnsembleConfig.matmul_precision"):
        EnsembleConfig(matmul_precision=bad).validate()
    with pytest.raises(ValueError, match="SACConfig.matmul_precision"):
        SACConfig(matmul_precision=bad).validate()
    with pytest.raises(ValueError, match="matmul_precision"):
        with matmul_precision(bad, "cpu"):
            pass


def test_the_setting_travels_in_a_run_config():
    hopper = preset("Hopper-v5")
    config = preset("Hopper-v5", ensemble=dataclasses.replace(hopper.ensemble, matmul_precision="medium"),
                    sac=dataclasses.replace(hopper.sac, matmul_precision="medium"))
    back = MBPOConfig.from_dict(config.to_dict())
    assert back == config and back.sac.matmul_precision == "medium"
    old = config.to_dict()
    del old["sac"]["matmul_precision"], old["ensemble"]["matmul_precision"]   # a config.json from before
    assert MBPOConfig.from_dict(old).sac.matmul_precision == "highest"
    assert MATMUL_PRECISIONS == ("highest", "medium", "auto")


def test_the_flag_is_set_only_inside_the_context_and_restored_after_an_error():
    flag = mkldnn_flag()
    before = flag.fp32_precision
    with matmul_precision("medium", "cpu"):
        assert flag.fp32_precision == "bf16"
    assert flag.fp32_precision == before
    with pytest.raises(RuntimeError, match="boom"):
        with matmul_precision("medium", torch.device("cpu")):
            raise RuntimeError("boom")
    assert flag.fp32_precision == before


def test_highest_leaves_a_users_own_global_setting_alone():
    flag = mkldnn_flag()
    before = flag.fp32_precision
    try:
        flag.fp32_precision = "bf16"
        with matmul_precision("highest", "cpu"):
            assert flag.fp32_precision == "bf16"
    finally:
        flag.fp32_precision = before


def test_highest_products_are_exact_and_medium_rounds_at_most_to_bfloat16():
    assert product_rounding_error("highest", "cpu") == 0.0
    assert 0.0 <= product_rounding_error("medium", "cpu") <= 2.0 ** -7     # bfloat16, even truncated


def test_auto_is_medium_exactly_where_medium_keeps_products_exact():
    exact = product_rounding_error("medium", "cpu") == 0.0
    assert resolve_matmul_precision("auto", "cpu") == ("medium" if exact else "highest")
    assert resolve_matmul_precision("highest", "cpu") == "highest"
    assert resolve_matmul_precision("medium", torch.device("cpu")) == "medium"
    with pytest.raises(ValueError, match="got 'fast'"):
        resolve_matmul_precision("fast", "cpu")
    with pytest.raises(ValueError, match="'auto' is one of them on each device"):
        product_rounding_error("auto", "cpu")
    flag = mkldnn_flag()
    before = flag.fp32_precision
    with matmul_precision("auto", "cpu"):
        assert flag.fp32_precision == ("bf16" if exact else before)
    assert flag.fp32_precision == before
    # A model and an agent at "auto" compute exactly what they compute at the setting it resolves to.
    data = _hopper_like(600)
    fits = [DynamicsModel(11, 3, EnsembleConfig(ensemble_size=2, num_elites=1, hidden_dim=16, max_epochs=2,
                                                matmul_precision=p), seed=0)
            .fit(*data, generator=torch.Generator().manual_seed(0)).final_holdout_mse
            for p in ("auto", resolve_matmul_precision("auto", "cpu"))]
    assert fits[0] == fits[1]


def test_sliced_cpu_prediction_equals_running_each_member_on_its_rows():
    """forward_per_row's sliced path (rows > CPU_ROWS_PER_SLICE per member) against a loop over
    members, in float64 so any mix-up of rows, slices or members shows as a difference."""
    net = GaussianEnsemble(6, 4, ensemble_size=4, hidden_dim=16, num_layers=2, weight_decays=[0, 0, 0],
                           generator=torch.Generator().manual_seed(0)).double()
    g = torch.Generator().manual_seed(1)
    rows = 3 * CPU_ROWS_PER_SLICE + 17
    x = torch.randn(rows, 6, generator=g, dtype=torch.float64)
    member = torch.randint(1, 4, (rows,), generator=g)          # member 0 never drawn
    with torch.no_grad():
        mean, logvar = net.forward_per_row(x, member)
        for e in range(1, 4):
            at = member == e
            want_mean, want_logvar = net(x[at], torch.tensor([e]))
            torch.testing.assert_close(mean[at], want_mean[0], rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(logvar[at], want_logvar[0], rtol=1e-12, atol=1e-12)
    assert int((member == 1).sum()) > CPU_ROWS_PER_SLICE          # the sliced path really ran


def _hopper_like(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    obs, act = torch.randn(n, 11, generator=g), torch.rand(n, 3, generator=g) * 2 - 1
    next_obs = obs + 0.1 * torch.tanh(obs @ torch.randn(11, 11, generator=g) * 0.3) + 0.05 * act.sum(-1, True)
    return obs, act, obs[:, 0] - (act ** 2).sum(-1), next_obs


def test_medium_fits_and_predicts_like_highest():
    data = _hopper_like(2000)
    models = {}
    for precision in ("highest", "medium"):
        model = DynamicsModel(11, 3, EnsembleConfig(ensemble_size=3, num_elites=2, hidden_dim=32,
                                                    max_epochs=5, matmul_precision=precision), seed=0)
        models[precision] = (model, model.fit(*data, generator=torch.Generator().manual_seed(0)))
    (high, high_fit), (medium, medium_fit) = models["highest"], models["medium"]
    torch.testing.assert_close(torch.tensor(medium_fit.final_holdout_mse),
                               torch.tensor(high_fit.final_holdout_mse), rtol=0.05, atol=0.0)
    obs, act = data[0][:500], data[1][:500]
    for model in (high, medium):
        model.load_state_dict(high.state_dict())       # the same weights: compare the products only
    want = high.step(obs, act, generator=torch.Generator().manual_seed(3), deterministic=True)
    got = medium.step(obs, act, generator=torch.Generator().manual_seed(3), deterministic=True)
    scale = (want[0] - obs).abs().mean()
    torch.testing.assert_close(got[0] - obs, want[0] - obs, rtol=0.0, atol=20 * BFLOAT16_EPS * scale)


def test_a_medium_sac_update_matches_highest():
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(256, 11, generator=g), torch.rand(256, 3, generator=g) * 2 - 1,
             torch.randn(256, generator=g), torch.randn(256, 11, generator=g), torch.zeros(256))
    agents = [SAC(11, 3, SACConfig(matmul_precision=p), seed=0) for p in ("highest", "medium")]
    metrics = [agent.update(batch) for agent in agents]
    for name in metrics[0]:
        assert metrics[1][name] == pytest.approx(metrics[0][name], rel=20 * BFLOAT16_EPS, abs=1e-3), name
    for p_high, p_medium in zip(agents[0].actor.parameters(), agents[1].actor.parameters(), strict=True):
        # Adam's first step moves every weight by about lr = 3e-4 along the sign of its gradient;
        # rounding can flip that sign only where a gradient is close to 0: for few weights. How
        # few depends on the CPU's bfloat16 kernel: under 1 % on an AVX-512 EPYC, 1.2 % on an
        # Intel Xeon with AMX tiles (2026-12-08)
        moved_apart = float(((p_medium - p_high).abs() > 3e-4 / 2).float().mean())
        assert moved_apart < 0.02, moved_apart
    obs = torch.randn(8, 11, generator=g)
    torch.testing.assert_close(agents[1].act(obs, deterministic=True), agents[0].act(obs, deterministic=True),
                               rtol=0, atol=0.05)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_medium_means_tf32_on_cuda_and_is_restored():
    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("this torch has no torch.backends.cuda.matmul.fp32_precision (torch < 2.9)")
    before = matmul.fp32_precision
    with matmul_precision("medium", "cuda"):
        assert matmul.fp32_precision == "tf32"
    assert matmul.fp32_precision == before
    assert product_rounding_error("highest", "cuda") == 0.0
    assert product_rounding_error("medium", "cuda") <= 2.0 ** -10     # TF32: 10 stored bits, even truncated
    tf32_rounds = product_rounding_error("medium", "cuda") > 0.0
    assert resolve_matmul_precision("auto", "cuda") == ("highest" if tf32_rounds else "medium")
