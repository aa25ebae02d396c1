"""Tests of the MBPO loop diagram (`mbpo_lib.diagrams.plot_mbpo_loop`)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path
from matplotlib.text import Text

import mbpo_lib
from mbpo_lib.diagrams import ARROWS, COMPONENTS

# What a reader must find in the picture, written independently of the module's tables.
EXPECTED_LABELS = (
    "gymnasium env",
    r"$\mathcal{D}_{\mathrm{env}}$",
    "DynamicsModel",
    "$E = 7$, 5 elites",
    "fit every\n250 steps",
    "branched_rollout",
    "$k$ steps from 100K real",
    "start states\n(100K)",
    r"$\mathcal{D}_{\mathrm{model}}$",
    "sample_mixed",
    "5 % real + 95 % model",
    "95 %",
    "5 %",
    "SAC",
    "$G$ updates per env step",
    "policy acts",
)

# The data flow of design.md's picture, as (from, to) pairs of component keys.
EXPECTED_FLOW = {
    ("env", "d_env"),
    ("d_env", "model"),
    ("model", "rollout"),
    ("d_env", "rollout"),
    ("rollout", "d_model"),
    ("d_model", "mixed"),
    ("d_env", "mixed"),
    ("mixed", "sac"),
    ("sac", "env"),
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig: Figure) -> list[str]:
    return [artist.get_text() for artist in fig.findobj(Text)]


def _arrows(fig: Figure) -> list[FancyArrowPatch]:
    return list(fig.findobj(FancyArrowPatch))


def test_returns_a_figure() -> None:
    fig = mbpo_lib.plot_mbpo_loop()
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1


def test_every_component_label_is_drawn() -> None:
    texts = _texts(mbpo_lib.plot_mbpo_loop())
    missing = [label for label in EXPECTED_LABELS if not any(label in text for text in texts)]
    assert not missing, f"labels missing from the diagram: {missing}"


def test_one_box_per_component_and_one_arrow_per_data_flow() -> None:
    fig = mbpo_lib.plot_mbpo_loop()
    ax = fig.axes[0]
    # Text backgrounds are FancyBboxPatches too, but only the boxes are patches of the Axes.
    boxes = [patch for patch in ax.patches if isinstance(patch, FancyBboxPatch)]
    assert len(boxes) == len(COMPONENTS) == 7
    assert len(_arrows(fig)) == len(ARROWS) == len(EXPECTED_FLOW)
    assert {(source, target) for source, target, *_label in ARROWS} == EXPECTED_FLOW


def _distance_to_box(points: np.ndarray, box: FancyBboxPatch) -> np.ndarray:
    """Euclidean distance (data units) from each point [N, 2] to the box's rectangle."""
    low = np.array([box.get_x(), box.get_y()])
    high = low + np.array([box.get_width(), box.get_height()])
    return np.linalg.norm(np.maximum(0.0, np.maximum(low - points, points - high)), axis=1)


def test_each_arrow_runs_from_its_source_box_to_its_target_box() -> None:
    fig = mbpo_lib.plot_mbpo_loop()
    fig.canvas.draw()
    ax = fig.axes[0]
    boxes = dict(zip([c.key for c in COMPONENTS], [p for p in ax.patches
                                                   if isinstance(p, FancyBboxPatch)], strict=True))
    for arrow, (source, target, *_label) in zip(_arrows(fig), ARROWS, strict=True):
        path = arrow.get_path()  # data coordinates, already clipped at the two boxes
        points = path.vertices[path.codes != Path.CLOSEPOLY]
        near = 0.3
        assert _distance_to_box(points, boxes[source]).min() < near, (source, target)
        assert _distance_to_box(points, boxes[target]).min() < near, (source, target)
        for key, box in boxes.items():
            if key not in (source, target):  # it crosses no other box
                assert _distance_to_box(points, box).min() > near, (source, target, key)


def test_draws_into_a_given_axes() -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(20, 6))
    returned = mbpo_lib.plot_mbpo_loop(ax=right)
    assert returned is fig
    assert len(right.patches) > 0 and not right.axison
    assert len(left.patches) == 0 and left.axison  # the other Axes is untouched
    right_texts = [text.get_text() for text in right.texts]
    assert any("branched_rollout" in text for text in right_texts)


def test_draws_into_an_axes_on_a_subfigure() -> None:
    fig = plt.figure(figsize=(14, 8))
    sub = fig.subfigures(1, 2)[1]
    ax = sub.subplots()
    assert mbpo_lib.plot_mbpo_loop(ax=ax) is fig


def test_global_rcparams_are_left_alone() -> None:
    before = dict(mpl.rcParams)
    mbpo_lib.plot_mbpo_loop()
    after = dict(mpl.rcParams)
    changed = {key for key in before if before[key] != after[key]}
    assert not changed, f"plot_mbpo_loop changed global rcParams: {sorted(changed)}"


def test_save_figure_writes_a_png(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MBPO_FIGURES_DIR", str(tmp_path))
    path = mbpo_lib.save_figure(mbpo_lib.plot_mbpo_loop(), "00_mbpo_loop")
    assert path == tmp_path / "00_mbpo_loop.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a real picture, not an empty canvas
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
