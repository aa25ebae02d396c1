"""mbpo_lib: Model-Based Policy Optimization (Janner et al. 2019) in PyTorch.

The public names below are what the notebooks, tests and users import; see the README and
``design.md`` of the series for the architecture.
"""

from importlib import metadata as _metadata

from .buffer import Batch, ReplayBuffer, sample_mixed
from .config import PRESETS, ROLLOUT_SCHEDULES, EnsembleConfig, MBPOConfig, SACConfig, Schedule, preset
from .diagnostics import (
    PUBLISHED_RESULTS,
    ConfidenceBand,
    DistributionComparison,
    ModelErrorReport,
    OneStepErrors,
    OpenLoopPrediction,
    align_curves,
    compare_distributions,
    confidence_band,
    diagnostic_columns,
    disagreement_error_correlation,
    episode_continues,
    learning_curves,
    model_error_report,
    one_step_errors,
    open_loop_prediction,
    plot_predictions,
    real_windows,
    wasserstein_per_dim,
)
from .diagrams import plot_mbpo_loop
from .dynamics import DynamicsModel, FitReport
from .envs import SUPPORTED_ENVS, env_state, evaluate, make_env, restore_env_state
from .files import CheckpointWarning, CheckpointWriteError
from .mbpo import MBPO, EnvironmentDataError, TrainingDivergedError, read_metrics
from .models import EnsembleLinear, GaussianEnsemble, Normalizer, gaussian_nll
from .plotting import apply_style, figures_dir, save_figure, series_style
from .precision import MATMUL_PRECISIONS, matmul_precision, product_rounding_error
from .render import (
    STATE_MAPS,
    ImaginedRollout,
    RenderedEpisode,
    RenderingUnavailable,
    StateMap,
    clip_html,
    encode_clip,
    integrate_root,
    obs_to_state,
    render_episode,
    render_imagined,
    render_state,
    setup_headless_gl,
    state_to_obs,
    write_clip,
)
from .rollout import RolloutStats, branched_rollout, model_buffer_capacity, rollout_schedule
from .runtime import default_device, fast_mode, seed_everything, setup_report
from .sac import SAC, TanhGaussianActor, TwinCritic, tanh_log_prob
from .termination import TERMINATION_RULES, TerminationFn, termination_fn
from .theory import (
    BoundTerms,
    branched_bound_terms,
    full_model_bound_gap,
    geometric_compounding_error,
    linear_compounding_error,
    multistep_error,
    optimal_k,
    optimal_k_continuous,
    simplified_bound,
    trajectory_windows,
)
from .widgets import bound_vs_k_figure, k_vs_error_widget, show_bound_vs_k

try:
    __version__ = _metadata.version("mbpo_lib")
except _metadata.PackageNotFoundError:  # imported from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "Batch",
    "BoundTerms",
    "CheckpointWarning",
    "CheckpointWriteError",
    "ConfidenceBand",
    "DistributionComparison",
    "DynamicsModel",
    "EnsembleConfig",
    "EnsembleLinear",
    "EnvironmentDataError",
    "FitReport",
    "GaussianEnsemble",
    "ImaginedRollout",
    "MATMUL_PRECISIONS",
    "MBPO",
    "MBPOConfig",
    "ModelErrorReport",
    "Normalizer",
    "OneStepErrors",
    "OpenLoopPrediction",
    "PRESETS",
    "PUBLISHED_RESULTS",
    "ROLLOUT_SCHEDULES",
    "RenderedEpisode",
    "RenderingUnavailable",
    "ReplayBuffer",
    "RolloutStats",
    "SAC",
    "SACConfig",
    "STATE_MAPS",
    "SUPPORTED_ENVS",
    "Schedule",
    "StateMap",
    "TERMINATION_RULES",
    "TanhGaussianActor",
    "TerminationFn",
    "TrainingDivergedError",
    "TwinCritic",
    "__version__",
    "align_curves",
    "apply_style",
    "bound_vs_k_figure",
    "branched_bound_terms",
    "branched_rollout",
    "clip_html",
    "compare_distributions",
    "confidence_band",
    "default_device",
    "diagnostic_columns",
    "disagreement_error_correlation",
    "encode_clip",
    "env_state",
    "episode_continues",
    "evaluate",
    "fast_mode",
    "figures_dir",
    "full_model_bound_gap",
    "gaussian_nll",
    "geometric_compounding_error",
    "integrate_root",
    "k_vs_error_widget",
    "learning_curves",
    "linear_compounding_error",
    "make_env",
    "matmul_precision",
    "model_buffer_capacity",
    "model_error_report",
    "multistep_error",
    "obs_to_state",
    "one_step_errors",
    "open_loop_prediction",
    "optimal_k",
    "optimal_k_continuous",
    "plot_mbpo_loop",
    "plot_predictions",
    "preset",
    "product_rounding_error",
    "read_metrics",
    "real_windows",
    "render_episode",
    "render_imagined",
    "render_state",
    "restore_env_state",
    "rollout_schedule",
    "sample_mixed",
    "save_figure",
    "seed_everything",
    "series_style",
    "setup_headless_gl",
    "setup_report",
    "show_bound_vs_k",
    "simplified_bound",
    "state_to_obs",
    "tanh_log_prob",
    "termination_fn",
    "trajectory_windows",
    "wasserstein_per_dim",
    "write_clip",
]
