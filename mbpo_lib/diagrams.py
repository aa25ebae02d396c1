"""The MBPO loop as one diagram: boxes for the parts, arrows for the data between them.

:func:`plot_mbpo_loop` draws the "one picture" of the series (``design.md``) with matplotlib
patches only, so it needs no graphviz and renders the same in CI, on Colab and in the slides.
Read it clockwise from the top left:

* top row, real data: the gymnasium environment M writes every step into the real buffer
  D_env, on which the ``DynamicsModel`` M̂_θ (an ensemble of E = 7 Gaussian MLPs, 5 elites)
  is fitted every 250 env steps;
* right column, model data: ``branched_rollout`` starts from 100K states drawn from D_env,
  rolls k steps with the policy π and the model, and stores the branches in D_model;
* bottom row, learning: ``sample_mixed`` draws batches of B = 256 that are 5 % real and 95 %
  model data, SAC makes G updates per env step, and the policy π acts in the environment,
  which closes the loop.

Colours say where data comes from: blue for the real world, orange for the model, green for
policy learning. The figure is drawn with the series' style inside a ``with`` block and never
changes the global matplotlib settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

from .plotting import series_style

# Okabe-Ito colours (colour-blind-safe): edge colour and a light fill per kind of data.
_REAL = ("#0072B2", "#DCEBF5")
_MODEL = ("#D55E00", "#F9E3D3")
_POLICY = ("#009E73", "#D6F0E7")

_BOX_WIDTH = 3.6
_BOX_HEIGHT = 1.55
_LEFT, _MID, _RIGHT = 2.1, 7.4, 12.7  # column centres
_TOP, _CENTRE, _BOTTOM = 6.0, 3.35, 0.7  # row centres
_TITLE_SIZE = 15
_DETAIL_SIZE = 12
_ARROW_LABEL_SIZE = 12


@dataclass(frozen=True)
class Component:
    """One box of the diagram: a name in the series' notation, what it is, where it sits."""

    key: str
    title: str
    detail: str
    center: tuple[float, float]
    colours: tuple[str, str]


# The parts of the loop, in the order data flows through them.
COMPONENTS: tuple[Component, ...] = (
    Component("env", "gymnasium env  $M$", "real MDP, e.g. Hopper-v5", (_LEFT, _TOP), _REAL),
    Component(
        "d_env",
        r"$\mathcal{D}_{\mathrm{env}}$",
        "ReplayBuffer of real\ntransitions $(s, a, r, s')$",
        (_MID, _TOP),
        _REAL,
    ),
    Component(
        "model",
        r"DynamicsModel  $\hat{M}_\theta$",
        "ensemble of $E = 7$, 5 elites\npredicts $\\Delta s$ and $r$",
        (_RIGHT, _TOP),
        _MODEL,
    ),
    Component(
        "rollout",
        "branched_rollout",
        "$k$ steps from 100K real\nstart states, actions from $\\pi$",
        (_RIGHT, _CENTRE),
        _MODEL,
    ),
    Component(
        "d_model",
        r"$\mathcal{D}_{\mathrm{model}}$",
        "ReplayBuffer of\nmodel transitions",
        (_RIGHT, _BOTTOM),
        _MODEL,
    ),
    Component(
        "mixed",
        "sample_mixed",
        "batch $B = 256$:\n5 % real + 95 % model",
        (_MID, _BOTTOM),
        _POLICY,
    ),
    Component(
        "sac",
        r"SAC  $\pi$, $Q$",
        "$G$ updates per env step",
        (_LEFT, _BOTTOM),
        _POLICY,
    ),
)

# Arrows between components: (from, to, label, where the label is centred).
ARROWS: tuple[tuple[str, str, str, tuple[float, float]], ...] = (
    ("env", "d_env", "every step:\n$(s, a, r, s')$", ((_LEFT + _MID) / 2, _TOP + 0.5)),
    ("d_env", "model", "fit every\n250 steps", ((_MID + _RIGHT) / 2, _TOP + 0.5)),
    ("model", "rollout", r"$\hat{M}_\theta$.step", (_RIGHT + 0.85, 4.68)),
    ("d_env", "rollout", "start states\n(100K)", (9.35, 4.35)),
    ("rollout", "d_model", "$k$-step\nbranches", (_RIGHT + 0.85, 2.02)),
    ("d_model", "mixed", "95 %", ((_MID + _RIGHT) / 2, _BOTTOM + 0.4)),
    ("d_env", "mixed", "5 %", (_MID, _CENTRE)),
    ("mixed", "sac", "$G$ batches\nper env step", ((_LEFT + _MID) / 2, _BOTTOM + 0.5)),
    ("sac", "env", r"policy acts:" "\n" r"$a \sim \pi(\cdot \mid s)$", (_LEFT, _CENTRE)),
)


