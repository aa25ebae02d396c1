"""Model rollouts: how long they are (the schedule) and, with the training loop, how they run.

The rollout length k grows with training as the model improves (``rollout_schedule``); the
official per-environment schedules are in :data:`ROLLOUT_SCHEDULES`.
"""

from __future__ import annotations

from typing import NamedTuple


class Schedule(NamedTuple):
    """``[min_epoch, max_epoch, min_k, max_k]``: k = min_k up to min_epoch, then linear in the
    epoch up to max_k at max_epoch, then max_k."""

    min_epoch: int
    max_epoch: int
    min_k: int
    max_k: int


# From the authors' official configuration files (see the series' mbpo-reference.md). Where the
# paper's appendix differs (Hopper), both are given; the official file is the default.
ROLLOUT_SCHEDULES: dict[str, Schedule] = {
    "Hopper-v5": Schedule(20, 150, 1, 15),
    "Hopper-v5 (paper appendix)": Schedule(20, 100, 1, 15),
    "Walker2d-v5": Schedule(20, 150, 1, 1),
    "HalfCheetah-v5": Schedule(20, 150, 1, 1),
    "Ant-v5": Schedule(20, 100, 1, 25),
    "Humanoid-v5": Schedule(20, 300, 1, 25),
    "InvertedPendulum-v5": Schedule(1, 15, 1, 1),
    "InvertedDoublePendulum-v5": Schedule(1, 15, 1, 1),
}


def rollout_schedule(epoch: int, schedule: tuple[int, int, int, int]) -> int:
    r"""The rollout length k at ``epoch`` (as the official code computes it):

    .. math:: k = \lfloor k_0 + p\,(k_1 - k_0) \rfloor,\quad p = \min(1, \max(0, e - e_0) / (e_1 - e_0))

    for ``schedule = (e0, e1, k0, k1)``. (The method guide's version hard-codes e1 = 100; the
    official schedules differ per environment, e.g. Hopper's ends at epoch 150.)
    """
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
    min_epoch, max_epoch, min_k, max_k = Schedule(*schedule)
    if not 1 <= min_k <= max_k:
        raise ValueError(f"schedule needs 1 <= min_k <= max_k (k < 1 is no rollout), got "
                         f"min_k={min_k}, max_k={max_k}")
    if not 0 <= min_epoch < max_epoch:
        raise ValueError(f"schedule needs 0 <= min_epoch < max_epoch, got {min_epoch}, {max_epoch}")
    progress = min(1.0, max(0.0, (epoch - min_epoch) / (max_epoch - min_epoch)))
    return int(min_k + progress * (max_k - min_k))
