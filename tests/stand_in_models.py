"""Stand-in dynamics models with a known k-step error, shared by the theory and widget tests."""

import torch


class DriftModel:
    """s' = s + a + bias, deterministic: its k-step error is k * |bias| exactly."""

    device = torch.device("cpu")

    def __init__(self, bias):
        self.bias = torch.as_tensor(bias)

    def step(self, obs, act, generator=None, deterministic=False):
        return obs + act + self.bias, torch.zeros(obs.shape[0]), {}
