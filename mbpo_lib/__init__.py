"""mbpo_lib: Model-Based Policy Optimization (Janner et al. 2019) in PyTorch.

The public names below are what the notebooks, tests and users import; see the README and
``design.md`` of the series for the architecture.
"""

from importlib import metadata as _metadata

from .config import EnsembleConfig
from .diagrams import plot_mbpo_loop
from .dynamics import DynamicsModel, FitReport
from .models import EnsembleLinear, GaussianEnsemble, Normalizer, gaussian_nll
from .plotting import apply_style, figures_dir, save_figure, series_style
from .runtime import default_device, fast_mode, seed_everything, setup_report

try:
    __version__ = _metadata.version("mbpo_lib")
except _metadata.PackageNotFoundError:  # imported from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "DynamicsModel",
    "EnsembleConfig",
    "EnsembleLinear",
    "FitReport",
    "GaussianEnsemble",
    "Normalizer",
    "__version__",
    "apply_style",
    "default_device",
    "fast_mode",
    "figures_dir",
    "gaussian_nll",
    "plot_mbpo_loop",
    "save_figure",
    "seed_everything",
    "series_style",
    "setup_report",
]
