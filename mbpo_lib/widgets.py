r"""The two interactive widgets of notebook 03, each a thin :func:`ipywidgets.interactive` over a
pure figure function that returns its readout (a static copy of the notebook and the slides show
the figure function's output on its own; the tests call it without a browser).

- :func:`bound_widget` over :func:`bound_vs_k_figure`: Theorem 4.3's gap against the rollout
  length k, relative to no rollout, next to Theorem 4.2's, and a map of the best length k* over
  :math:`(\varepsilon_{m'}/\varepsilon_\pi, \gamma)`.
- :func:`k_vs_error_widget` over :func:`k_vs_error_figure`: a learned ensemble's measured
  k-step rollouts against a held-out real trajectory, and its k-step error curve with the
  affine and geometric fits (computed once by :func:`mbpo_lib.theory.k_step_rollouts`).

Core widgets only, so they run in Colab (ipywidgets 7) and JupyterLab (ipywidgets 8). Slider
descriptions are short (so that each slider's track keeps its width at the default widget
width); the long explanation is in each slider's tooltip and in the notebook's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure

from .plotting import series_style
from .theory import (
    KStepRollouts,
    model_error_under_new_policy,
    optimal_k,
    optimal_k_continuous,
    optimal_k_discrete,
    relative_gap,
)

K_AXIS = 500           # the bound figure's k axis runs from 1 to this (log scale)
K_STAR_LIMIT = 100_000  # optimal_k's k_max: far beyond any k* a sensible setting gives
UNITS = r"$r_{\max}/(1-\gamma)$"


def _check_int(name: str, value, low: int, high: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}]{why}, got {value!r}")


def _check_float(name: str, value, low: float = 0.0, open_low: bool = False, high: float | None = None,
                 open_high: bool = False) -> None:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool) \
        and np.isfinite(value)
    ok = ok and (value > low if open_low else value >= low)
    if high is not None:
        ok = ok and (value < high if open_high else value <= high)
    if not ok:
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        bound = f"{'>' if open_low else '>='} {low}"
        allowed = f"in {left}{low}, {high}{right}" if high is not None else bound
        raise ValueError(f"{name} must be a number {allowed}, got {value!r}")


# --- the bound widget ------------------------------------------------------------------------

@dataclass(frozen=True)
class BoundReadout:
    r"""What the bound widget reports: the chosen k, the best k* of Theorem 4.3 (k* of Theorem 4.2
    is 0 always), the model error under the new policy :math:`\varepsilon_{m'}`, and the excess of
    the gap at k over the gap at k*, in units of the largest return :math:`r_{\max}/(1-\gamma)`."""

    k: int
    k_star: int
    k_star_real: float
    eps_m_new: float
    excess: float
    gap_at_k: float
    gap_at_k_star: float
    k_axis: int
    figure: Figure = field(repr=False, compare=False)

    def __str__(self) -> str:
        beyond = f" (beyond the plotted k <= {self.k_axis})" if self.k_star > self.k_axis else ""
        return (f"k = {self.k} | k* = {self.k_star}{beyond} | ε_m′ = {self.eps_m_new:.3g} | "
                f"excess over k*: {self.excess:.3g} r_max/(1-γ) | Theorem 4.2: k* = 0")


def bound_vs_k_figure(k: int = 3, eps_m: float = 0.04, slope: float = 0.5, eps_pi: float = 0.1,
                      gamma: float = 0.99, k_axis: int = K_AXIS) -> BoundReadout:
    r"""Theorem 4.3's gap against the rollout length, relative to no rollout, and the k* map.

    Left (log k from 1 to ``k_axis``): :math:`[\text{gap}(k) - \text{gap}(0)]` in units of
    :math:`r_{\max}/(1-\gamma)` for Theorem 4.3 with
    :math:`\varepsilon_{m'} = \varepsilon_m + s\,\varepsilon_\pi`
    (``slope`` is s) and for Theorem 4.2 (model error :math:`\varepsilon_m + 2\varepsilon_\pi`); below
    zero, a rollout of that length has a smaller gap than none. The y axis is linear within the
    depth of the minimum and logarithmic beyond (``symlog``), so the minimum shows at every
    setting. Right: k* over :math:`\varepsilon_{m'}/\varepsilon_\pi` and γ, the current setting and
    Theorem 4.2's equivalent ratio marked. Returns a :class:`BoundReadout`.
    """
    _check_int("k_axis", k_axis, 10, 10**6)
    _check_int("k", k, 1, k_axis, " (a rollout has at least one step)")
    for name, value in (("eps_m", eps_m), ("slope", slope)):
        _check_float(name, value)
    _check_float("eps_pi", eps_pi, open_low=True)
    _check_float("gamma", gamma, open_low=True, high=1.0, open_high=True)
    eps_new = float(model_error_under_new_policy(eps_m, slope, eps_pi))
    k_star = optimal_k(gamma, eps_pi, eps_new, k_max=K_STAR_LIMIT)
    k_real = optimal_k_continuous(gamma, eps_pi, eps_new)
    ks = np.unique(np.round(np.geomspace(1, k_axis, 400)).astype(int))
    rel43 = relative_gap(ks, gamma, eps_pi, eps_new)
    rel42 = relative_gap(ks, gamma, eps_pi, eps_m, theorem="4.2")
    at_k = float(relative_gap(k, gamma, eps_pi, eps_new))
    at_star = float(relative_gap(k_star, gamma, eps_pi, eps_new))
    depth = max(-at_star, 1e-4)
    with series_style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(8.2, 4.4), gridspec_kw={"width_ratios": [1.15, 1]})
        left.axhline(0, color="0.5", lw=1, label="no rollout")
        left.plot(ks, rel42, color="#CC79A7", ls="--", lw=2,
                  label="Thm 4.2 (best k = 0)")
        left.plot(ks, rel43, color="black", lw=2.5,
                  label=rf"Thm 4.3, $\varepsilon_{{m'}} = {eps_new:.3g}$")
        if 1 <= k_star <= k_axis:
            left.axvline(k_star, color="#009E73", ls="--", label=f"k* = {k_star}")
        elif k_star > k_axis:
            left.annotate(f"k* = {k_star} →", xy=(0.98, 0.06), xycoords="axes fraction", ha="right",
                          color="#009E73")
        left.plot([k], [at_k], "o", color="#D55E00", ms=9, label=f"your k = {k}")
        left.set_xscale("log")
        left.set_yscale("symlog", linthresh=depth)
        top = max(float(np.max(rel42)), float(np.max(rel43)), 10 * depth)
        left.set(xlim=(1, k_axis), ylim=(-2.5 * depth, 2 * top), xlabel="rollout length k (log scale)",
                 ylabel=f"gap(k) − gap(0), units of {UNITS}", title="The gap against k")
        left.legend(loc="upper left", framealpha=0.95)
        _k_star_map(right, eps_new / eps_pi, (eps_m + 2 * eps_pi) / eps_pi, gamma)
        fig.tight_layout()
    return BoundReadout(k=int(k), k_star=int(k_star), k_star_real=float(k_real), eps_m_new=eps_new,
                        excess=at_k - at_star, gap_at_k=at_k, gap_at_k_star=at_star, k_axis=int(k_axis),
                        figure=fig)


def _k_star_map(ax, ratio: float, ratio_42: float, gamma: float) -> None:
    """k* of Theorem 4.3 over the error ratio ε_m′/ε_π (log x) and γ (y: the horizon 1/(1-γ), log)."""
    ratios = np.geomspace(1e-3, 10, 241)
    horizons = np.geomspace(10, 1000, 161)
    gammas = 1 - 1 / horizons
    k_map = optimal_k_discrete(gammas[:, None], 1.0, ratios[None, :])
    levels = [0, 1, 3, 10, 30, 100, 300, 1000, 3000]
    norm = BoundaryNorm(levels, ncolors=256, extend="max")
    mesh = ax.pcolormesh(ratios, horizons, np.where(k_map == 0, np.nan, k_map), norm=norm, cmap="viridis",
                         shading="auto")
    ax.set_facecolor("0.88")   # k* = 0: no colour
    ax.axvline(1.0, color="black", lw=1.2)
    ax.text(1.15, 12, "k* = 0")
    ax.plot([ratio], [1 / (1 - gamma)], "o", color="#D55E00", ms=10, mec="white",
            label="Thm 4.3, yours")
    ax.plot([min(ratio_42, 10)], [1 / (1 - gamma)], "X", color="#CC79A7", ms=10, mec="white",
            label="Thm 4.2 (ratio ≥ 2)")
    ax.set(xscale="log", yscale="log", xlabel=r"$\varepsilon_{m'}/\varepsilon_\pi$ (log scale)",
           ylabel=r"discount $\gamma$", title="Thm 4.3's k* (grey: 0)")
    ticks = [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]
    ax.set_yticks([1 / (1 - g) for g in ticks], [str(g) for g in ticks])
    ax.minorticks_off()
    ax.legend(loc="upper left", framealpha=0.95)
    ax.figure.colorbar(mesh, ax=ax, label="k*", ticks=levels)


def show_bound_vs_k(**settings) -> BoundReadout:
    """Draw :func:`bound_vs_k_figure`, print its readout and show it (what the bound widget calls)."""
    readout = bound_vs_k_figure(**settings)
    print(readout)
    plt.show()  # ends the call with the figure shown and closed (else Colab stacks the plots)
    plt.close(readout.figure)
    return readout


def _tooltip(widget, text: str):
    """A hover text on ipywidgets 8 (``tooltip``) and 7 (``description_tooltip``)."""
    if "tooltip" in widget.keys:
        widget.tooltip = text
    else:
        widget.description_tooltip = text
    return widget


def bound_widget(k: int = 3, eps_m: float = 0.04, slope: float = 0.5, eps_pi: float = 0.1,
                 gamma: float = 0.99):
    """Sliders k, ε_m, slope s, ε_π and γ over :func:`show_bound_vs_k`.

    Returns the :class:`ipywidgets.interactive`; its ``result`` is the latest :class:`BoundReadout`.
    """
    import ipywidgets as widgets

    sliders = {
        "k": _tooltip(widgets.IntSlider(value=k, min=1, max=K_AXIS, description="k"),
                      "rollout length k (the figure's k axis is logarithmic)"),
        "eps_m": _tooltip(widgets.FloatLogSlider(value=eps_m, base=10, min=-3, max=0, step=0.05,
                                                 description="ε_m", readout_format=".2g"),
                          "ε_m: the model's error on the data policy's states (TV distance)"),
        "slope": _tooltip(widgets.FloatSlider(value=slope, min=0.0, max=2.0, step=0.05,
                                              description="slope s"),
                          "s = dε_m′/dε_π: how fast the model's error grows as the policy moves"),
        "eps_pi": _tooltip(widgets.FloatLogSlider(value=eps_pi, base=10, min=-3, max=0, step=0.05,
                                                  description="ε_π", readout_format=".2g"),
                           "ε_π: the policy shift (TV distance between new and data policy)"),
        "gamma": _tooltip(widgets.FloatSlider(value=gamma, min=0.9, max=0.999, step=0.001, description="γ",
                                              readout_format=".3f"), "γ: the discount"),
    }
    for slider in sliders.values():
        slider.continuous_update = False
    return widgets.interactive(show_bound_vs_k, **sliders)


# --- the measured k-vs-error widget ------------------------------------------------------------

@dataclass(frozen=True)
class KErrorReadout:
    """What the measured widget reports for the chosen k and training data: the measured mean
    k-step error and the two fits' values there."""

    data: str
    k: int
    dim: int
    error: float
    affine: float
    geometric: float
    lipschitz: float
    verdict: str
    figure: Figure = field(repr=False, compare=False)

    def __str__(self) -> str:
        return (f"{self.data}: k = {self.k}: measured {self.error:.3g} | affine fit {self.affine:.3g} | "
                f"geometric fit {self.geometric:.3g} (L = {self.lipschitz:.2f}) | {self.verdict}")


