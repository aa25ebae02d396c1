"""The probabilistic MLP and its batched ensemble: the dynamics model's network.

Each member :math:`i` of the ensemble maps an input :math:`x` to a diagonal Gaussian

.. math::  p_i(y \\mid x) = \\mathcal{N}\\big(\\mu_i(x), \\operatorname{diag}\\,\\sigma_i^2(x)\\big),

with 4 hidden layers of 200 SiLU units and one linear head giving :math:`\\mu` and the raw
log-variance. All E members run as one network: every layer holds weights ``[E, in, out]`` and
applies them with one batched matrix multiply (``torch.baddbmm``); no Python loop over members.

The log-variance is kept inside learned soft bounds (Chua et al. 2018, as in the MBPO code)::

    logvar = max_logvar - softplus(max_logvar - raw)
    logvar = min_logvar + softplus(logvar - min_logvar)

so it can never run off to :math:`\\pm\\infty` where the data are sparse (up to a tiny lift
of the top, see :meth:`GaussianEnsemble.bound_logvar`); ``max_logvar`` starts at
+0.5 and ``min_logvar`` at -10, both trained, with a small penalty pulling them together.
``E = 1`` is the single probabilistic MLP of notebook 01.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# The paper's per-layer L2 weight decay, input layer to output layer (4 hidden layers).
PAPER_WEIGHT_DECAYS = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)
# Rows per member in one slice of a large prediction on the CPU (GaussianEnsemble.forward_per_row):
# [5, 1024, 200] float32 activations are 4 MB, about the cache of a core; 256 to 1024 rows all ran
# 10-20 % faster than the whole [5, 20000, 200] batch at once, 4096 and more no faster (2-core AMD
# EPYC, torch 2.13).
CPU_ROWS_PER_SLICE = 1024


class EnsembleLinear(nn.Module):
    """E independent affine maps applied at once: ``y[e] = x[e] @ W[e] + b[e]``.

    weight ``[E, in, out]``, bias ``[E, 1, out]``; input ``[E, B, in]`` -> output ``[E, B, out]``.
    Init as the paper's code: weights from a normal with std ``1 / (2 sqrt(in))`` truncated at
    two standard deviations, biases zero.
    """

    def __init__(self, in_features: int, out_features: int, ensemble_size: int,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features),
                            ("ensemble_size", ensemble_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.in_features, self.out_features, self.ensemble_size = in_features, out_features, ensemble_size
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(ensemble_size, 1, out_features))
        std = 1.0 / (2.0 * math.sqrt(in_features))
        with torch.no_grad():
            nn.init.trunc_normal_(self.weight, std=std, a=-2 * std, b=2 * std, generator=generator)

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """``x [m, B, in]`` through members ``members`` (all E when None, then m = E)."""
        weight, bias = self.member_params(members)
        return torch.baddbmm(bias, x, weight)

    def member_params(self, members: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight [m, in, out], bias [m, 1, out])`` of members ``members`` (all E when None)."""
        if members is None:
            return self.weight, self.bias
        return self.weight[members], self.bias[members]

    def extra_repr(self) -> str:
        return f"ensemble_size={self.ensemble_size}, in={self.in_features}, out={self.out_features}"


