"""ReplayBuffer and sample_mixed: FIFO, wrap-around, resize, storage dtype, MBPO's real/model split."""

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from mbpo_lib.buffer import Batch, ReplayBuffer, sample_mixed

OBS, ACT = 3, 2


def rows(start: int, n: int):
    """n transitions whose values encode their index: obs[i] = [i, i, i], rew[i] = i, ..."""
    i = torch.arange(start, start + n, dtype=torch.float32)
    return (i[:, None].expand(n, OBS).clone(), -i[:, None].expand(n, ACT).clone(), i.clone(),
            i[:, None].expand(n, OBS) + 0.5, (i % 2 == 1))


def filled(capacity: int, n: int, start: int = 0, **kwargs) -> ReplayBuffer:
    buffer = ReplayBuffer(capacity, OBS, ACT, **kwargs)
    buffer.add_batch(*rows(start, n))
    return buffer


def test_add_and_transitions_in_insertion_order():
    buffer = ReplayBuffer(10, OBS, ACT)
    buffer.add(np.ones(OBS), np.zeros(ACT), 1.5, np.full(OBS, 2.0), True)
    buffer.add_batch(*rows(1, 3))
    assert len(buffer) == 4 and buffer.total_added == 4
    obs, act, rew, next_obs, terminated = buffer.transitions()
    assert rew.tolist() == [1.5, 1.0, 2.0, 3.0]
    assert terminated.tolist() == [1.0, 1.0, 0.0, 1.0] and terminated.dtype == torch.float32
    assert obs.shape == (4, OBS) and act.shape == (4, ACT) and next_obs.shape == (4, OBS)


def test_fifo_wrap_around_overwrites_the_oldest_rows():
    buffer = filled(5, 3)
    buffer.add_batch(*rows(3, 4))     # 7 rows into 5 slots: rows 0 and 1 are gone
    assert len(buffer) == 5 and buffer.total_added == 7
    assert buffer.transitions()[2].tolist() == [2, 3, 4, 5, 6]
    for i in range(7, 10):            # single adds keep wrapping
        buffer.add(*(x[0] for x in rows(i, 1)))
    assert buffer.transitions()[2].tolist() == [5, 6, 7, 8, 9]


def test_a_batch_larger_than_the_capacity_keeps_its_last_rows():
    buffer = filled(4, 2)
    buffer.add_batch(*rows(10, 9))
    assert buffer.transitions()[2].tolist() == [15, 16, 17, 18]
    obs, _, rew, next_obs, _ = buffer.transitions()
    assert_close(obs[:, 0], rew) and assert_close(next_obs[:, 0], rew + 0.5)


def test_sample_is_uniform_over_stored_rows_and_aligned():
    buffer = filled(100, 250)          # holds rows 150..249
    batch = buffer.sample(20_000, torch.Generator().manual_seed(0))
    assert isinstance(batch, Batch) and batch.size == 20_000
    assert batch.rew.min() >= 150 and batch.rew.max() <= 249
    assert_close(batch.obs[:, 0], batch.rew)
    assert_close(batch.act[:, 0], -batch.rew)
    assert_close(batch.terminated, (batch.rew % 2 == 1).float())
    counts = torch.bincount(batch.rew.long() - 150, minlength=100).float()
    assert counts.min() > 120 and counts.max() < 290   # 200 expected per row


def test_same_generator_seed_same_batch():
    buffer = filled(50, 50)
    a = buffer.sample(32, torch.Generator().manual_seed(7))
    b = buffer.sample(32, torch.Generator().manual_seed(7))
    c = buffer.sample(32, torch.Generator().manual_seed(8))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a.rew, c.rew)


def test_terminated_not_truncated_is_the_stored_done_flag():
    buffer = ReplayBuffer(4, OBS, ACT)
    # A time-limit step: terminated=False, truncated=True. The buffer only ever sees terminated.
    terminated, truncated = False, True
    assert truncated
    buffer.add(np.zeros(OBS), np.zeros(ACT), 0.0, np.zeros(OBS), terminated)
    buffer.add(np.zeros(OBS), np.zeros(ACT), 0.0, np.zeros(OBS), np.bool_(True))
    assert buffer.transitions()[4].tolist() == [0.0, 1.0]


def test_resize_grows_and_shrinks_keeping_rows_in_order():
    buffer = filled(5, 8)              # wrapped: holds 3..7
    buffer.resize(10)
    assert buffer.capacity == 10 and buffer.transitions()[2].tolist() == [3, 4, 5, 6, 7]
    buffer.add_batch(*rows(8, 7))      # 12 rows into 10 slots
    assert buffer.transitions()[2].tolist() == list(range(5, 15))
    buffer.resize(4)
    assert len(buffer) == 4 and buffer.transitions()[2].tolist() == [11, 12, 13, 14]
    buffer.add(*(x[0] for x in rows(15, 1)))
    assert buffer.transitions()[2].tolist() == [12, 13, 14, 15]
    empty = ReplayBuffer(3, OBS, ACT)
    empty.resize(6)
    assert len(empty) == 0 and empty.capacity == 6


def test_half_precision_storage_samples_float32():
    buffer = filled(64, 64, dtype=torch.bfloat16)
    assert buffer._obs.dtype == torch.bfloat16
    batch = buffer.sample(16, torch.Generator().manual_seed(0))
    assert all(x.dtype == torch.float32 for x in batch)
    assert_close(batch.obs[:, 0], batch.rew)   # small integers are exact in bfloat16
    with pytest.raises(ValueError, match="dtype must be one of"):
        ReplayBuffer(4, OBS, ACT, dtype=torch.int32)


