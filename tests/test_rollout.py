"""Rollouts: the schedule's official formula, the model buffer's size, and branched_rollout
checked transition by transition against a fake model and a Python loop, then with a real
DynamicsModel and SAC."""

import pytest
import torch

from mbpo_lib.buffer import ReplayBuffer
from mbpo_lib.config import PRESETS, EnsembleConfig, SACConfig
from mbpo_lib.dynamics import DynamicsModel
from mbpo_lib.rollout import (
    ROLLOUT_SCHEDULES,
    Schedule,
    branched_rollout,
    model_buffer_capacity,
    reset_rollout,
    rollout_schedule,
)
from mbpo_lib.sac import SAC


def test_hopper_schedule_by_hand():
    hopper = ROLLOUT_SCHEDULES["Hopper-v5"]
    assert hopper == Schedule(20, 150, 1, 15)
    assert [rollout_schedule(e, hopper) for e in (0, 20, 21, 30, 85, 149, 150, 400)] == [
        1, 1, 1, 2, 8, 14, 15, 15]
    # int() truncates: epoch 30 gives 1 + 10/130 * 14 = 2.08 -> 2


def test_the_paper_appendix_variant_reaches_15_at_epoch_100():
    appendix = ROLLOUT_SCHEDULES["Hopper-v5 (paper appendix)"]
    assert rollout_schedule(100, appendix) == 15 and rollout_schedule(99, appendix) == 14


def test_every_official_schedule_is_valid_and_monotone():
    for schedule in ROLLOUT_SCHEDULES.values():
        ks = [rollout_schedule(e, schedule) for e in range(400)]
        assert ks[0] == schedule.min_k and ks[-1] == schedule.max_k
        assert all(a <= b for a, b in zip(ks, ks[1:], strict=False))


def test_fixed_length_schedules_stay_at_one():
    for name in ("Walker2d-v5", "HalfCheetah-v5", "InvertedPendulum-v5"):
        assert {rollout_schedule(e, ROLLOUT_SCHEDULES[name]) for e in range(300)} == {1}


@pytest.mark.parametrize(("epoch", "schedule", "message"), [
    (5, (20, 150, 0, 15), "k < 1 is no rollout"),
    (5, (20, 150, 5, 3), "min_k <= max_k"),
    (5, (150, 20, 1, 15), "min_epoch < max_epoch"),
    (-1, (20, 150, 1, 15), "epoch must be an int >= 0"),
    (2.5, (20, 150, 1, 15), "epoch must be an int >= 0"),
])
def test_bad_schedules_are_refused(epoch, schedule, message):
    with pytest.raises(ValueError, match=message):
        rollout_schedule(epoch, schedule)


# --- model_buffer_capacity -------------------------------------------------------------------


def test_model_buffer_capacity_with_the_papers_hopper_numbers():
    hopper = PRESETS["Hopper-v5"]
    # retain_epochs 1 x k x 100,000 start states x (1000 / 250) fits per epoch
    assert model_buffer_capacity(hopper, 1) == 400_000
    assert model_buffer_capacity(hopper, 15) == 6_000_000
    assert model_buffer_capacity(PRESETS["Humanoid-v5"], 1) == 500_000       # 5 x 1 x 100,000 x 1
    assert model_buffer_capacity(PRESETS["InvertedPendulum-v5"], 1) == 100_000   # 250 / 250: one fit
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="k \\(the rollout length\\) must be an int >= 1"):
            model_buffer_capacity(hopper, bad)


# --- branched_rollout with a model whose every number is known -----------------------------

OBS, ACT = 2, 1


