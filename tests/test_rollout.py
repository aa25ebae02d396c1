"""The rollout schedule: the official formula, per-env schedules, bad input."""

import pytest

from mbpo_lib.rollout import ROLLOUT_SCHEDULES, Schedule, rollout_schedule


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