def test_state_dict_round_trip():
    buffer = filled(6, 9)
    state = buffer.state_dict()
    other = ReplayBuffer(2, OBS, ACT)
    other.load_state_dict(state)
    assert other.capacity == 6 and len(other) == 6 and other.total_added == 9
    for x, y in zip(buffer.transitions(), other.transitions(), strict=True):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="obs_dim"):
        ReplayBuffer(6, OBS + 1, ACT).load_state_dict(state)


@pytest.mark.parametrize("capacity", [0, -3, 2.5, True])
def test_capacity_must_be_a_positive_int(capacity):
    with pytest.raises(ValueError, match="capacity must be an int >= 1"):
        ReplayBuffer(capacity, OBS, ACT)


def test_bad_shapes_name_the_field():
    buffer = ReplayBuffer(8, OBS, ACT)
    with pytest.raises(ValueError, match=r"act must be shape \[N, 2\]"):
        buffer.add_batch(torch.zeros(4, OBS), torch.zeros(3, ACT), torch.zeros(4), torch.zeros(4, OBS),
                         torch.zeros(4))
    with pytest.raises(ValueError, match=r"obs must be shape \[3\]"):
        buffer.add(np.zeros(OBS + 1), np.zeros(ACT), 0.0, np.zeros(OBS), False)
    with pytest.raises(ValueError, match="empty ReplayBuffer"):
        buffer.sample(4)
    assert len(buffer) == 0


def test_dynamics_model_fits_from_a_buffer():
    from mbpo_lib.config import EnsembleConfig
    from mbpo_lib.dynamics import DynamicsModel

    g = torch.Generator().manual_seed(0)
    obs, act = torch.randn(300, OBS, generator=g), torch.rand(300, ACT, generator=g) * 2 - 1
    buffer = ReplayBuffer(500, OBS, ACT)
    buffer.add_batch(obs, act, obs.sum(-1), obs + 0.1 * act.sum(-1, keepdim=True), torch.zeros(300))
    model = DynamicsModel(OBS, ACT, EnsembleConfig(hidden_dim=16, max_epochs=2), seed=0)
    report = model.fit(buffer)
    assert report.n_train + report.n_holdout == 300


# --- sample_mixed ---------------------------------------------------------------------------


def test_sample_mixed_uses_the_papers_split():
    real, model = filled(100, 100, start=0), filled(1000, 1000, start=10_000)
    batch = sample_mixed(real, model, 0.05, 256, torch.Generator().manual_seed(0))
    from_real = batch.rew < 10_000
    assert batch.size == 256 and int(from_real.sum()) == 12     # int(256 * 0.05) = int(12.8)
    assert from_real[:12].all() and not from_real[12:].any()     # real rows first
    assert int(sample_mixed(real, model, 0.5, 10).rew.lt(10_000).sum()) == 5


@pytest.mark.parametrize("ratio, n_real", [(0.0, 0), (1.0, 256), (0.3, 76)])
def test_sample_mixed_edges(ratio, n_real):
    real, model = filled(100, 100, start=0), filled(100, 100, start=10_000)
    batch = sample_mixed(real, model, ratio, 256, torch.Generator().manual_seed(1))
    assert int((batch.rew < 10_000).sum()) == n_real


def test_sample_mixed_with_an_empty_model_buffer_is_all_real():
    real, model = filled(100, 100), ReplayBuffer(100, OBS, ACT)
    batch = sample_mixed(real, model, 0.05, 256, torch.Generator().manual_seed(0))
    assert batch.size == 256 and bool((batch.rew < 100).all())


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan"), "0.5"])
def test_sample_mixed_refuses_a_ratio_outside_0_1(ratio):
    real, model = filled(10, 10), filled(10, 10)
    with pytest.raises(ValueError, match=r"real_ratio must be a number in \[0, 1\]"):
        sample_mixed(real, model, ratio, 256)


def test_sample_mixed_mixes_storage_dtypes_on_one_device():
    real = filled(50, 50)
    model = filled(50, 50, start=100, dtype=torch.float16)
    batch = sample_mixed(real, model, 0.25, 64, torch.Generator().manual_seed(0))
    assert all(x.dtype == torch.float32 and x.device == real.device for x in batch)
    assert int((batch.rew < 100).sum()) == 16


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_buffers_on_cuda_sample_on_cuda_with_either_generator():
    real, model = filled(50, 50, device="cuda"), filled(50, 50, start=100, device="cuda")
    for g in (torch.Generator().manual_seed(0), torch.Generator(device="cuda").manual_seed(0)):
        batch = sample_mixed(real, model, 0.05, 256, g)
        assert all(x.device.type == "cuda" for x in batch)
    with pytest.raises(ValueError, match="one device"):
        sample_mixed(filled(10, 10), model, 0.05, 16)


def test_a_restored_wrapped_buffer_samples_exactly_the_same_rows():
    buffer = ReplayBuffer(7, 2, 1)
    for i in range(11):   # wraps: the cursor ends at 4
        buffer.add([i, -i], [i], float(i), [i + 1, -i], i % 3 == 0)
    copy = ReplayBuffer(1, 2, 1)
    copy.load_state_dict(buffer.state_dict())
    assert len(copy) == 7 and copy.state_dict()["cursor"] == 4
    a = buffer.sample(50, torch.Generator().manual_seed(3))
    b = copy.sample(50, torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    buffer.add([99, 99], [1], 1.0, [0, 0], False)
    copy.add([99, 99], [1], 1.0, [0, 0], False)
    assert all(torch.equal(x, y) for x, y in zip(buffer.transitions(), copy.transitions(), strict=True))
    bad = buffer.state_dict() | {"cursor": 9}
    with pytest.raises(ValueError, match="cursor 9 for 7 rows in capacity 7"):
        copy.load_state_dict(bad)