def k_vs_error_figure(measured: Mapping[str, KStepRollouts], k: int = 10, dim: int = 0,
                      data: str | None = None, labels: Sequence[str] | None = None) -> KErrorReadout:
    r"""A learned ensemble's k-step rollouts against a held-out real trajectory, and its error curve.

    ``measured`` maps a name of the training data (e.g. ``"random only"``) to the
    :class:`~mbpo_lib.theory.KStepRollouts` of the model fitted on it. Left: state coordinate
    ``dim`` (named by ``labels``) of the held-out real window against the model's sampled
    rollouts of ``k`` steps from the same start with the same actions. Right: the mean
    Euclidean k-step error over all held-out windows, with its affine and geometric fits,
    ``k`` marked. Returns a :class:`KErrorReadout`.
    """
    if not measured:
        raise ValueError("measured must hold at least one model's KStepRollouts, got none")
    data = next(iter(measured)) if data is None else data
    if data not in measured:
        raise ValueError(f"data must be one of {list(measured)}, got {data!r}")
    m = measured[data]
    _check_int("k", k, 1, m.k_max, " (a rollout has at least one step, at most the measured k_max)")
    obs_dim = m.true_states.shape[1]
    _check_int("dim", dim, 0, obs_dim - 1, " (a state coordinate)")
    name = labels[dim] if labels is not None else f"state[{dim}]"
    t_all = np.arange(m.k_max + 1)
    with series_style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(8.2, 4.4))
        left.plot(t_all, m.true_states[:, dim], color="black", lw=2.2, label="real")
        for i, path in enumerate(m.rollouts):
            left.plot(t_all[:k + 1], path[:k + 1, dim], color="#0072B2", lw=1, alpha=0.55,
                      label=f"{len(m.rollouts)} model samples" if i == 0 else None)
        left.plot(t_all[:k + 1], m.mean_rollout[:k + 1, dim], color="#D55E00", ls="--", lw=1.8,
                  label="elite means")
        left.axvline(k, color="0.5", ls=":")
        left.set(xlabel="step t", ylabel=name, title=f"{data}: {k} steps")
        left.legend(loc="upper left", framealpha=0.9)
        ks = m.fits.k
        right.plot(ks, m.errors, "o-", ms=3, color="black", label="measured")
        # plain-text labels: mathtext would add a fifth to every redraw
        right.plot(ks, m.fits.affine(ks), "--", color="#009E73",
                   label=f"affine ({m.fits.affine_misfit:.0%} off)")
        right.plot(ks, m.fits.geometric(ks), ":", lw=2.5, color="#CC79A7",
                   label=f"geometric ({m.fits.geometric_misfit:.0%} off)")
        right.plot([k], [m.errors[k - 1]], "o", color="#D55E00", ms=9, label=f"your k = {k}")
        right.set(xlabel="rollout length k", ylabel="mean error ‖ŝₖ − sₖ‖",
                  title=f"k-step error, {m.windows} windows", ylim=(0, None))
        right.legend(loc="upper left", framealpha=0.9)
        # a fixed layout: tight_layout's extra layout pass was a third of each redraw
        fig.subplots_adjust(left=0.1, right=0.98, bottom=0.14, top=0.92, wspace=0.3)
    return KErrorReadout(data=data, k=int(k), dim=int(dim), error=float(m.errors[k - 1]),
                         affine=float(m.fits.affine(k)), geometric=float(m.fits.geometric(k)),
                         lipschitz=m.fits.lipschitz, verdict=m.fits.verdict(), figure=fig)


