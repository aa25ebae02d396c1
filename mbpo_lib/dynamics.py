"""The dynamics model: a bootstrap ensemble that predicts reward and state change.

:class:`DynamicsModel` learns :math:`p_\\theta(r, \\Delta s \\mid s, a)` with
:math:`\\Delta s = s' - s`, as the paper's code does:

* inputs ``[s, a]`` are standardised by a :class:`~mbpo_lib.models.Normalizer` refitted at
  every fit; targets ``[r, s' - s]`` are not normalised;
* each fit holds out ``min(20 %, 5000)`` rows (redrawn every fit), gives each member its own
  bootstrap of the rest (indices drawn with replacement, reshuffled every epoch) and trains all
  members at once;
* early stopping: after each epoch a member *improves* when its holdout MSE falls by more than
  1 % of its best so far; training stops once no member has improved for more than 5 epochs;
  each member then gets back its **own** best weights;
* the elites are the 5 members with the lowest holdout MSE;
* the network and its optimiser are warm-started across fits;
* :meth:`DynamicsModel.step` draws one elite per row uniformly at random and samples
  :math:`\\hat y = \\mu + \\sigma \\odot \\xi,\\ \\xi \\sim \\mathcal{N}(0, I)` from it (or takes
  :math:`\\mu` when deterministic), returning :math:`s + \\widehat{\\Delta s}` and :math:`\\hat r`.

``EnsembleConfig(matmul_precision="medium")`` lets the matrix products of fitting and
prediction run in a faster format (:mod:`mbpo_lib.precision`); the default keeps float32.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from .config import EnsembleConfig
from .models import GaussianEnsemble, Normalizer
from .precision import matmul_precision


class TransitionSource(Protocol):
    """Anything :meth:`DynamicsModel.fit` can read transitions from (a replay buffer)."""

    def transitions(self) -> tuple[torch.Tensor, ...]:
        """``(obs, act, rew, next_obs, ...)`` of every stored transition, rows aligned."""
        ...


@dataclass
class FitReport:
    """What one :meth:`DynamicsModel.fit` did.

    ``train_loss[epoch][member]`` is the member's mean training loss (the paper's loss, before
    weight decay) over that epoch; ``holdout_mse[epoch][member]`` its holdout MSE after it.
    ``best_epoch[member]`` is the epoch whose weights the member ends with (0-based) and
    ``final_holdout_mse[member]`` the holdout MSE of those weights. ``stopped_early`` is True
    when the paper's rule ended the fit (no member improved for more than ``patience`` epochs)
    and False when ``max_epochs`` cut it short.
    """

    epochs: int
    stopped_early: bool
    n_train: int
    n_holdout: int
    train_loss: list[list[float]] = field(repr=False)
    holdout_mse: list[list[float]] = field(repr=False)
    best_epoch: list[int]
    final_holdout_mse: list[float]
    elites: list[int]
    seconds: float

    @property
    def elite_holdout_mse(self) -> float:
        """Mean holdout MSE of the elites: the one number to watch across fits."""
        return sum(self.final_holdout_mse[i] for i in self.elites) / len(self.elites)


def improved_members(best: torch.Tensor, current: torch.Tensor, threshold: float) -> torch.Tensor:
    """The early-stopping test, per member: relative gain ``(best - current) / best > threshold``."""
    return (best - current) / best > threshold


def _draw(kind: str, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
          high: int = 0) -> torch.Tensor:
    """A random tensor on ``device`` from ``generator`` (drawn on the generator's own device)."""
    where = device if generator is None else generator.device
    if kind == "randint":
        out = torch.randint(high, shape, generator=generator, device=where)
    else:
        out = torch.randn(shape, generator=generator, device=where)
    return out.to(device)


def make_optimizer(network: GaussianEnsemble, lr: float) -> torch.optim.Adam:
    """Adam over the ensemble, with the paper's L2 weight decay applied by Adam itself.

    Each layer's weights form one parameter group with that layer's ``weight_decay``: Adam then
    adds ``wd * W`` to the gradient, which is exactly the gradient of the loss term
    ``wd * ||W||^2 / 2`` (:meth:`GaussianEnsemble.weight_decay_loss`), so the fit loop can leave
    that term out of its loss and save its forward and backward passes. Biases and the
    log-variance bounds are not decayed. Adam runs as one fused kernel per group where this torch
    has one for the device (CUDA; the CPU since torch 2.4), else as the default implementation.
    """
    weights = [layer.weight for layer in network.layers]
    groups = [{"params": [weight], "weight_decay": wd}
              for weight, wd in zip(weights, network.weight_decays, strict=True)]
    groups.append({"params": [p for p in network.parameters() if all(p is not w for w in weights)],
                   "weight_decay": 0.0})
    try:
        return torch.optim.Adam(groups, lr=lr, fused=True)
    except RuntimeError:  # no fused Adam for this device in this torch
        return torch.optim.Adam(groups, lr=lr)


def check_finite(name: str, x: torch.Tensor) -> None:
    """Refuse NaN or inf in ``x [N, d]`` with an error naming ``name``, how many and the first row."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        rows = bad.reshape(x.shape[0], -1).any(dim=1).nonzero().flatten()
        raise ValueError(f"{name} holds {int(bad.sum())} NaN or inf values in {rows.numel()} rows "
                         f"(first: row {int(rows[0])}); the model takes only finite values")


class DynamicsModel:
    """Predicts reward and next state from ``(s, a)`` with a bootstrap ensemble (module docstring).

    Args:
        obs_dim, act_dim: sizes of the observation and action vectors.
        config: an :class:`~mbpo_lib.config.EnsembleConfig` (the paper's settings by default).
        device: where the network, the data it is fitted on and its predictions live.
        seed: seeds the weight initialisation and the model's own generator, which fits use when
            they are given none.
    """

    def __init__(self, obs_dim: int, act_dim: int, config: EnsembleConfig | None = None,
                 device: torch.device | str | None = None, seed: int = 0) -> None:
        self.config = (config or EnsembleConfig()).validate()
        for name, value in (("obs_dim", obs_dim), ("act_dim", act_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        c = self.config
        init_generator = torch.Generator().manual_seed(seed)  # same weights on every device
        self.network = GaussianEnsemble(
            obs_dim + act_dim, obs_dim + 1, c.ensemble_size, c.hidden_dim, c.num_layers, c.weight_decays,
            c.init_max_logvar, c.init_min_logvar, c.logvar_bound_coef, generator=init_generator,
        ).to(self.device)
        self.normalizer = Normalizer(obs_dim + act_dim).to(self.device)
        self.optimizer = make_optimizer(self.network, c.lr)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._elites = torch.arange(c.num_elites, device=self.device)
        self.fitted = False

    @property
    def elites(self) -> list[int]:
        """Indices of the members used for prediction (lowest holdout MSE at the last fit)."""
        return self._elites.tolist()

    # --- data ------------------------------------------------------------------------------

    def _as_rows(self, x: torch.Tensor | Any, dim: int, name: str) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        if x.dim() != 2 or x.shape[1] != dim:
            raise ValueError(f"{name} must be [N, {dim}], got {list(x.shape)}")
        return x

    def make_dataset(self, obs, act, rew, next_obs) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs ``[s, a]`` ``[N, obs+act]`` and targets ``[r, s' - s]`` ``[N, 1+obs]``."""
        obs = self._as_rows(obs, self.obs_dim, "obs")
        act = self._as_rows(act, self.act_dim, "act")
        next_obs = self._as_rows(next_obs, self.obs_dim, "next_obs")
        rew = torch.as_tensor(rew, dtype=torch.float32, device=self.device).reshape(-1, 1)
        if not obs.shape[0] == act.shape[0] == rew.shape[0] == next_obs.shape[0]:
            raise ValueError(f"obs, act, rew and next_obs must have the same rows, got {obs.shape[0]}, "
                             f"{act.shape[0]}, {rew.shape[0]} and {next_obs.shape[0]}")
        for name, x in (("obs", obs), ("act", act), ("rew", rew), ("next_obs", next_obs)):
            check_finite(name, x)
        return torch.cat([obs, act], dim=-1), torch.cat([rew, next_obs - obs], dim=-1)

    # --- fitting ---------------------------------------------------------------------------

    def fit(self, obs: torch.Tensor | TransitionSource, act: torch.Tensor | None = None,
            rew: torch.Tensor | None = None, next_obs: torch.Tensor | None = None,
            generator: torch.Generator | None = None) -> FitReport:
        """Fit the ensemble on transitions (or on a buffer passed as the only argument)."""
        if act is None and rew is None and next_obs is None:
            if hasattr(obs, "__len__") and len(obs) == 0:
                raise ValueError("the transition source is empty: fit needs stored transitions "
                                 "(add some before fitting the model)")
            obs, act, rew, next_obs = obs.transitions()[:4]
        elif act is None or rew is None or next_obs is None:
            raise TypeError("fit takes either a transition source alone or obs, act, rew and next_obs")
        inputs, targets = self.make_dataset(obs, act, rew, next_obs)
        return self.fit_arrays(inputs, targets, generator)

    def fit_arrays(self, inputs: torch.Tensor, targets: torch.Tensor,
                   generator: torch.Generator | None = None) -> FitReport:
        """Fit on ready-made ``inputs [N, obs+act]`` and ``targets [N, 1+obs]`` (see :meth:`fit`).

        A member whose training loss turns NaN or inf stops the fit with a ``FloatingPointError``
        naming the member and the epoch; every member then keeps the weights (and optimiser
        state) it had before that epoch, the last ones known to be good.
        """
        start = time.perf_counter()
        c, g, E = self.config, generator or self.generator, self.config.ensemble_size
        inputs = self._as_rows(inputs, self.obs_dim + self.act_dim, "inputs")
        targets = self._as_rows(targets, self.obs_dim + 1, "targets")
        if inputs.shape[0] != targets.shape[0]:
            raise ValueError(f"inputs and targets must have the same rows, got {inputs.shape[0]} "
                             f"and {targets.shape[0]}")
        check_finite("inputs", inputs)
        check_finite("targets", targets)
        n = inputs.shape[0]
        n_holdout = min(int(n * c.holdout_ratio), c.max_holdout)
        if n_holdout < 1:
            raise ValueError(f"fit needs enough transitions for a holdout set: {n} rows give "
                             f"{n_holdout} holdout rows at holdout_ratio={c.holdout_ratio}")
        perm = torch.randperm(n, generator=g, device=g.device).to(self.device)
        holdout_in, holdout_tg = inputs[perm[:n_holdout]], targets[perm[:n_holdout]]
        train_in, train_tg = inputs[perm[n_holdout:]], targets[perm[n_holdout:]]
        n_train = train_in.shape[0]
        self.normalizer.fit(train_in)
        train_in, holdout_in = self.normalizer(train_in), self.normalizer(holdout_in)

        bootstrap = _draw("randint", (E, n_train), g, self.device, high=n_train)
        batches = math.ceil(n_train / c.batch_size)
        layer_params = [p for layer in self.network.layers for p in (layer.weight, layer.bias)]
        all_params = list(self.network.parameters())
        best_params = [p.detach().clone() for p in layer_params]
        best = torch.full((E,), 1e10, device=self.device)
        best_epoch = torch.zeros(E, dtype=torch.long, device=self.device)
        train_history, holdout_history = [], []
        epoch, since_update, stopped_early = 0, 0, False
        while c.max_epochs is None or epoch < c.max_epochs:
            last_good = ([p.detach().clone() for p in all_params], copy.deepcopy(self.optimizer.state_dict()))
            shuffle = torch.argsort(_draw("randn", (E, n_train), g, self.device), dim=1)
            order = torch.gather(bootstrap, 1, shuffle)
            loss_sum = torch.zeros(E, device=self.device)
            for b in range(batches):
                rows = order[:, b * c.batch_size:(b + 1) * c.batch_size]      # [E, batch]
                loss_sum += self.train_step(train_in[rows], train_tg[rows])
            mse = self._holdout_mse(holdout_in, holdout_tg)
            finite = torch.isfinite(loss_sum) & torch.isfinite(mse)
            if not bool(finite.all()):
                self._restore(all_params, *last_good)
                raise FloatingPointError(
                    f"the training loss or holdout MSE of member(s) {(~finite).nonzero().flatten().tolist()} "
                    f"became NaN or inf in epoch {epoch} of this fit; every member keeps its weights from "
                    f"before that epoch (lower EnsembleConfig.lr or check the data's scale)")
            improved = improved_members(best, mse, c.improvement_threshold)
            with torch.no_grad():
                for saved, param in zip(best_params, layer_params, strict=True):
                    saved[improved] = param[improved]
            best = torch.where(improved, mse, best)
            best_epoch = torch.where(improved, epoch, best_epoch)
            train_history.append((loss_sum / batches).tolist())
            holdout_history.append(mse.tolist())
            epoch += 1
            since_update = 0 if bool(improved.any()) else since_update + 1
            if since_update > c.patience:
                stopped_early = True
                break
        with torch.no_grad():  # each member gets back its own best weights
            for saved, param in zip(best_params, layer_params, strict=True):
                param.copy_(saved)
        final = self._holdout_mse(holdout_in, holdout_tg)
        self._elites = torch.argsort(final)[: c.num_elites]
        self.fitted = True
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return FitReport(
            epochs=epoch, stopped_early=stopped_early, n_train=n_train, n_holdout=n_holdout,
            train_loss=train_history, holdout_mse=holdout_history, best_epoch=best_epoch.tolist(),
            final_holdout_mse=final.tolist(), elites=self.elites, seconds=time.perf_counter() - start,
        )

    def train_step(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One Adam step of every member on its own minibatch: what :meth:`fit` runs per batch.

        ``inputs [E, B, obs+act]`` (already normalised) and ``targets [E, B, 1+obs]``; returns
        each member's loss ``[E]`` (detached, before the step). The loss is the members' summed
        paper loss plus the log-variance bound penalty; the weight decay is not in it, Adam adds
        its gradient (:func:`make_optimizer`).
        """
        self.network.train()
        with self._matmul_precision():
            mean, logvar = self.network(inputs)
            member = self.network.member_losses(mean, logvar, targets)
            loss = member.sum() + self.network.bound_penalty()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        self.optimizer.step()
        return member.detach()

    def _matmul_precision(self):
        """The context that sets ``config.matmul_precision`` for this model's matrix products."""
        return matmul_precision(self.config.matmul_precision, self.device)

    def _restore(self, params: list[torch.Tensor], saved: list[torch.Tensor],
                 optimizer_state: dict[str, Any]) -> None:
        with torch.no_grad():
            for value, param in zip(saved, params, strict=True):
                param.copy_(value)
        self.optimizer.load_state_dict(optimizer_state)

    @torch.no_grad()
    def _holdout_mse(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.network.eval()
        with self._matmul_precision():
            mean, _ = self.network(inputs)
        return self.network.member_mse(mean, targets)

    # --- prediction ------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's Gaussian over ``[r, s' - s]``: ``(mean, logvar)``, each ``[E, B, 1+obs]``."""
        x = torch.cat([self._as_rows(obs, self.obs_dim, "obs"), self._as_rows(act, self.act_dim, "act")], -1)
        with self._matmul_precision():
            return self.network(self.normalizer(x))

    @torch.no_grad()
    def step(self, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator | None = None,
             deterministic: bool = False, disagreement: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One model step for a batch: ``(next_obs [B, obs], rew [B], info)``.

        Each row uses one elite drawn uniformly at random and only that member is computed
        (rows grouped by member). ``deterministic`` returns the chosen elite's mean instead of a
        sample. ``info["member"]`` is the member used per row; with ``disagreement=True`` all
        elites are run and ``info["disagreement"]`` is, per row, the standard deviation across
        elites of the predicted mean, averaged over ``[r, s' - s]``'s dimensions.
        ``generator`` (on the model's device, or on the CPU) makes the draws repeatable.

        Refused with ``ValueError``: an unfitted model (``fitted`` False), rows of ``obs`` and
        ``act`` that differ in number, and NaN or inf in either (checked with one reduction).
        """
        obs = self._as_rows(obs, self.obs_dim, "obs")
        act = self._as_rows(act, self.act_dim, "act")
        if obs.shape[0] != act.shape[0]:
            raise ValueError(f"DynamicsModel.step: obs has {obs.shape[0]} rows and act {act.shape[0]}; "
                             "step takes one action per observation")
        if not self.fitted:
            raise ValueError("DynamicsModel.step: the model has not been fitted (call fit first, or "
                             "load_state_dict of a fitted model)")
        raw = torch.cat([obs, act], dim=-1)
        if not bool(torch.isfinite(raw).all()):   # one reduction and one sync for both inputs
            check_finite("DynamicsModel.step: obs", obs)
            check_finite("DynamicsModel.step: act", act)
        x = self.normalizer(raw)
        rows = x.shape[0]
        pick = _draw("randint", (rows,), generator, self.device, high=self._elites.shape[0])
        member = self._elites[pick]
        info: dict[str, torch.Tensor] = {"member": member}
        self.network.eval()
        with self._matmul_precision():
            if disagreement:
                means, logvars = self.network(x, self._elites)              # [elites, B, out]
                index = torch.arange(rows, device=self.device)
                mean, logvar = means[pick, index], logvars[pick, index]
                info["disagreement"] = means.std(dim=0, unbiased=False).mean(dim=-1)
            else:
                mean, logvar = self.network.forward_per_row(x, member)
        if not deterministic:
            mean = mean + torch.exp(0.5 * logvar) * _draw("randn", tuple(mean.shape), generator, self.device)
        return obs + mean[:, 1:], mean[:, 0], info

    # --- persistence -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, normaliser, optimiser, elites, RNG."""
        return {
            "network": self.network.state_dict(), "normalizer": self.normalizer.state_dict(),
            "optimizer": self.optimizer.state_dict(), "elites": self._elites.clone(),
            "generator": self.generator.get_state(), "fitted": self.fitted,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.normalizer.load_state_dict(state["normalizer"])
        self.optimizer.load_state_dict(state["optimizer"])
        elites = torch.as_tensor(state["elites"], dtype=torch.long, device=self.device)
        if elites.shape != (self.config.num_elites,) or not bool(
                ((elites >= 0) & (elites < self.config.ensemble_size)).all()):
            raise ValueError(f"elites {elites.tolist()} do not fit an ensemble of "
                             f"{self.config.ensemble_size} with {self.config.num_elites} elites")
        self._elites = elites
        self.generator.set_state(state["generator"])
        self.fitted = bool(state["fitted"])
