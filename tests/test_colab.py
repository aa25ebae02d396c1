"""Colab: every badge opens a notebook that exists, and every setup cell works there.

``test_notebooks_static.py`` already checks each title cell's badge (its own path) and the
README's table. Here: every Colab link anywhere (all cells, every Markdown file) points at a
notebook that exists, on the repository's main branch; each notebook's setup cell, run with
``google.colab`` faked into ``sys.modules`` and ``subprocess.run`` captured (never run), installs
``mbpo_lib`` non-editably from the repository and leaves Colab's torch alone; without the fake it
installs nothing; and notebook 05 asks Colab for a GPU runtime.
"""

import json
import subprocess
import sys
import types
from pathlib import Path

import jupytext
import matplotlib
import pytest
import tomllib
from packaging.requirements import InvalidRequirement, Requirement
from test_notebooks_static import COLAB_LINK, GITHUB_PATH, NOTEBOOKS, REPO, REPOSITORY_URL

INSTALL_TARGET = f"mbpo_lib @ git+{REPOSITORY_URL}@main"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
LINK_PREFIX = f"https://colab.research.google.com/github/{GITHUB_PATH}/blob/main/notebooks/"
TORCH_PACKAGES = {"torch", "torchvision", "torchaudio"}
# pip options that would replace a torch Colab already has
UPGRADING_OPTIONS = {"-U", "--upgrade", "--force-reinstall", "-I", "--ignore-installed", "--upgrade-strategy"}
# torch builds Colab has shipped (CUDA local versions); mbpo_lib's range must accept them as they are
COLAB_TORCH_VERSIONS = ["2.3.1+cu121", "2.5.1+cu121", "2.6.0+cu124", "2.8.0+cu126"]
GPU_NOTEBOOKS = {"05_mbpo_training_loop"}


def markdown_files() -> list[Path]:
    skip = {".venv", "build", ".git", "node_modules", "runs"}
    return sorted(p for p in REPO.rglob("*.md") if not skip & set(p.relative_to(REPO).parts))


def colab_links() -> list[tuple[str, str]]:
    """(where, link) for every Colab link in the notebooks' cells and the repository's Markdown."""
    found = []
    for ipynb in NOTEBOOKS:
        for index, cell in enumerate(jupytext.read(ipynb).cells):
            found += [(f"{ipynb.name} cell {index}", link) for link in COLAB_LINK.findall(cell.source)]
    for md in markdown_files():
        found += [(str(md.relative_to(REPO)), link) for link in COLAB_LINK.findall(md.read_text())]
    return found


def setup_source(ipynb: Path) -> str:
    return next(c for c in jupytext.read(ipynb).cells if c.cell_type == "code").source


def run_setup_cell(ipynb: Path) -> dict:
    """Execute the notebook's setup cell here; undo its style change and remove folders it made."""
    namespace: dict = {"__name__": "__main__"}
    with matplotlib.rc_context():
        exec(compile(setup_source(ipynb), f"{ipynb.name}:setup-cell", "exec"), namespace)
    runs = namespace.get("RUNS")
    if isinstance(runs, Path) and runs.is_dir() and not any(runs.iterdir()):
        runs.rmdir()
    return namespace


@pytest.fixture
def captured_run(monkeypatch):
    """``subprocess.run`` replaced by a recorder: the commands a cell would run, none of them run."""
    calls: list[tuple[list[str], dict]] = []

    def record(cmd, *args, **kwargs):
        calls.append(([str(part) for part in cmd], kwargs))
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    monkeypatch.setattr(subprocess, "run", record)
    return calls


@pytest.fixture
def on_colab(monkeypatch, captured_run):
    """Pretend to be Colab: a ``google.colab`` module in ``sys.modules``, commands captured."""
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    return captured_run