class DriftModel:
    """A deterministic fake: next_obs = obs + [0.5, act], rew = obs[0] + 10 obs[1]; with ``noise``
    it adds noise drawn from the generator. ``info["disagreement"]`` is |obs[1]|."""

    obs_dim, act_dim = OBS, ACT

    def __init__(self, noise: float = 0.0) -> None:
        self.noise = noise
        self.calls: list[int] = []

    def step(self, obs, act, generator=None, disagreement=False):
        self.calls.append(obs.shape[0])
        next_obs = obs + torch.cat([torch.full_like(obs[:, :1], 0.5), act], dim=1)
        if self.noise:
            next_obs = next_obs + self.noise * torch.randn(next_obs.shape, generator=generator)
        info = {"member": torch.zeros(obs.shape[0], dtype=torch.long)}
        if disagreement:
            info["disagreement"] = obs[:, 1].abs()
        return next_obs, obs[:, 0] + 10 * obs[:, 1], info


def policy(obs, generator):
    return 0.5 * obs[:, 1:2] + 0.1


def noisy_policy(obs, generator):
    return torch.tanh(obs[:, 1:2] + torch.randn(obs.shape[0], 1, generator=generator))


def ends_past_09(obs, act, next_obs):
    return next_obs[:, 0] > 0.9


def starts(n: int = 10) -> torch.Tensor:
    """Even rows start at x = 0 (0.5, 1.0: they terminate at step 2), odd rows at x = -10 (never)."""
    x = torch.where(torch.arange(n) % 2 == 0, 0.0, -10.0)
    return torch.stack([x, 0.01 * torch.arange(n)], dim=1)


def loop_reference(model, start, k, termination):
    """The rollout one row at a time in plain Python, transitions put in the official order."""
    rows = []
    for i in range(start.shape[0]):
        obs = start[i:i + 1]
        for t in range(k):
            act = policy(obs, None)
            next_obs, rew, _ = model.step(obs, act)
            done = bool(termination(obs, act, next_obs)[0])
            rows.append((t, i, obs[0], act[0], rew[0], next_obs[0], done))
            if done:
                break
            obs = next_obs
    rows.sort(key=lambda row: (row[0], row[1]))
    return (torch.stack([r[2] for r in rows]), torch.stack([r[3] for r in rows]),
            torch.stack([r[4] for r in rows]), torch.stack([r[5] for r in rows]),
            torch.tensor([float(r[6]) for r in rows]), [(r[0], r[1]) for r in rows])


def test_rows_that_terminate_at_step_2_give_exactly_2_transitions():
    buffer = ReplayBuffer(100, OBS, ACT)
    model = DriftModel()
    stats = branched_rollout(model, policy, starts(10), 4, ends_past_09, buffer=buffer)
    assert model.calls == [10, 10, 5, 5]                   # the 5 terminated rows are dropped after step 2
    assert stats.rows_per_step == (10, 10, 5, 5) and stats.steps == 4 and stats.k == 4
    assert stats.transitions == len(buffer) == 30 and stats.start_states == 10
    assert stats.mean_length == 3.0                        # (5 x 2 + 5 x 4) / 10
    assert stats.termination_rate == 0.5
    obs, act, rew, next_obs, terminated = buffer.transitions()
    assert terminated.sum() == 5
    assert terminated[10:20].tolist() == [1.0, 0.0] * 5   # step 2: even rows end there, odd ones go on
    assert torch.equal(obs[20:25], next_obs[10:20][1::2])   # step 3 goes on from step 2's odd rows only
    assert obs[20:25, 0].tolist() == [-9.0] * 5             # they started at x = -10: two steps of 0.5
    assert stats.mean_disagreement is None


def test_buffer_contents_equal_a_python_loop_reference():
    buffer = ReplayBuffer(100, OBS, ACT)
    start = starts(10)
    stats = branched_rollout(DriftModel(), policy, start, 4, ends_past_09, buffer=buffer,
                             disagreement=True)
    *expected, order = loop_reference(DriftModel(), start, 4, ends_past_09)
    for got, want in zip(buffer.transitions(), expected, strict=True):
        assert torch.equal(got, want)
    # the statistics by hand from the reference's transitions
    exp_obs, _, exp_rew = expected[:3]
    assert stats.mean_reward == pytest.approx(exp_rew.mean().item(), rel=1e-6)
    assert stats.mean_disagreement == pytest.approx(exp_obs[:, 1].abs().mean().item(), rel=1e-6)
    assert stats.transitions == len(order) == 30