def _draw_box(ax: Axes, component: Component) -> FancyBboxPatch:
    x, y = component.center
    edge, fill = component.colours
    box = FancyBboxPatch(
        (x - _BOX_WIDTH / 2, y - _BOX_HEIGHT / 2),
        _BOX_WIDTH,
        _BOX_HEIGHT,
        boxstyle="round,pad=0.02,rounding_size=0.18",
        facecolor=fill,
        edgecolor=edge,
        linewidth=2.2,
        zorder=2,
    )
    ax.add_patch(box)
    # Mathtext ignores bold, so a title that is pure math gets a larger size to match the rest.
    size = _TITLE_SIZE + 3 if component.title.startswith("$") else _TITLE_SIZE
    ax.text(x, y + 0.36, component.title, ha="center", va="center", fontsize=size,
            fontweight="bold", color="#1A1A1A", zorder=3)
    ax.text(x, y - 0.25, component.detail, ha="center", va="center", fontsize=_DETAIL_SIZE,
            color="#333333", linespacing=1.15, zorder=3)
    return box


def _draw_arrow(ax: Axes, start: FancyBboxPatch, end: FancyBboxPatch,
                colour: str) -> FancyArrowPatch:
    def centre(box: FancyBboxPatch) -> tuple[float, float]:
        return box.get_x() + box.get_width() / 2, box.get_y() + box.get_height() / 2

    arrow = FancyArrowPatch(
        centre(start),
        centre(end),
        patchA=start,
        patchB=end,
        arrowstyle="-|>,head_length=0.7,head_width=0.35",
        mutation_scale=14,
        linewidth=2.2,
        color=colour,
        shrinkA=4,
        shrinkB=4,
        zorder=1,
    )
    ax.add_patch(arrow)
    return arrow


def plot_mbpo_loop(ax: Axes | None = None) -> Figure:
    """Draw the MBPO loop (see the module docstring) and return the figure it is on.

    ``ax``: an Axes to draw into (its limits and aspect are set, its axis turned off); when
    ``None`` a new 13.5 x 7.6 inch figure is made. Every box is a ``FancyBboxPatch`` and every
    arrow a ``FancyArrowPatch`` (one per entry of :data:`ARROWS`); the labels use the series'
    notation (``D_env``, ``D_model``, ``k``, ``G``, ``pi``, written in mathtext).
    """
    with series_style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(13.5, 7.6))
        else:
            fig = ax.figure
            if not isinstance(fig, Figure):  # an Axes on a SubFigure: return the root figure
                fig = fig.figure
        ax.set_xlim(0.15, 14.65)
        ax.set_ylim(-0.75, 7.5)
        ax.set_aspect("equal")
        ax.set_axis_off()

        boxes = {component.key: _draw_box(ax, component) for component in COMPONENTS}
        colours = {component.key: component.colours[0] for component in COMPONENTS}
        for source, target, label, (lx, ly) in ARROWS:
            _draw_arrow(ax, boxes[source], boxes[target], colours[source])
            ax.text(lx, ly, label, ha="center", va="center", fontsize=_ARROW_LABEL_SIZE,
                    color="#1A1A1A", linespacing=1.1, zorder=4,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white",
                          "edgecolor": "none", "alpha": 0.9})

        ax.text(_MID, 7.25, "The MBPO loop", ha="center", va="center", fontsize=17,
                fontweight="bold")
        kinds = (("real data", _REAL), ("model data", _MODEL), ("policy learning", _POLICY))
        ax.legend(
            handles=[Patch(facecolor=fill, edgecolor=edge, linewidth=2, label=name)
                     for name, (edge, fill) in kinds],
            loc="lower center", bbox_to_anchor=(0.5, -0.04), ncol=3, frameon=False,
            fontsize=_DETAIL_SIZE, handlelength=1.4, columnspacing=2.0,
        )
    return fig