def show_k_vs_error(**settings) -> KErrorReadout:
    """Draw :func:`k_vs_error_figure`, print its readout and show it (what the measured widget calls)."""
    readout = k_vs_error_figure(**settings)
    print(readout)
    plt.show()
    plt.close(readout.figure)
    return readout


def k_vs_error_widget(measured: Mapping[str, KStepRollouts], labels: Sequence[str] | None = None,
                      k: int = 10, dim: int = 0):
    """Sliders k and the state coordinate, and a choice of training data, over :func:`show_k_vs_error`.

    ``measured`` is computed once (:func:`mbpo_lib.theory.k_step_rollouts` per model), so a move
    only redraws. Returns the :class:`ipywidgets.interactive`; its ``result`` is the latest
    :class:`KErrorReadout`.
    """
    import ipywidgets as widgets

    if not measured:
        raise ValueError("measured must hold at least one model's KStepRollouts, got none")
    first = next(iter(measured.values()))
    k_max, obs_dim = first.k_max, first.true_states.shape[1]
    controls = {
        "k": _tooltip(widgets.IntSlider(value=min(k, k_max), min=1, max=k_max, description="k"),
                      "rollout length k"),
        "dim": _tooltip(widgets.IntSlider(value=dim, min=0, max=obs_dim - 1, description="state dim"),
                        "which state coordinate the left panel shows"),
        "data": _tooltip(widgets.Dropdown(options=list(measured), value=next(iter(measured)),
                                          description="data"), "what the model was trained on"),
    }
    for control in controls.values():
        control.continuous_update = False
    return widgets.interactive(show_k_vs_error, measured=widgets.fixed(measured),
                               labels=widgets.fixed(labels), **controls)