def test_a_termination_of_shape_b_by_1_and_no_buffer_give_the_same_statistics():
    as_column = branched_rollout(DriftModel(), policy, starts(), 4,
                                 lambda o, a, n: (n[:, 0] > 0.9).unsqueeze(1))
    with_buffer = branched_rollout(DriftModel(), policy, starts(), 4, ends_past_09,
                                   buffer=ReplayBuffer(100, OBS, ACT))
    assert as_column._replace(seconds=0.0) == with_buffer._replace(seconds=0.0)


def test_the_rollout_stops_once_every_row_has_terminated():
    model = DriftModel()
    stats = branched_rollout(model, policy, starts(8), 5, lambda o, a, n: torch.ones(8, dtype=torch.bool))
    assert model.calls == [8]
    assert (stats.steps, stats.transitions, stats.mean_length, stats.termination_rate) == (1, 8, 1.0, 1.0)


def test_no_termination_runs_all_k_steps():
    stats = branched_rollout(DriftModel(), policy, starts(6), 3, lambda o, a, n: n[:, 0] > 1e9)
    assert stats.rows_per_step == (6, 6, 6) and stats.termination_rate == 0.0 and stats.mean_length == 3.0


def test_the_same_generator_seed_gives_the_same_rollout():
    def run(seed):
        buffer = ReplayBuffer(200, OBS, ACT)
        stats = branched_rollout(DriftModel(noise=0.3), noisy_policy, starts(20), 5, ends_past_09,
                                 generator=torch.Generator().manual_seed(seed), buffer=buffer)
        return stats._replace(seconds=0.0), buffer.transitions()

    (stats_a, rows_a), (stats_b, rows_b), (stats_c, rows_c) = run(0), run(0), run(1)
    assert stats_a == stats_b and stats_c.start_states == stats_a.start_states
    assert all(torch.equal(a, b) for a, b in zip(rows_a, rows_b, strict=True))
    assert not torch.equal(rows_a[1], rows_c[1])


@pytest.mark.parametrize("k", [0, -1, 2.0, True, "3", None])
def test_k_must_be_an_int_of_at_least_1(k):
    with pytest.raises(ValueError, match=f"k \\(the rollout length\\) must be an int >= 1, got {k!r}"):
        branched_rollout(DriftModel(), policy, starts(), k, ends_past_09)


def test_bad_start_states_policies_terminations_and_buffers_are_refused():
    model = DriftModel()
    with pytest.raises(ValueError, match=r"start_obs must be \[N, 2\] with N >= 1 .* got \[5, 3\]"):
        branched_rollout(model, policy, torch.zeros(5, 3), 2, ends_past_09)
    with pytest.raises(ValueError, match=r"start_obs must be \[N, 2\] .* got \[0, 2\]"):
        branched_rollout(model, policy, torch.zeros(0, 2), 2, ends_past_09)
    with pytest.raises(TypeError, match="start_obs must be a torch.Tensor"):
        branched_rollout(model, policy, starts().numpy(), 2, ends_past_09)
    with pytest.raises(TypeError, match=r"policy must be callable as policy\(obs, generator\) -> act"):
        branched_rollout(model, lambda obs: obs[:, :1], starts(), 2, ends_past_09)
    with pytest.raises(TypeError, match="policy must be callable"):
        branched_rollout(model, "greedy", starts(), 2, ends_past_09)
    with pytest.raises(ValueError, match=r"the policy must return a \[B, act_dim\] tensor for B = 10 rows"):
        branched_rollout(model, lambda obs, g: obs[0], starts(), 2, ends_past_09)
    with pytest.raises(ValueError, match="the buffer stores obs_dim=3 but the model has obs_dim=2"):
        branched_rollout(model, policy, starts(), 2, ends_past_09, buffer=ReplayBuffer(10, 3, ACT))
    assert model.calls == []                 # every refusal so far came before any model step
    with pytest.raises(ValueError, match=r"termination must return a bool tensor \[B\] for B = 10 rows"):
        branched_rollout(model, policy, starts(), 2, lambda o, a, n: n[:3, 0] > 0)


