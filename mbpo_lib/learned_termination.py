r"""A learned termination rule: a classifier of "this transition ends the episode".

For a task whose termination rule you do not know, MBPO can learn it from the real data, next to
the dynamics model. :class:`TerminationClassifier` models

.. math:: p_\phi(d = 1 \mid s') = \sigma\big(f_\phi(\bar s')\big),

an MLP :math:`f_\phi` on the standardised next observation :math:`\bar s'` (Gymnasium decides
``terminated`` on the state after the step, which the next observation stands for; in a model
rollout :math:`s'` is the model's prediction, so the imagined row ends where the imagined state
looks terminal). It is fitted on the real transitions' ``terminated`` flags only: time-limit
truncations are never stored as terminal, so they are never learned as one.

Terminal rows are rare (a few per episode of hundreds of steps), so the loss is the
class-weighted binary cross-entropy

.. math:: \mathcal{L} = -\frac{1}{N}\sum_i \big[w\,d_i \log p_i + (1 - d_i)\log(1 - p_i)\big],
          \quad w = N_0 / N_1,

(:math:`N_0, N_1`: non-terminal and terminal training rows), which weighs both classes equally:
without it, "never terminates" is 97 % accurate on Hopper's random-policy data and useless.
Each fit holds out ``min(holdout_ratio * N, max_holdout)`` rows, stratified (terminal and other
rows in the same proportion), trains with early stopping on the holdout's weighted loss
(``patience`` epochs without a 1 % gain, at most ``max_epochs``) and keeps the best weights;
the network is warm-started across fits like the dynamics model. Each :class:`TerminationFitReport`
gives the holdout's precision and recall at the rollout's threshold: precision is the share of
predicted terminations that are real, recall the share of real terminations caught. A missed
termination (low recall) lets a rollout walk on past the end of an episode, into states the real
task never continues from; a false one (low precision) cuts rollouts short and tells the critic
not to bootstrap where it should.

A rollout ends a row where :math:`p_\phi(d = 1 \mid s') \ge` ``threshold`` (0.5 by default;
``MBPOConfig.termination_threshold``). Before any terminal row has been seen, nothing is
predicted terminal.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .models import Normalizer


@dataclass(frozen=True)
class TerminationFitReport:
    """What one :meth:`TerminationClassifier.fit` did.

    ``precision`` and ``recall`` are measured on the holdout at the classifier's threshold
    (NaN where undefined: no predicted or no real terminal row in the holdout);
    ``balanced_accuracy`` is the mean of the recall of terminal and of other rows. ``trained``
    is False when the training rows held no terminal row (nothing to learn yet).
    """

    trained: bool
    epochs: int
    n_train: int
    n_holdout: int
    train_terminal: int
    holdout_terminal: int
    precision: float
    recall: float
    balanced_accuracy: float
    holdout_loss: float
    seconds: float


def classification_scores(predicted: torch.Tensor, actual: torch.Tensor) -> tuple[float, float, float]:
    """``(precision, recall, balanced_accuracy)`` of bool ``predicted`` against bool ``actual``
    (both ``[N]``); NaN where a ratio has no rows."""
    predicted, actual = predicted.bool(), actual.bool()
    tp = int((predicted & actual).sum())
    fp = int((predicted & ~actual).sum())
    fn = int((~predicted & actual).sum())
    tn = int((~predicted & ~actual).sum())
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    specificity = tn / (tn + fp) if tn + fp else math.nan
    return precision, recall, (recall + specificity) / 2


class TerminationClassifier:
    """Learns ``terminated`` from real transitions and ends model rollouts with it (module docstring).

    Args:
        obs_dim: the observation's width.
        threshold: a row is terminal where the predicted probability is >= this, in (0, 1).
        hidden_dim, num_layers: the MLP (200 units x 2 SiLU layers).
        lr, batch_size: Adam's step size and the minibatch (1e-3, 256).
        holdout_ratio, max_holdout: the stratified holdout, ``min(ratio * N, max_holdout)`` rows.
        patience, max_epochs: early stopping on the holdout's weighted loss (5; at most 50 epochs).
        device: where the network and its data live (the model's device).
        seed: seeds the weights and the classifier's own generator (holdout draws and shuffles).

    Call it as ``classifier(obs, act, next_obs) -> bool [B]``, the termination protocol of
    :func:`~mbpo_lib.rollout.branched_rollout`; only ``next_obs`` is used.
    """

    def __init__(self, obs_dim: int, *, threshold: float = 0.5, hidden_dim: int = 200, num_layers: int = 2,
                 lr: float = 1e-3, batch_size: int = 256, holdout_ratio: float = 0.2, max_holdout: int = 5000,
                 patience: int = 5, max_epochs: int = 50, device: torch.device | str | None = None,
                 seed: int = 0) -> None:
        for name, value in (("obs_dim", obs_dim), ("hidden_dim", hidden_dim), ("num_layers", num_layers),
                            ("batch_size", batch_size), ("max_holdout", max_holdout),
                            ("max_epochs", max_epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TerminationClassifier {name} must be an int >= 1, got {value!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"TerminationClassifier patience must be an int >= 0, got {patience!r}")
        for name, value in (("threshold", threshold), ("holdout_ratio", holdout_ratio)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ValueError(f"TerminationClassifier {name} must be a number in (0, 1), got {value!r}")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"TerminationClassifier lr must be a finite number > 0, got {lr!r}")
        self.obs_dim, self.threshold = obs_dim, float(threshold)
        self.batch_size, self.holdout_ratio, self.max_holdout = batch_size, holdout_ratio, max_holdout
        self.patience, self.max_epochs = patience, max_epochs
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        torch_state = torch.random.get_rng_state()
        torch.manual_seed(seed)                      # the same initial weights on every device
        layers: list[nn.Module] = []
        width = obs_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_dim), nn.SiLU()]
            width = hidden_dim
        self.network = nn.Sequential(*layers, nn.Linear(width, 1)).to(self.device)
        torch.random.set_rng_state(torch_state)      # leave the global generator as it was
        self.normalizer = Normalizer(obs_dim).to(self.device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=lr)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.fitted = False

    # --- prediction ------------------------------------------------------------------------

    @torch.no_grad()
    def probability(self, next_obs: torch.Tensor) -> torch.Tensor:
        """``p(terminated | next_obs)`` per row, ``[B]`` (0 everywhere before the first fit
        that saw a terminal row)."""
        if not isinstance(next_obs, torch.Tensor) or next_obs.dim() != 2 or next_obs.shape[1] != self.obs_dim:
            shape = list(next_obs.shape) if isinstance(next_obs, torch.Tensor) else type(next_obs).__name__
            raise ValueError(f"the termination classifier needs next_obs [B, {self.obs_dim}], got {shape}")
        if not self.fitted:
            return torch.zeros(next_obs.shape[0], device=next_obs.device)
        self.network.eval()
        x = self.normalizer(next_obs.to(self.device, torch.float32))
        return torch.sigmoid(self.network(x).squeeze(-1)).to(next_obs.device)

    def __call__(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """True where the predicted probability of ``terminated`` is >= ``threshold``; ``[B]`` bool."""
        return self.probability(next_obs) >= self.threshold

    # --- fitting ---------------------------------------------------------------------------

    def _split(self, terminal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stratified holdout: the same share of terminal and of other rows held out."""
        n = terminal.shape[0]
        n_holdout = min(int(n * self.holdout_ratio), self.max_holdout)
        if n_holdout < 1:
            raise ValueError(f"the termination classifier needs enough rows for a holdout: {n} rows give "
                             f"{n_holdout} at holdout_ratio={self.holdout_ratio}")
        g = self.generator
        perm = torch.randperm(n, generator=g, device=g.device).to(self.device)
        shuffled = terminal[perm]
        pos, neg = perm[shuffled], perm[~shuffled]
        pos_out = round(pos.numel() * n_holdout / n)
        neg_out = n_holdout - pos_out
        holdout = torch.cat([pos[:pos_out], neg[:neg_out]])
        train = torch.cat([pos[pos_out:], neg[neg_out:]])
        return train, holdout

    def _loss(self, x: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
        logits = self.network(x).squeeze(-1)
        return nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)

    def fit(self, source: Any, terminated: torch.Tensor | None = None) -> TerminationFitReport:
        """Fit on a replay buffer's transitions (``source.transitions()``: the fourth item is
        ``next_obs``, the fifth ``terminated``) or on ``fit(next_obs [N, obs_dim], terminated [N])``."""
        start = time.perf_counter()
        if terminated is None:
            items = source.transitions()
            next_obs, terminated = items[3], items[4]
        else:
            next_obs = source
        next_obs = torch.as_tensor(next_obs, dtype=torch.float32, device=self.device)
        y_all = torch.as_tensor(terminated, device=self.device).reshape(-1).float()
        if next_obs.dim() != 2 or next_obs.shape[1] != self.obs_dim or next_obs.shape[0] != y_all.shape[0]:
            raise ValueError(f"the termination classifier fits on next_obs [N, {self.obs_dim}] and "
                             f"terminated [N], got {list(next_obs.shape)} and {list(y_all.shape)}")
        if not bool(torch.isfinite(next_obs).all()):
            raise ValueError("the termination classifier's next_obs holds NaN or inf values")
        train, holdout = self._split(y_all > 0.5)
        x_train, y_train = next_obs[train], y_all[train]
        x_hold, y_hold = next_obs[holdout], y_all[holdout]
        n_pos = int(y_train.sum())
        n_neg = y_train.shape[0] - n_pos
        epochs, holdout_loss = 0, math.nan
        if n_pos > 0:
            self.normalizer.fit(x_train)
            x_train, x_hold = self.normalizer(x_train), self.normalizer(x_hold)
            pos_weight = torch.tensor(n_neg / n_pos if n_neg else 1.0, device=self.device)
            best, best_state, since = math.inf, None, 0
            n = x_train.shape[0]
            while epochs < self.max_epochs:
                self.network.train()
                g = self.generator
                order = torch.randperm(n, generator=g, device=g.device).to(self.device)
                for b in range(0, n, self.batch_size):
                    rows = order[b:b + self.batch_size]
                    loss = self._loss(x_train[rows], y_train[rows], pos_weight)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                epochs += 1
                self.network.eval()
                with torch.no_grad():
                    current = float(self._loss(x_hold, y_hold, pos_weight))
                if not math.isfinite(current):
                    raise FloatingPointError(f"the termination classifier's holdout loss became {current} "
                                             f"in epoch {epochs - 1} of this fit")
                if current < best * (1 - 0.01):
                    best, best_state, since = current, copy.deepcopy(self.network.state_dict()), 0
                else:
                    since += 1
                    if since > self.patience:
                        break
            if best_state is not None:
                self.network.load_state_dict(best_state)
            holdout_loss = best
            self.fitted = True
        if self.fitted and x_hold.shape[0]:
            with torch.no_grad():
                if n_pos == 0:
                    x_hold = self.normalizer(x_hold)
                self.network.eval()
                predicted = torch.sigmoid(self.network(x_hold).squeeze(-1)) >= self.threshold
        else:
            predicted = torch.zeros(x_hold.shape[0], dtype=torch.bool, device=self.device)
        precision, recall, balanced = classification_scores(predicted, y_hold > 0.5)
        return TerminationFitReport(
            trained=n_pos > 0, epochs=epochs, n_train=int(y_train.shape[0]), n_holdout=int(y_hold.shape[0]),
            train_terminal=n_pos, holdout_terminal=int(y_hold.sum()), precision=precision, recall=recall,
            balanced_accuracy=balanced, holdout_loss=holdout_loss, seconds=time.perf_counter() - start)

    # --- persistence -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Weights, normaliser, optimiser, generator and whether it has been fitted."""
        return {"network": self.network.state_dict(), "normalizer": self.normalizer.state_dict(),
                "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                "fitted": self.fitted}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.normalizer.load_state_dict(state["normalizer"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.fitted = bool(state["fitted"])

    def __repr__(self) -> str:
        return (f"TerminationClassifier(obs_dim={self.obs_dim}, threshold={self.threshold}, "
                f"fitted={self.fitted})")
