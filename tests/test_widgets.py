"""The two widgets of notebook 03: the pure figures, their readouts, the sliders driving them, bad values."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from stand_in_models import DriftModel  # noqa: E402

from mbpo_lib import theory  # noqa: E402
from mbpo_lib.widgets import (  # noqa: E402
    K_AXIS,
    bound_vs_k_figure,
    bound_widget,
    k_vs_error_figure,
    k_vs_error_widget,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def line(ax, prefix):
    return next(artist for artist in ax.lines if artist.get_label().startswith(prefix))


def control(w, description):
    return next(child for child in w.children if getattr(child, "description", "") == description)


# --- the bound widget -----------------------------------------------------------------------

def test_bound_figure_plots_the_gap_relative_to_no_rollout_and_marks_k_star():
    readout = bound_vs_k_figure(k=3, eps_m=0.04, slope=0.5, eps_pi=0.1, gamma=0.99)
    left, right = readout.figure.axes[:2]
    assert readout.eps_m_new == pytest.approx(0.09)
    assert readout.k_star == theory.optimal_k(0.99, 0.1, 0.09) == 11
    thm43 = line(left, "Thm 4.3")
    ks = thm43.get_xdata()
    assert ks[0] == 1 and ks[-1] == K_AXIS >= 500 and left.get_xscale() == "log"
    assert np.allclose(thm43.get_ydata(), theory.relative_gap(ks, 0.99, 0.1, 0.09))
    thm42 = theory.relative_gap(ks, 0.99, 0.1, 0.04, theorem="4.2")
    assert np.allclose(line(left, "Thm 4.2").get_ydata(), thm42)
    assert line(left, "k* = 11").get_xdata()[0] == 11
    marker = line(left, "your k")
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (3, pytest.approx(readout.gap_at_k))
    assert readout.gap_at_k_star < 0 < readout.excess
    assert readout.excess == pytest.approx(readout.gap_at_k - readout.gap_at_k_star)
    # the minimum is visible: it lies inside the y range, and so does the k = 0 line
    low, high = left.get_ylim()
    assert low < readout.gap_at_k_star < 0 < high
    assert str(readout).startswith("k = 3 | k* = 11 |") and "Theorem 4.2: k* = 0" in str(readout)
    assert "γ" in right.get_ylabel() or "gamma" in right.get_ylabel()


def test_the_k_star_map_marks_the_setting_and_theorem_4_2_in_the_no_rollout_region():
    readout = bound_vs_k_figure(eps_m=0.01, slope=0.2, eps_pi=0.2, gamma=0.99)
    right = readout.figure.axes[1]
    setting, thm42 = line(right, "Thm 4.3"), line(right, "Thm 4.2")
    assert setting.get_xdata()[0] == pytest.approx(readout.eps_m_new / 0.2)
    assert setting.get_ydata()[0] == pytest.approx(100)   # the horizon 1 / (1 - γ)
    assert thm42.get_xdata()[0] == pytest.approx((0.01 + 0.4) / 0.2) and thm42.get_xdata()[0] >= 2 > 1
    assert right.get_xscale() == "log"


def test_k_star_beyond_the_axis_is_reported_not_clipped():
    readout = bound_vs_k_figure(eps_m=0.0005, slope=0.0, eps_pi=0.1, gamma=0.99)
    assert readout.k_star == theory.optimal_k_discrete(0.99, 0.1, 0.0005) > K_AXIS
    assert f"beyond the plotted k <= {K_AXIS}" in str(readout)


def test_a_poor_model_gives_no_rollout_under_both_theorems():
    readout = bound_vs_k_figure(eps_m=0.05, slope=0.6, eps_pi=0.1)
    assert readout.k_star == 0 and readout.gap_at_k_star == 0 and readout.excess > 0


def test_bound_widget_sliders_are_short_with_tooltips_and_move_the_readout(capsys):
    w = bound_widget()
    sliders = [c for c in w.children if getattr(c, "description", "")]
    assert [s.description for s in sliders] == ["k", "ε_m", "slope s", "ε_π", "γ"]
    for s in sliders:
        assert len(s.description) <= 8   # a short label keeps the slider's track visible
        assert getattr(s, "tooltip", None) or getattr(s, "description_tooltip", None)
        assert s.continuous_update is False
    assert control(w, "k").min == 1 and control(w, "k").max >= 500
    first = w.result
    control(w, "k").value = 40
    assert w.result.k == 40 and w.result.k_star == first.k_star and w.result.figure is not first.figure
    control(w, "slope s").value = 1.0
    assert w.result.k_star == 0
    assert "k = 40 | k* = 0" in capsys.readouterr().out


@pytest.mark.parametrize(("settings", "message"), [
    ({"k": 0}, r"k must be an int in \[1, 500\].*got 0"),
    ({"k": 501}, r"k must be an int in \[1, 500\].*got 501"),
    ({"k": 2.5}, r"k must be an int"),
    ({"eps_m": -0.1}, r"eps_m must be a number >= 0.*got -0.1"),
    ({"slope": -1.0}, r"slope must be a number >= 0"),
    ({"eps_pi": 0.0}, r"eps_pi must be a number > 0"),
    ({"gamma": 1.0}, r"gamma must be a number in \(0.0, 1.0\), got 1.0"),
    ({"gamma": 0.0}, r"gamma must be a number in \(0.0, 1.0\)"),
    ({"k_axis": 5}, r"k_axis must be an int in \[10,"),
])
def test_bound_figure_refuses_bad_values_clearly(settings, message):
    with pytest.raises(ValueError, match=message):
        bound_vs_k_figure(**settings)


# --- the measured widget ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def measured():
    g = torch.Generator().manual_seed(0)
    act = torch.randn(6, 12, 2, generator=g)
    obs = torch.cat([torch.zeros(6, 1, 2), torch.cumsum(act, dim=1)], dim=1)
    return {"random only": theory.k_step_rollouts(DriftModel([0.3, 0.4]), obs, act, samples=4),
            "random + policy": theory.k_step_rollouts(DriftModel([0.06, 0.08]), obs, act, samples=4)}


def test_measured_figure_shows_the_trajectory_rollouts_and_the_error_curve(measured):
    readout = k_vs_error_figure(measured, k=5, dim=1, data="random + policy", labels=["x", "y"])
    left, right = readout.figure.axes
    truth = line(left, "real")
    assert np.allclose(truth.get_ydata(), measured["random + policy"].true_states[:, 1])
    samples = [a for a in left.lines if a.get_color() == "#0072B2"]
    assert len(samples) == 4 and all(len(a.get_xdata()) == 6 for a in samples)   # k + 1 points each
    assert left.get_ylabel() == "y"
    assert np.allclose(line(right, "measured").get_ydata(), 0.1 * np.arange(1, 13))
    assert line(right, "your k").get_xdata()[0] == 5
    assert readout.error == pytest.approx(0.5) and readout.affine == pytest.approx(0.5, abs=1e-6)
    assert str(readout).startswith("random + policy: k = 5: measured 0.5 |")


def test_measured_widget_moves_k_and_switches_the_training_data(measured, capsys):
    w = k_vs_error_widget(measured, labels=["x", "y"])
    assert [c.description for c in w.children if getattr(c, "description", "")] == ["k", "state dim", "data"]
    assert control(w, "k").max == 12 and control(w, "state dim").max == 1
    first = w.result
    control(w, "k").value = 12
    assert w.result.k == 12 and w.result.error == pytest.approx(6.0) and w.result.figure is not first.figure
    control(w, "data").value = "random + policy"
    assert w.result.data == "random + policy" and w.result.error == pytest.approx(1.2)
    assert "random + policy: k = 12" in capsys.readouterr().out


@pytest.mark.parametrize(("settings", "message"), [
    ({"k": 0}, r"k must be an int in \[1, 12\].*got 0"),
    ({"k": 13}, r"k must be an int in \[1, 12\].*got 13"),
    ({"dim": 2}, r"dim must be an int in \[0, 1\].*got 2"),
    ({"data": "policy only"},
     r"data must be one of \['random only', 'random \+ policy'\], got 'policy only'"),
])
def test_measured_figure_refuses_bad_values_clearly(measured, settings, message):
    with pytest.raises(ValueError, match=message):
        k_vs_error_figure(measured, **settings)


def test_measured_figure_needs_a_measurement():
    with pytest.raises(ValueError, match="at least one model"):
        k_vs_error_figure({})