# --- a real DynamicsModel and a real SAC ----------------------------------------------------


def real_parts(device="cpu", obs_dim=11, act_dim=3):
    """A tiny fitted DynamicsModel and a SAC on Hopper's sizes, on random data."""
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(400, obs_dim, generator=g)
    act = torch.rand(400, act_dim, generator=g) * 2 - 1
    next_obs = obs + 0.1 * torch.randn(400, obs_dim, generator=g)
    model = DynamicsModel(obs_dim, act_dim, EnsembleConfig(ensemble_size=3, num_elites=2, hidden_dim=32,
                                                           max_epochs=2), device=device, seed=0)
    model.fit(obs, act, obs.sum(dim=1), next_obs)
    agent = SAC(obs_dim, act_dim, SACConfig(hidden_sizes=(32, 32)), device=device, seed=0)
    start = torch.randn(10_000, obs_dim, generator=g).to(device)
    return model, agent, start


def hopper_like_end(obs, act, next_obs):
    return next_obs[:, 0] > 1.0


def test_a_real_model_and_sac_fill_the_model_buffer_with_the_right_rows():
    model, agent, start = real_parts()
    buffer = ReplayBuffer(30_000, 11, 3)
    stats = branched_rollout(model, agent, start, 3, hopper_like_end,
                             generator=torch.Generator().manual_seed(1), buffer=buffer, disagreement=True)
    n = stats.transitions
    assert len(buffer) == n == sum(stats.rows_per_step) and stats.rows_per_step[0] == 10_000
    assert stats.rows_per_step[0] > stats.rows_per_step[1] > stats.rows_per_step[2] > 0
    obs, act, rew, next_obs, terminated = buffer.transitions()
    assert obs.shape == next_obs.shape == (n, 11) and act.shape == (n, 3)
    assert rew.shape == terminated.shape == (n,)
    assert all(x.device.type == "cpu" and x.dtype == torch.float32 for x in (obs, act, rew, next_obs))
    assert torch.equal(obs[:10_000], start)                               # step 1 starts from start_obs
    assert torch.equal(terminated.bool(), next_obs[:, 0] > 1.0)             # done is the termination rule
    assert act.abs().max() <= 1.0 and act.std() > 0.1                     # tanh-squashed, stochastic
    assert stats.termination_rate == pytest.approx(terminated.sum().item() / 10_000)  # each row ends once
    assert stats.mean_reward == pytest.approx(rew.mean().item(), rel=1e-4, abs=1e-6)
    assert stats.mean_disagreement is not None and stats.mean_disagreement > 0
    assert 1.0 < stats.mean_length < 3.0


def test_a_real_model_and_sac_repeat_exactly_with_the_same_generator_on_the_cpu():
    model, agent, start = real_parts()
    runs = []
    for _ in range(2):
        buffer = ReplayBuffer(30_000, 11, 3)
        branched_rollout(model, agent, start, 3, hopper_like_end, generator=torch.Generator().manual_seed(7),
                         buffer=buffer)
        runs.append(buffer.transitions())
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_rollout_stays_on_the_device():
    model, agent, start = real_parts("cuda")
    buffer = ReplayBuffer(30_000, 11, 3, device="cuda", dtype=torch.bfloat16)
    stats = branched_rollout(model, agent, start, 3, hopper_like_end,
                             generator=torch.Generator(device="cuda").manual_seed(0), buffer=buffer,
                             disagreement=True)
    assert len(buffer) == stats.transitions and stats.rows_per_step[0] == 10_000
    assert all(x.device.type == "cuda" for x in buffer.transitions())
    assert 0.0 < stats.termination_rate < 1.0 and stats.mean_disagreement > 0
    with pytest.raises(ValueError, match="start_obs is on cpu but the model on cuda"):
        branched_rollout(model, agent, start.cpu(), 1, hopper_like_end)
    with pytest.raises(ValueError, match="the buffer is on cpu but the model on cuda"):
        branched_rollout(model, agent, start, 1, hopper_like_end, buffer=ReplayBuffer(10, 11, 3))


