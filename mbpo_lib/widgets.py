"""The interactive k-vs-error widget of notebook 03.

A thin :func:`ipywidgets.interactive` over a pure plotting function, :func:`bound_vs_k_figure`,
which a static copy of the notebook (and the slides) shows on its own. Core widgets only, so it
runs in Colab (ipywidgets 7) and JupyterLab (ipywidgets 8).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .plotting import series_style
from .theory import branched_bound_terms, optimal_k

K_MAX = 30


@dataclass(frozen=True)
class KReadout:
    """What the widget reports for the chosen k: the gap there and at the best k*."""

    k: int
    k_star: int
    gap_at_k: float
    gap_at_k_star: float
    figure: Figure = field(repr=False, compare=False)

    @property
    def excess_over_k_star(self) -> float:
        return self.gap_at_k - self.gap_at_k_star

    def __str__(self) -> str:
        return (f"k = {self.k}: gap {self.gap_at_k:.2f} | best k* = {self.k_star}: "
                f"gap {self.gap_at_k_star:.2f} | excess {self.excess_over_k_star:.2f}")


def bound_vs_k_figure(k: int = 3, eps_m: float = 0.09, eps_pi: float = 0.1, gamma: float = 0.99,
                      c: float = 1.0, r_max: float = 1.0, k_max: int = K_MAX) -> KReadout:
    """Theorem 4.3's gap against the rollout length, next to the guide's simplified bound.

    Left: the policy-shift side (falls with k), the model side (rises with k) and their sum,
    with the best length k* and the chosen ``k`` marked. Right: the simplified penalty
    C·ε_m·k, which only rises, so on its own it always says "k = 0".
    Returns a :class:`KReadout` (the chosen k, k*, the gap at both, and the figure).
    ``k`` must be an int in [1, k_max] (a rollout has at least one step).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= k_max:
        raise ValueError(f"k must be an int in [1, {k_max}] (a rollout has at least one step), got {k!r}")
    ks = np.arange(0, k_max + 1)
    terms = branched_bound_terms(ks, gamma, r_max, eps_pi, eps_m)
    k_star = optimal_k(gamma, eps_pi, eps_m, k_max=k_max)
    at_k = float(branched_bound_terms(k, gamma, r_max, eps_pi, eps_m).total)
    at_star = float(terms.total[k_star])
    with series_style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        left.plot(ks, terms.policy_shift, label=r"policy shift: $\gamma^k$ terms")
        left.plot(ks, terms.model, label=r"model: $k\,\varepsilon_{m'}/(1-\gamma)$")
        left.plot(ks, terms.total, color="black", lw=2.5, label="sum (the gap)")
        left.axvline(k_star, color="#009E73", ls="--", label=f"k* = {k_star}")
        left.plot([k], [at_k], "o", color="#D55E00", ms=9, label=f"your k = {k}")
        left.set(xlabel="rollout length k", ylabel=r"gap: $\eta^{\mathrm{branch}}[\pi]$ minus the bound",
                 title="Theorem 4.3: the trade-off", ylim=(0, 1.5 * max(terms.total[0], at_k)))
        left.legend(fontsize=9, framealpha=0.95)   # opaque: the k* line runs behind it
        right.plot(ks, c * eps_m * ks, color="#CC79A7", label=r"$C\,\varepsilon_m\,k$")
        right.plot([k], [c * eps_m * k], "o", color="#D55E00", ms=9)
        right.set(xlabel="rollout length k", ylabel="penalty", title="The simplified bound: only rises")
        right.legend(fontsize=9)
        fig.tight_layout()
    return KReadout(k=int(k), k_star=k_star, gap_at_k=at_k, gap_at_k_star=at_star, figure=fig)


def show_bound_vs_k(**settings) -> KReadout:
    """Draw :func:`bound_vs_k_figure`, print its readout and show it (what the widget calls)."""
    readout = bound_vs_k_figure(**settings)
    print(readout)
    plt.show()  # ends the call with the figure shown and closed (else Colab stacks the plots)
    plt.close(readout.figure)
    return readout


def k_vs_error_widget(k: int = 3, eps_m: float = 0.09, eps_pi: float = 0.1, gamma: float = 0.99,
                      c: float = 1.0):
    """Sliders for k, ε_m, ε_π, γ and C over :func:`show_bound_vs_k`.

    Returns the :class:`ipywidgets.interactive`; its ``result`` is the latest :class:`KReadout`.
    """
    import ipywidgets as widgets

    style = {"description_width": "initial"}
    sliders = {
        "k": widgets.IntSlider(value=k, min=1, max=K_MAX, description="k (rollout length)", style=style),
        "eps_m": widgets.FloatLogSlider(value=eps_m, base=10, min=-3, max=0, step=0.05,
                                        description="ε_m (model error; ε_m′ in Thm 4.3)", style=style,
                                        readout_format=".1e"),
        "eps_pi": widgets.FloatSlider(value=eps_pi, min=0.01, max=0.5, step=0.01,
                                      description="ε_π (policy shift)", style=style),
        "gamma": widgets.FloatSlider(value=gamma, min=0.9, max=0.999, step=0.001,
                                     description="γ (discount)", style=style, readout_format=".3f"),
        "c": widgets.FloatSlider(value=c, min=0.1, max=5.0, step=0.1, description="C (simplified)",
                                 style=style),
    }
    for slider in sliders.values():
        slider.continuous_update = False
    return widgets.interactive(show_bound_vs_k, **sliders)
