"""Settings as dataclasses, with the paper's values as defaults and ``validate()`` for clear errors.

The defaults follow the authors' official MBPO code (see the series' ``mbpo-reference.md``).
"""

from __future__ import annotations

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
