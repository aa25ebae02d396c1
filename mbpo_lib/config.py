"""Settings as dataclasses, with the paper's values as defaults and ``validate()`` for clear errors.

The defaults follow the authors' official MBPO code (see the series' ``mbpo-reference.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .models import PAPER_WEIGHT_DECAYS


@dataclass(frozen=True)
class EnsembleConfig:
    """The dynamics model: a bootstrap ensemble of probabilistic MLPs and how it is fitted.

    Attributes:
        ensemble_size: members trained, each on its own bootstrap of the data (7).
        num_elites: members used for prediction, the lowest holdout error (5).
        hidden_dim, num_layers: each member's MLP (200 units x 4 layers; Humanoid 400).
        weight_decays: L2 coefficient per linear layer, input to output.
        lr, batch_size: Adam's step size and the minibatch per member (1e-3, 256).
        holdout_ratio, max_holdout: the holdout set is min(ratio * N, max_holdout) rows (20 %, 5000).
        improvement_threshold: a member improves when its holdout MSE drops by more than this
            fraction of its best so far (1 %).
        patience: stop once no member has improved for more than this many epochs (5).
        max_epochs: an optional cap on epochs per fit (None: the paper's code has none).
        init_max_logvar, init_min_logvar, logvar_bound_coef: the soft log-variance bounds.
    """

    ensemble_size: int = 7
    num_elites: int = 5
    hidden_dim: int = 200
    num_layers: int = 4
    weight_decays: tuple[float, ...] = PAPER_WEIGHT_DECAYS
    lr: float = 1e-3
    batch_size: int = 256
    holdout_ratio: float = 0.2
    max_holdout: int = 5000
    improvement_threshold: float = 0.01
    patience: int = 5
    max_epochs: int | None = None
    init_max_logvar: float = 0.5
    init_min_logvar: float = -10.0
    logvar_bound_coef: float = 0.01

    def validate(self) -> EnsembleConfig:
        """Raise ``ValueError`` naming the bad value and what is allowed; return self when fine."""
        positive_ints = ("ensemble_size", "num_elites", "hidden_dim", "num_layers", "batch_size",
                         "max_holdout")
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"EnsembleConfig.{name} must be an int >= 1, got {value!r}")
        if self.num_elites > self.ensemble_size:
            raise ValueError(f"EnsembleConfig.num_elites={self.num_elites} exceeds ensemble_size="
                             f"{self.ensemble_size}: elites are chosen among the members")
        if len(self.weight_decays) != self.num_layers + 1:
            raise ValueError(f"EnsembleConfig.weight_decays has {len(self.weight_decays)} values; "
                             f"num_layers={self.num_layers} needs {self.num_layers + 1}")
        if not 0.0 < self.holdout_ratio < 1.0:
            raise ValueError(f"EnsembleConfig.holdout_ratio must be in (0, 1), got {self.holdout_ratio}")
        if not self.lr > 0:
            raise ValueError(f"EnsembleConfig.lr must be > 0, got {self.lr}")
        if not self.improvement_threshold >= 0:
            raise ValueError("EnsembleConfig.improvement_threshold must be >= 0, got "
                             f"{self.improvement_threshold}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"EnsembleConfig.patience must be an int >= 0, got {self.patience!r}")
        if self.max_epochs is not None and (not isinstance(self.max_epochs, int) or self.max_epochs < 1):
            raise ValueError("EnsembleConfig.max_epochs must be None or an int >= 1, got "
                             f"{self.max_epochs!r}")
        return self


@dataclass(frozen=True)
class SACConfig:
    """Soft Actor-Critic (Haarnoja et al. 2018) as the official MBPO code runs it (softlearning).

    Attributes:
        hidden_sizes: hidden layers of the actor and of each critic, ReLU ((256, 256)).
        actor_lr, critic_lr, alpha_lr: Adam's step sizes (3e-4 each).
        gamma: the discount (0.99).
        tau: Polyak weight of the target critics, ``target <- (1 - tau) target + tau online`` (5e-3,
            every update).
        batch_size: rows per update that callers sample (256). ``SAC.update`` takes any size.
        target_entropy: the entropy the temperature steers towards; None means ``-act_dim``
            (SAC's default). MBPO sets it per environment (e.g. Hopper -1, Walker2d -3).
        init_log_alpha: the temperature's starting log (0.0 in the MBPO code: alpha = 1).
        learn_alpha: tune the temperature automatically (True); False keeps alpha fixed.
        log_std_min, log_std_max: the actor's log standard deviation is clipped to these
            (-20, 2), as in softlearning (the MBPO code) and stable-baselines3. The upper bound
            keeps the pre-tanh Gaussian from spreading mass only on the saturated ends; the lower
            one merely prevents underflow and lets the policy become nearly deterministic.
        reward_scale: rewards are multiplied by this in the critic's target (1.0).
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 5e-3
    batch_size: int = 256
    target_entropy: float | None = None
    init_log_alpha: float = 0.0
    learn_alpha: bool = True
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    reward_scale: float = 1.0

    def validate(self) -> SACConfig:
        """Raise ``ValueError`` naming the bad value and what is allowed; return self when fine."""
        sizes = self.hidden_sizes
        if (not isinstance(sizes, tuple) or len(sizes) < 1
                or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in sizes)):
            raise ValueError(f"SACConfig.hidden_sizes must be a non-empty tuple of ints >= 1, got {sizes!r}")
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"SACConfig.{name} must be a finite number > 0, got {value!r}")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"SACConfig.gamma must be in [0, 1), got {self.gamma!r}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"SACConfig.tau must be in (0, 1], got {self.tau!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"SACConfig.batch_size must be an int >= 1, got {self.batch_size!r}")
        if self.target_entropy is not None and not (
                isinstance(self.target_entropy, (int, float)) and math.isfinite(self.target_entropy)):
            raise ValueError("SACConfig.target_entropy must be None (meaning -act_dim) or a finite "
                             f"number, got {self.target_entropy!r}")
        for name in ("init_log_alpha", "log_std_min", "log_std_max", "reward_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"SACConfig.{name} must be a finite number, got {value!r}")
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f"SACConfig.log_std_min ({self.log_std_min}) must be below log_std_max "
                             f"({self.log_std_max})")
        if not isinstance(self.learn_alpha, bool):
            raise ValueError(f"SACConfig.learn_alpha must be True or False, got {self.learn_alpha!r}")
        return self