# --- reset_rollout: long rollouts from reset states, exactly `transitions` rows ---------------


class Resets:
    """Reset states issued in order: state j is (0, 0.01 j) for even j (terminates at its 2nd step
    under ends_past_09) and (-10, 0.01 j) for odd j (never terminates: only the horizon ends it)."""

    def __init__(self) -> None:
        self.issued: list[torch.Tensor] = []
        self.calls: list[int] = []

    def __call__(self, n: int) -> torch.Tensor:
        j = torch.arange(len(self.issued), len(self.issued) + n)
        states = torch.stack([torch.where(j % 2 == 0, 0.0, -10.0), 0.01 * j], dim=1)
        self.issued.extend(states)
        self.calls.append(n)
        return states


def reset_loop_reference(model, resets, transitions, horizon, slots, termination):
    """reset_rollout one row at a time in plain Python: per step, the slots in order; a slot whose
    rollout ended takes the next reset state (in slot order) before the next step."""
    obs = [resets(1)[0] for _ in range(slots)]
    age = [0] * slots
    rows, lengths = [], []
    while len(rows) < transitions:
        restart = []
        for i in range(min(slots, transitions - len(rows))):
            o = obs[i][None]
            act = policy(o, None)
            next_obs, rew, _ = model.step(o, act)
            done = bool(termination(o, act, next_obs)[0])
            rows.append((o[0], act[0], rew[0], next_obs[0], float(done)))
            age[i] += 1
            obs[i] = next_obs[0]
            if done or age[i] == horizon:
                lengths.append(age[i])
                restart.append(i)
        if len(rows) < transitions:
            for i in restart:
                obs[i], age[i] = resets(1)[0], 0
    return [torch.stack([r[f] for r in rows]) if f < 4 else torch.tensor([r[4] for r in rows])
            for f in range(5)], lengths


@pytest.mark.parametrize(("transitions", "horizon", "parallel"), [(37, 4, 5), (40, 4, None), (7, 100, None),
                                                                  (12, 1, 3)])
