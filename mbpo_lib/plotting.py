"""One figure style for the series, and where figures are saved.

Figures go to, in order of preference:

1. ``$MBPO_FIGURES_DIR`` when set (tests point it at a temporary folder so a test run never
   overwrites the committed figures);
2. the repository's ``figures/`` folder, found from the installed package (an editable
   install) or from the working directory and its parents (a notebook run inside a clone);
3. ``./figures`` (Colab, or a plain ``pip install`` outside a clone).

In FAST mode (``MBPO_FAST=1``) 2 and 3 become their ``fast/`` subfolder: a shrunken run's
figures never replace the full runs' figures that the README and the slides show.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
from matplotlib.figure import Figure

from .files import atomic_write
from .runtime import fast_mode

FIGURES_ENV_VAR = "MBPO_FIGURES_DIR"
_FIGURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

# The series' look: readable on a projector and in a static page, colour-blind-safe cycle.
STYLE: dict[str, object] = {
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "axes.prop_cycle": mpl.cycler(
        color=["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
    ),
}


def apply_style() -> None:
    """Make :data:`STYLE` the default for every figure drawn after this call."""
    mpl.rcParams.update(STYLE)


@contextmanager
def series_style() -> Iterator[None]:
    """Draw with :data:`STYLE` inside a ``with`` block, leaving global settings untouched."""
    with mpl.rc_context(STYLE):
        yield


def _is_repository_root(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "mbpo_lib").is_dir()


def figures_dir() -> Path:
    """The folder figures are saved in (created if missing); see the module docstring."""
    override = os.environ.get(FIGURES_ENV_VAR)
    if override is not None and override.strip():
        folder = Path(override).expanduser()
    else:
        package_parent = Path(__file__).resolve().parent.parent
        candidates = [package_parent, Path.cwd(), *Path.cwd().parents]
        root = next((path for path in candidates if _is_repository_root(path)), None)
        folder = (root if root is not None else Path.cwd()) / "figures"
        if fast_mode():
            folder = folder / "fast"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_figure(fig: Figure, name: str) -> Path:
    """Save ``fig`` as ``<figures_dir>/<name>.png`` atomically and return the path.

    The PNG is written to a temporary file in the same folder and renamed over the target, so
    an interrupted save never leaves a truncated figure (the previous one stays intact).
    ``name`` is a plain file name such as ``"00_mbpo_loop"`` (a ``.png`` suffix is accepted).
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"save_figure needs a matplotlib Figure, got {type(fig).__name__}")
    stem = name[:-4] if name.endswith(".png") else name
    if not _FIGURE_NAME.fullmatch(stem):
        raise ValueError(
            f"figure name {name!r} is not allowed: use letters, digits, '_', '-' and '.', "
            "no folders (e.g. '03_bound_vs_k')"
        )
    target = figures_dir() / f"{stem}.png"
    atomic_write(target, lambda f: fig.savefig(f, format="png", bbox_inches="tight"))
    return target
