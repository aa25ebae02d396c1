"""The two commands and the install: pyproject, environment.yml, README, .ci/run, bootstrap."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import tomllib
import torch
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def requirements() -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in PYPROJECT["project"]["dependencies"]]
    return {req.name: req for req in reqs}


def test_runtime_requirements_are_ranges_not_pins():
    reqs = requirements()
    assert set(reqs) == {"torch", "gymnasium", "numpy", "matplotlib", "ipywidgets", "tqdm", "pillow", "av"}
    assert "mujoco" in reqs["gymnasium"].extras
    for req in reqs.values():
        assert req.specifier, f"{req.name} has no version range"
        assert all(spec.operator != "==" for spec in req.specifier), f"{req} is a pin"


@pytest.mark.parametrize("version", ["2.5.1", "2.8.0", "2.9.1", "2.13.0"])
def test_torch_range_admits_colab_and_the_local_cpu_wheel(version):
    assert Version(version) in requirements()["torch"].specifier


def test_installed_torch_satisfies_the_range():
    installed = Version(torch.__version__.split("+")[0])
    assert installed in requirements()["torch"].specifier


def test_ipywidgets_range_covers_colab_7_and_jupyterlab_8_only():
    spec = requirements()["ipywidgets"].specifier
    assert Version("7.7.1") in spec and Version("8.1.5") in spec
    assert Version("7.6.5") not in spec and Version("9.0.0") not in spec


def test_extras_hold_the_notebook_and_dev_tools():
    extras = {name: {Requirement(r).name for r in reqs}
              for name, reqs in PYPROJECT["project"]["optional-dependencies"].items()}
    assert {"jupyterlab", "ipykernel", "jupytext"} <= extras["notebooks"]
    dev_tools = {"pytest", "nbmake", "pytest-timeout", "pytest-xdist", "ruff", "voila", "playwright"}
    assert dev_tools <= extras["dev"]


def test_ray_is_the_optional_sweep_extra_and_dev_installs_it():
    extras = PYPROJECT["project"]["optional-dependencies"]
    (ray,) = [Requirement(r) for r in extras["sweep"]]
    assert ray.name == "ray" and ray.specifier and Version("2.9.0") in ray.specifier
    assert "ray" not in requirements()                       # optional: the core never imports it
    self_refs = [Requirement(r) for r in extras["dev"] if Requirement(r).name == "mbpo_lib"]
    assert [req.extras for req in self_refs] == [{"sweep"}]


def test_environment_yml_agrees_with_pyproject():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict)]
    assert len(pip_sections) == 1
    (line,) = pip_sections[0]  # pyproject.toml stays the single source of requirements
    match = re.fullmatch(r"-e \.\[([a-z,]+)\]", line)
    assert match, f"pip section should be '-e .[extras]', got {line!r}"
    extras = set(match.group(1).split(","))
    assert extras == {"notebooks", "dev"}
    assert extras <= set(PYPROJECT["project"]["optional-dependencies"])
    # conda's python must satisfy the package's requires-python
    from packaging.specifiers import SpecifierSet
    assert Version("3.11") in SpecifierSet(PYPROJECT["project"]["requires-python"])


def readme_test_command() -> str:
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^make (\w+)$", readme, flags=re.MULTILINE)
    assert "test" in commands and "lab" in commands, "the README names `make lab` and `make test`"
    return "make test"


def test_ci_runs_exactly_the_readme_test_command():
    lines = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    assert commands[-1] == readme_test_command()
    # nothing hand-made beside it: the rest only installs Debian's Chromium and npm (for the
    # browser tests and the slides' vendored assets) and demands the browser tests really run
    for line in commands[:-1]:
        assert "pytest" not in line and "make " not in line, line
    assert "export MBPO_REQUIRE_BROWSER=1" in commands
    assert any("apt-get install" in line for line in commands)
    for package in ("chromium", "npm"):
        assert f"command -v {package} >/dev/null || missing+=({package})" in commands, package


def test_makefile_test_target_runs_lint_unit_tests_and_notebooks_in_fast_mode():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "MBPO_FAST=1" in recipe and "MBPO_FIGURES_DIR=" in recipe
    assert "-ra tests --ignore=tests/browser" in recipe                 # the unit tests
    assert "-p no:xdist -ra notebooks --nbmake" in recipe               # every notebook, one kernel at a time
    assert "lint" in recipe.splitlines()[0]  # `test: lint` runs ruff first


def load_bootstrap():
    spec = importlib.util.spec_from_file_location("bootstrap_venv", REPO / "scripts/bootstrap_venv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bootstrap(monkeypatch):
    module = load_bootstrap()
    # a venv python without torch
    monkeypatch.setattr(module.subprocess, "run",
                        lambda *a, **k: type("Done", (), {"returncode": 1})())
    return module


def test_bootstrap_takes_the_local_cpu_wheel_without_cuda(bootstrap, monkeypatch, tmp_path):
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.setattr(bootstrap, "has_nvidia_driver", lambda: False)
    assert bootstrap.torch_install_args(Path(sys.executable)) == ["torch==2.13.0"]


def test_bootstrap_uses_the_cpu_index_on_linux_without_a_local_wheel(bootstrap, monkeypatch):
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.setattr(bootstrap, "has_nvidia_driver", lambda: False)
    monkeypatch.setattr(bootstrap.sys, "platform", "linux")
    assert bootstrap.torch_install_args(Path(sys.executable)) == [
        "torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cpu"]


def test_bootstrap_takes_the_cuda_build_with_a_driver(bootstrap, monkeypatch):
    monkeypatch.setattr(bootstrap, "has_nvidia_driver", lambda: True)
    args = bootstrap.torch_install_args(Path(sys.executable))
    assert args == [bootstrap.TORCH_RANGE]
    assert Requirement(args[0]).specifier == requirements()["torch"].specifier


def test_bootstrap_keeps_an_installed_torch():
    # the real subprocess: this interpreter has torch
    assert load_bootstrap().torch_install_args(Path(sys.executable)) is None