def gaussian_nll(mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Elementwise negative log-likelihood of ``target`` under ``N(mean, exp(logvar))``:

    .. math:: -\\log p(y) = \\tfrac12\\big[(y-\\mu)^2 e^{-\\log\\sigma^2} + \\log\\sigma^2 + \\log 2\\pi\\big]
    """
    return 0.5 * ((target - mean) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi))


class GaussianEnsemble(nn.Module):
    """E probabilistic MLPs as one batched network (see the module docstring for the math).

    Args:
        in_dim, out_dim: sizes of the (normalised) input and of the predicted target.
        ensemble_size: E, the number of members (7 in the paper; 1 for a single model).
        hidden_dim, num_layers: width and number of hidden layers (200 and 4 in the paper).
        weight_decays: one L2 coefficient per linear layer, input to output
            (``num_layers + 1`` values); ``None`` takes the paper's for 4 hidden layers.
        init_max_logvar, init_min_logvar: the soft bounds' starting values.
        logvar_bound_coef: weight of the penalty ``sum(max_logvar) - sum(min_logvar)``.
        generator: seeds the weight initialisation.

    ``forward(x)`` takes ``x [E, B, in]`` (one batch per member) or ``x [B, in]`` (the same batch
    for every member) and returns ``(mean, logvar)``, each ``[E, B, out]``.
    """

    def __init__(self, in_dim: int, out_dim: int, ensemble_size: int = 7, hidden_dim: int = 200,
                 num_layers: int = 4, weight_decays: Sequence[float] | None = None,
                 init_max_logvar: float = 0.5, init_min_logvar: float = -10.0,
                 logvar_bound_coef: float = 0.01, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
        if weight_decays is None:
            if num_layers != len(PAPER_WEIGHT_DECAYS) - 1:
                raise ValueError(f"the paper's weight decays are for 4 hidden layers; with num_layers="
                                 f"{num_layers} pass weight_decays with {num_layers + 1} values")
            weight_decays = PAPER_WEIGHT_DECAYS
        weight_decays = tuple(float(w) for w in weight_decays)
        if len(weight_decays) != num_layers + 1 or any(w < 0 for w in weight_decays):
            raise ValueError(f"weight_decays needs {num_layers + 1} non-negative values (one per "
                             f"linear layer), got {weight_decays}")
        if not init_min_logvar < init_max_logvar:
            raise ValueError(f"init_min_logvar ({init_min_logvar}) must be below init_max_logvar "
                             f"({init_max_logvar})")
        self.in_dim, self.out_dim, self.ensemble_size = in_dim, out_dim, ensemble_size
        self.weight_decays = weight_decays
        self.logvar_bound_coef = float(logvar_bound_coef)
        sizes = [in_dim] + [hidden_dim] * num_layers + [2 * out_dim]
        self.layers = nn.ModuleList(
            EnsembleLinear(a, b, ensemble_size, generator) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.max_logvar = nn.Parameter(torch.full((out_dim,), float(init_max_logvar)))
        self.min_logvar = nn.Parameter(torch.full((out_dim,), float(init_min_logvar)))

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and bounded log-variance, each ``[m, B, out]``.

        ``x`` is ``[m, B, in]`` or ``[B, in]`` (shared by all m members). ``members`` (a long
        tensor of m member indices) runs only those members; None runs all E.
        """
        m = self.ensemble_size if members is None else members.shape[0]
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(m, -1, -1)
        if x.dim() != 3 or x.shape[0] != m or x.shape[-1] != self.in_dim:
            raise ValueError(f"expected input [{m}, B, {self.in_dim}] or [B, {self.in_dim}], "
                             f"got {list(x.shape)}")
        return self._split(self._layers_out(x, self._member_params(members)))

    def _member_params(self, members: torch.Tensor | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's ``(weight, bias)`` for the members run (all E when None)."""
        return [layer.member_params(members) for layer in self.layers]

    def _layers_out(self, x: torch.Tensor, params: list[tuple[torch.Tensor, torch.Tensor]],
                    out: torch.Tensor | None = None) -> torch.Tensor:
        """The raw last-layer output ``[m, B, 2 out]`` (mean, then raw log-variance), written into
        ``out`` when given."""
        # Without autograd (prediction, holdout scores) nothing keeps the pre-activation, so SiLU
        # overwrites it: one large buffer less per layer, which matters for 100K-row rollouts.
        inplace = not torch.is_grad_enabled()
        h = x
        for weight, bias in params[:-1]:
            h = F.silu(torch.baddbmm(bias, h, weight), inplace=inplace)
        weight, bias = params[-1]
        return torch.baddbmm(bias, h, weight, out=out)   # out=None: a new tensor

    def _split(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw_logvar = raw.chunk(2, dim=-1)
        return mean, self.bound_logvar(raw_logvar)

    def bound_logvar(self, raw: torch.Tensor) -> torch.Tensor:
        """The soft bounds: smooth clamping of ``raw`` to about ``(min_logvar, max_logvar)``.

        The lower bound holds exactly; the second softplus can lift the top above ``max_logvar``
        by at most ``log(1 + exp(min_logvar - max_logvar))`` (3e-5 at the initial bounds, more
        once training brings the bounds closer together).
        """
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw)
        return self.min_logvar + F.softplus(logvar - self.min_logvar)

    def forward_per_row(self, x: torch.Tensor, member: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row of ``x [B, in]`` through its own member ``member [B]``; ``([B, out], [B, out])``.

        Only the chosen member is computed for a row: rows are grouped by member into a padded
        ``[m, n_max, in]`` batch (m = distinct members used) and run in one batched forward,
        about E times less work than running every member on every row. On the CPU without
        autograd the padded batch goes through in slices of :data:`CPU_ROWS_PER_SLICE` rows per
        member, so each layer's activations stay in the cache instead of streaming 80 MB per
        layer through memory for 100,000 rows (each row meets the same products; the tests check
        that the result does not change).
        """
        if member.shape != x.shape[:1]:
            raise ValueError(f"member must be [B] = [{x.shape[0]}], got {list(member.shape)}")
        used, group = torch.unique(member, return_inverse=True)   # group: row -> 0..m-1
        order = torch.argsort(group, stable=True)
        counts = torch.bincount(group, minlength=used.shape[0])
        starts = torch.cumsum(counts, 0) - counts
        sorted_group = group[order]
        slot = torch.arange(x.shape[0], device=x.device) - starts[sorted_group]
        n_max = int(counts.max()) if x.shape[0] else 0
        padded = x.new_zeros(used.shape[0], n_max, x.shape[-1])
        padded[sorted_group, slot] = x[order]
        if x.device.type == "cpu" and not torch.is_grad_enabled() and n_max > CPU_ROWS_PER_SLICE:
            params = self._member_params(used)
            raw = padded.new_empty(used.shape[0], n_max, 2 * self.out_dim)
            for start in range(0, n_max, CPU_ROWS_PER_SLICE):
                rows = slice(start, start + CPU_ROWS_PER_SLICE)
                self._layers_out(padded[:, rows], params, out=raw[:, rows])
            mean, logvar = self._split(raw)
        else:
            mean, logvar = self.forward(padded, used)
        out_mean = torch.empty(x.shape[0], self.out_dim, dtype=mean.dtype, device=x.device)
        out_logvar = torch.empty_like(out_mean)
        out_mean[order] = mean[sorted_group, slot]
        out_logvar[order] = logvar[sorted_group, slot]
        return out_mean, out_logvar

    # --- losses ---------------------------------------------------------------------------

    @staticmethod
    def member_losses(mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The paper's training loss per member, ``[E]``: the mean over batch and output
        dimensions of ``(mu - y)^2 exp(-logvar) + logvar`` (twice the Gaussian NLL, less log 2 pi).
        ``target`` is ``[E, B, out]`` or ``[B, out]``."""
        return ((mean - target) ** 2 * torch.exp(-logvar) + logvar).mean(dim=(-2, -1))

    @staticmethod
    def member_mse(mean: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the mean prediction per member, ``[E]`` (holdout and elites)."""
        return ((mean - target) ** 2).mean(dim=(-2, -1))

    def bound_penalty(self) -> torch.Tensor:
        """``coef * (sum(max_logvar) - sum(min_logvar))``: keeps the bounds from drifting apart."""
        return self.logvar_bound_coef * (self.max_logvar.sum() - self.min_logvar.sum())

    def weight_decay_loss(self) -> torch.Tensor:
        """``sum_l wd_l * ||W_l||^2 / 2`` over every member's weights (biases are not decayed)."""
        return sum(wd * 0.5 * (layer.weight ** 2).sum()
                   for wd, layer in zip(self.weight_decays, self.layers, strict=True))

    def loss(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The scalar the optimiser minimises: members' losses summed, plus the bound penalty
        and the weight decay. ``x [E, B, in]`` or ``[B, in]`` (shared by every member) and
        ``target [E, B, out]`` or ``[B, out]``.

        (:meth:`DynamicsModel.fit <mbpo_lib.dynamics.DynamicsModel.fit>` leaves the weight decay
        out of its loss and lets Adam add its gradient ``wd * W`` instead: the same update, cheaper.)
        """
        mean, logvar = self.forward(x)
        members = self.member_losses(mean, logvar, target).sum()
        return members + self.bound_penalty() + self.weight_decay_loss()


class Normalizer(nn.Module):
    """Standardises inputs with the mean and std of the data it was last fitted on.

    ``transform(x) = (x - mean) / std``; a dimension whose std is below ``1e-12`` (a constant
    input) is divided by 1 instead. The statistics are buffers: they move with ``.to(device)``
    and are saved in ``state_dict``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: torch.Tensor) -> Normalizer:
        if x.dim() != 2 or x.shape[1] != self.dim or x.shape[0] < 1:
            raise ValueError(f"fit needs data [N >= 1, {self.dim}], got {list(x.shape)}")
        x = x.to(self.mean.device, self.mean.dtype)
        std = x.std(dim=0, unbiased=False)
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(torch.where(std < 1e-12, torch.ones_like(std), std))
        return self

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    forward = transform