def test_reset_rollout_equals_a_python_loop_reference(transitions, horizon, parallel):
    buffer, resets = ReplayBuffer(100, OBS, ACT), Resets()
    stats = reset_rollout(DriftModel(), policy, resets, transitions, horizon, ends_past_09, buffer=buffer,
                          parallel=parallel)
    expected, lengths = reset_loop_reference(DriftModel(), Resets(), transitions, horizon,
                                             parallel or -(-transitions // horizon), ends_past_09)
    for got, want in zip(buffer.transitions(), expected, strict=True):
        assert torch.equal(got, want)
    assert len(buffer) == stats.transitions == sum(stats.rows_per_step) == transitions   # exactly that many
    assert stats.start_states == len(resets.issued) == sum(resets.calls)
    assert stats.k == horizon and max(lengths, default=0) <= horizon
    terminated = int(expected[4].sum())
    assert stats.termination_rate == terminated / stats.start_states
    assert stats.mean_length == transitions / stats.start_states
    assert stats.mean_reward == pytest.approx(expected[2].mean().item(), rel=1e-6)


def test_reset_rollouts_restart_after_termination_and_at_the_horizon():
    buffer, resets = ReplayBuffer(200, OBS, ACT), Resets()
    stats = reset_rollout(DriftModel(), policy, resets, 60, 4, ends_past_09, buffer=buffer, parallel=6)
    obs, act, rew, next_obs, done = buffer.transitions()
    assert len(buffer) == 60 and stats.rows_per_step == (6,) * 10
    # a row never follows a terminated one: x = 1.0 (the state a termination ends in) never is a start
    assert not (obs[:, 0] > 0.9).any() and bool((next_obs[done.bool(), 0] > 0.9).all())
    # never longer than the horizon: from x = -10, x grows by 0.5 a step, so ages 0..3 only
    far = obs[:, 0] < -5
    assert obs[far, 0].max() == -8.5 and bool((obs[far, 0] >= -10).all())
    assert not done[far].any()                              # a time limit is not a termination
    # every row starts either from a reset state or where its slot's previous row ended
    issued = torch.stack(resets.issued)
    for t in range(1, 10):
        for i in range(6):
            row, before = t * 6 + i, (t - 1) * 6 + i
            fresh = bool(done[before]) or bool(obs[before, 0] == -8.5)
            if fresh:
                assert any(torch.equal(obs[row], s) for s in issued)
            else:
                assert torch.equal(obs[row], next_obs[before])
    assert stats.start_states == len(issued) and resets.calls[0] == 6


def test_reset_rollout_with_every_row_terminating_draws_a_fresh_state_per_row():
    resets = Resets()
    stats = reset_rollout(DriftModel(), policy, resets, 10, 50,
                          lambda o, a, n: torch.ones(n.shape[0], dtype=bool), parallel=4)
    assert stats.start_states == 12 and resets.calls == [4, 4, 4]          # 4 + 4 + 2 rows; last 2 unused
    assert stats.rows_per_step == (4, 4, 2) and stats.termination_rate == 10 / 12


def test_reset_rollout_repeats_with_the_same_generator_and_checks_its_arguments():
    def run(seed):
        buffer = ReplayBuffer(200, OBS, ACT)
        reset_rollout(DriftModel(noise=0.3), noisy_policy, Resets(), 50, 8, ends_past_09,
                      generator=torch.Generator().manual_seed(seed), buffer=buffer)
        return buffer.transitions()

    assert all(torch.equal(a, b) for a, b in zip(run(0), run(0), strict=True))
    assert not torch.equal(run(0)[1], run(1)[1])
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match=r"transitions \(the model rows to write\) must be an int >= 1"):
            reset_rollout(DriftModel(), policy, Resets(), bad, 5, ends_past_09)
        with pytest.raises(ValueError, match=r"horizon \(the longest rollout, in steps\) must be an int "
                                             r">= 1"):
            reset_rollout(DriftModel(), policy, Resets(), 5, bad, ends_past_09)
    with pytest.raises(TypeError, match=r"reset_obs must be callable as reset_obs\(n\)"):
        reset_rollout(DriftModel(), policy, starts(), 5, 5, ends_past_09)
    with pytest.raises(ValueError, match=r"reset_obs\(3\) must return \[3, 2\] .* got \[3, 5\]"):
        reset_rollout(DriftModel(), policy, lambda n: torch.zeros(n, 5), 3, 1, ends_past_09)
    with pytest.raises(TypeError, match="reset_obs\\(n\\) must return a torch.Tensor"):
        reset_rollout(DriftModel(), policy, lambda n: [[0.0, 0.0]] * n, 3, 1, ends_past_09)
    with pytest.raises(ValueError, match="the buffer stores obs_dim=3 but the model has obs_dim=2"):
        reset_rollout(DriftModel(), policy, Resets(), 5, 5, ends_past_09, buffer=ReplayBuffer(10, 3, ACT))


def test_a_reset_rollout_of_a_real_model_and_sac_writes_exactly_its_rows():
    model, agent, start = real_parts()
    g = torch.Generator().manual_seed(3)
    buffer = ReplayBuffer(5_000, 11, 3)
    stats = reset_rollout(model, agent, lambda n: 0.1 * torch.randn(n, 11, generator=g), 3_000, 100,
                          hopper_like_end, generator=torch.Generator().manual_seed(1), buffer=buffer)
    assert len(buffer) == stats.transitions == 3_000 and stats.rows_per_step[0] == 30
    assert stats.steps >= 100 and stats.start_states >= 30 and 0 <= stats.termination_rate <= 1
    _, act, _, next_obs, terminated = buffer.transitions()
    assert torch.equal(terminated.bool(), next_obs[:, 0] > 1.0) and act.abs().max() <= 1.0