def install_problems(cmd: list[str], kwargs: dict) -> list[str]:
    """How a captured command differs from a non-editable install of mbpo_lib that keeps torch."""
    problems = []
    if cmd[:4] != [sys.executable, "-m", "pip", "install"]:
        problems.append(f"not '{sys.executable} -m pip install ...' (the kernel's own pip): {cmd}")
    if INSTALL_TARGET not in cmd:
        problems.append(f"does not install {INSTALL_TARGET!r}: {cmd}")
    if any(arg in ("-e", "--editable") or arg.startswith(("--editable=", "-e=")) for arg in cmd):
        problems.append(f"editable install (invisible to a running kernel): {cmd}")
    upgrading = [arg for arg in cmd if arg.split("=")[0] in UPGRADING_OPTIONS]
    if upgrading:
        problems.append(f"{upgrading} would replace Colab's torch: {cmd}")
    for arg in cmd[4:]:
        if arg.startswith("-"):
            continue
        try:
            name = Requirement(arg).name.lower().replace("_", "-")
        except InvalidRequirement:
            continue
        if name in TORCH_PACKAGES:
            problems.append(f"installs {arg!r}: Colab's torch must be kept")
    if kwargs.get("check") is not True:
        problems.append("runs without check=True: a failed install would go unnoticed")
    return problems


# --- badges -------------------------------------------------------------------------------------

def test_every_colab_link_opens_an_existing_notebook_on_main():
    links = colab_links()
    assert len(links) >= 2 * len(NOTEBOOKS), "expected a badge in every notebook and in the README"
    names = {nb.name for nb in NOTEBOOKS}
    bad = [f"{where}: {link}" for where, link in links
           if not link.startswith(LINK_PREFIX) or link.removeprefix(LINK_PREFIX) not in names]
    assert bad == [], f"Colab links must be {LINK_PREFIX}<an existing notebook>:\n" + "\n".join(bad)


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_badge_shows_colabs_own_badge_image(ipynb):
    title = jupytext.read(ipynb).cells[0].source
    assert f"[![Open In Colab]({BADGE_IMAGE})](" in title


# --- the setup cell on (a faked) Colab -----------------------------------------------------------

@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_on_colab_installs_mbpo_lib_non_editably_and_keeps_torch(ipynb, on_colab):
    namespace = run_setup_cell(ipynb)
    assert len(on_colab) == 1, f"expected one install command, got {on_colab}"
    cmd, kwargs = on_colab[0]
    assert install_problems(cmd, kwargs) == []
    assert namespace["mbpo_lib"].__name__ == "mbpo_lib"  # and the imports after the install worked
    assert isinstance(namespace["FAST"], bool)


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_outside_colab_installs_nothing(ipynb, captured_run):
    assert "google.colab" not in sys.modules
    run_setup_cell(ipynb)
    assert captured_run == []


def test_the_install_check_catches_what_it_is_for():
    good = [sys.executable, "-m", "pip", "install", "-q", INSTALL_TARGET]
    assert install_problems(good, {"check": True}) == []
    assert install_problems(good[:4] + ["-e", INSTALL_TARGET], {"check": True})
    assert install_problems(good + ["torch==2.13.0"], {"check": True})
    assert install_problems(good + ["--upgrade"], {"check": True})
    assert install_problems(good[:5] + ["mbpo_lib @ git+https://example.org/fork@main"], {"check": True})
    assert install_problems(good, {})


def test_mbpo_lib_accepts_the_torch_colab_ships():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = [Requirement(d) for d in deps if Requirement(d).name == "torch"]
    assert len(torch) == 1, deps
    spec = torch[0].specifier
    pinned = [str(s) for s in spec if s.operator in ("==", "===")]
    assert pinned == [], f"torch is pinned ({spec}): Colab's torch would be replaced"
    refused = [v for v in COLAB_TORCH_VERSIONS if not spec.contains(v)]
    assert refused == [], f"torch{spec} refuses Colab's torch {refused}: pip would replace it"


# --- runtime type -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(GPU_NOTEBOOKS))
def test_gpu_notebooks_ask_colab_for_a_gpu(name):
    ipynb = REPO / "notebooks" / f"{name}.ipynb"
    metadata = json.loads(ipynb.read_text())["metadata"]
    assert metadata.get("accelerator") == "GPU", f"{ipynb.name} metadata: {metadata}"
    paired = jupytext.read(ipynb.with_suffix(".py")).metadata
    assert paired.get("accelerator") == "GPU", f"{name}.py would lose the accelerator on `make sync`"
