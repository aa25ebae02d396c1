"""The k-vs-error widget: the pure figure, the readout, the sliders driving it, bad values."""

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


def marker(readout):
    left = readout.figure.axes[0]
    line = next(line for line in left.lines if line.get_label().startswith("your k"))
    return float(line.get_xdata()[0]), float(line.get_ydata()[0])


def slider(w, prefix):
    return next(child for child in w.children if getattr(child, "description", "").startswith(prefix))


def test_figure_plots_theorem_4_3_and_marks_k_star():
    readout = bound_vs_k_figure(k=2, eps_m=0.001, eps_pi=0.2, gamma=0.99, k_max=30)
    left, right = readout.figure.axes
    total_line = next(line for line in left.lines if line.get_label() == "sum (the gap)")
    expected = theory.branched_bound_terms(np.arange(31), 0.99, 1.0, 0.2, 0.001).total
    assert np.allclose(total_line.get_ydata(), expected)
    assert readout.k_star == theory.optimal_k(0.99, 0.2, 0.001, k_max=30) == int(np.argmin(expected))
    assert readout.gap_at_k == pytest.approx(expected[2])
    assert marker(readout) == pytest.approx((2, expected[2]))
    assert readout.excess_over_k_star >= 0
    assert any(f"k* = {readout.k_star}" == line.get_label() for line in left.lines)
    assert np.allclose(right.lines[0].get_ydata(), 1.0 * 0.001 * np.arange(31))
    assert str(readout).startswith("k = 2: gap ")


def test_moving_the_k_slider_moves_the_marker_and_changes_the_figure(capsys):
    w = k_vs_error_widget()
    assert {"k", "ε_m", "ε_π", "γ", "C"} <= {c.description.split(" ")[0] for c in w.children
                                            if getattr(c, "description", "")}
    first = w.result
    slider(w, "k ").value = 10
    second = w.result
    assert second.k == 10 and second.k_star == first.k_star
    assert marker(second)[0] == 10 and marker(first)[0] == 3
    assert second.figure is not first.figure and marker(second) != marker(first)
    assert "k = 10: gap" in capsys.readouterr().out


def test_a_worse_model_shortens_the_best_rollout():
    w = k_vs_error_widget()
    before = w.result.k_star
    slider(w, "ε_m").value = 0.099
    assert w.result.k_star < before


def test_the_k_slider_starts_at_one():
    assert slider(k_vs_error_widget(), "k ").min == 1


@pytest.mark.parametrize(("settings", "message"), [
    ({"k": 0}, r"k must be an int in \[1, 30\].*got 0"),
    ({"k": 31}, r"k must be an int in \[1, 30\].*got 31"),
    ({"eps_m": -0.1}, "eps_m must be >= 0"),
    ({"eps_pi": -0.1}, "eps_pi must be >= 0"),
    ({"gamma": 1.0}, "gamma must be in"),
])
def test_bad_values_are_refused_clearly(settings, message):
    with pytest.raises(ValueError, match=message):
        bound_vs_k_figure(**settings)
