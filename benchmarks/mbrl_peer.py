"""The peer of the dynamics-model benchmarks: mbrl-lib 0.2.0's ensemble at the paper's sizes.

Both ensemble benchmarks build it here, so they measure the same network: 7 Gaussian MLPs of
4 x 200 SiLU units with learned log-variance bounds, inputs of Hopper's size (obs 11 + act 3),
outputs reward + delta-state, one random member per row ("random_model").
"""

from __future__ import annotations

import torch

OBS, ACT, MEMBERS, ELITES, HIDDEN, LAYERS = 11, 3, 7, 5, 200, 4


def mbrl_model(device: torch.device, seed: int = 0):
    """mbrl-lib's ``OneDTransitionRewardModel`` over a ``GaussianMLP`` of the sizes above."""
    import mbrl.models

    torch.manual_seed(seed)
    network = mbrl.models.GaussianMLP(
        OBS + ACT, OBS + 1, device, num_layers=LAYERS, ensemble_size=MEMBERS, hid_size=HIDDEN,
        propagation_method="random_model", learn_logvar_bounds=True,
        activation_fn_cfg={"_target_": "torch.nn.SiLU"},
    )
    return mbrl.models.OneDTransitionRewardModel(network, target_is_delta=True, normalize=True,
                                                 learned_rewards=True, num_elites=ELITES)
