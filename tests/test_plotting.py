"""figures_dir resolution, save_figure's atomic PNG write, the series style."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import mbpo_lib  # noqa: E402
from mbpo_lib import plotting  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0, 1])
    yield fig
    plt.close(fig)


def test_figures_dir_uses_the_environment_variable(monkeypatch, tmp_path):
    target = tmp_path / "deep" / "figs"
    monkeypatch.setenv("MBPO_FIGURES_DIR", str(target))
    assert mbpo_lib.figures_dir() == target
    assert target.is_dir()


def test_figures_dir_defaults_to_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv("MBPO_FIGURES_DIR", raising=False)
    monkeypatch.delenv("MBPO_FAST", raising=False)
    monkeypatch.chdir(tmp_path)  # the package itself lives in the repository (editable install)
    assert mbpo_lib.figures_dir() == REPO / "figures"


def test_figures_dir_finds_the_repository_from_a_subfolder(monkeypatch, tmp_path):
    # A non-editable install (the package in site-packages) run from inside a clone.
    monkeypatch.delenv("MBPO_FIGURES_DIR", raising=False)
    monkeypatch.delenv("MBPO_FAST", raising=False)
    monkeypatch.setattr(plotting, "__file__", str(tmp_path / "site-packages/mbpo_lib/plotting.py"))
    monkeypatch.chdir(REPO / "notebooks")
    assert mbpo_lib.figures_dir() == REPO / "figures"


def test_figures_dir_falls_back_to_the_working_directory(monkeypatch, tmp_path):
    # Colab: installed from git, working directory outside any clone.
    monkeypatch.delenv("MBPO_FIGURES_DIR", raising=False)
    monkeypatch.delenv("MBPO_FAST", raising=False)
    monkeypatch.setattr(plotting, "__file__", str(tmp_path / "site-packages/mbpo_lib/plotting.py"))
    work = tmp_path / "content"
    work.mkdir()
    monkeypatch.chdir(work)
    assert mbpo_lib.figures_dir() == work / "figures"


def test_fast_mode_figures_go_to_a_subfolder_unless_the_variable_says_where(monkeypatch, tmp_path):
    """A FAST run inside a clone must not replace the committed full-run figures."""
    monkeypatch.delenv("MBPO_FIGURES_DIR", raising=False)
    monkeypatch.setenv("MBPO_FAST", "1")
    monkeypatch.chdir(tmp_path)
    assert mbpo_lib.figures_dir() == REPO / "figures" / "fast"
    monkeypatch.setenv("MBPO_FIGURES_DIR", str(tmp_path / "mine"))
    assert mbpo_lib.figures_dir() == tmp_path / "mine"


def test_save_figure_writes_a_png(monkeypatch, tmp_path, figure):
    monkeypatch.setenv("MBPO_FIGURES_DIR", str(tmp_path))
    path = mbpo_lib.save_figure(figure, "01_example")
    assert path == tmp_path / "01_example.png"
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert plt.imread(path).ndim == 3
    assert path.stat().st_mode & 0o777 == 0o644
    assert mbpo_lib.save_figure(figure, "01_example.png") == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_example.png"]


def test_an_interrupted_save_keeps_the_previous_figure(monkeypatch, tmp_path, figure):
    monkeypatch.setenv("MBPO_FIGURES_DIR", str(tmp_path))
    path = mbpo_lib.save_figure(figure, "kept")
    before = path.read_bytes()

    def broken_savefig(handle, **kwargs):
        handle.write(PNG_MAGIC + b"half a figure")
        raise KeyboardInterrupt

    monkeypatch.setattr(figure, "savefig", broken_savefig)
    with pytest.raises(KeyboardInterrupt):
        mbpo_lib.save_figure(figure, "kept")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["kept.png"]  # no temp file left behind


@pytest.mark.parametrize("name", ["", "../escape", "sub/dir", ".hidden", "a b", "x/../y"])
def test_save_figure_refuses_names_that_are_not_plain_file_names(monkeypatch, tmp_path, figure, name):
    monkeypatch.setenv("MBPO_FIGURES_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="not allowed"):
        mbpo_lib.save_figure(figure, name)


def test_save_figure_refuses_a_non_figure(tmp_path):
    with pytest.raises(TypeError, match="matplotlib Figure"):
        mbpo_lib.save_figure("not a figure", "x")


def test_series_style_applies_inside_the_block_only():
    before = matplotlib.rcParams["axes.spines.top"]
    with mbpo_lib.series_style():
        assert matplotlib.rcParams["axes.spines.top"] is False
        assert matplotlib.rcParams["savefig.dpi"] == plotting.STYLE["savefig.dpi"]
    assert matplotlib.rcParams["axes.spines.top"] == before
