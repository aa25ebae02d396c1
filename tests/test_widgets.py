"""The k-vs-error widget: the pure figure, the readout, and the sliders driving it."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mbpo_lib import theory  # noqa: E402
from mbpo_lib.widgets import bound_vs_k_figure, k_vs_error_widget  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_figure_plots_theorem_4_3_and_marks_k_star():
    fig, readout = bound_vs_k_figure(k=2, eps_m=0.001, eps_pi=0.2, gamma=0.99, k_max=30)
    left, right = fig.axes
    total_line = next(line for line in left.lines if line.get_label() == "sum (the gap)")
    expected = theory.branched_bound_terms(np.arange(31), 0.99, 1.0, 0.2, 0.001).total
    assert np.allclose(total_line.get_ydata(), expected)
    assert readout["k_star"] == theory.optimal_k(0.99, 0.2, 0.001, k_max=30) == int(np.argmin(expected))
    assert readout["gap_at_k"] == pytest.approx(expected[2])
    assert readout["excess_over_k_star"] >= 0
    assert any(f"k* = {readout['k_star']}" == line.get_label() for line in left.lines)
    assert np.allclose(right.lines[0].get_ydata(), 1.0 * 0.001 * np.arange(31))


def test_sliders_drive_the_readout(capsys):
    w = k_vs_error_widget()
    names = {child.description.split(" ")[0] for child in w.children if hasattr(child, "value")
             and hasattr(child, "description") and child.description}
    assert {"k", "ε_m", "ε_π", "γ", "C"} <= names
    first = w.result
    k_slider = next(child for child in w.children if getattr(child, "description", "").startswith("k "))
    k_slider.value = 10
    assert w.result["k"] == 10 and w.result["k_star"] == first["k_star"]
    eps_slider = next(child for child in w.children if getattr(child, "description", "").startswith("ε_m"))
    eps_slider.value = 0.099  # a worse model: shorter rollouts are best
    assert w.result["k_star"] < first["k_star"]
    assert "best k* =" in capsys.readouterr().out
