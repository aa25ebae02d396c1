"""Create the project's virtual environment and install mbpo_lib into it.

Used by ``make lab`` and ``make test``; standard library only, so it runs on a bare Python.

Torch is installed first, on purpose. ``mbpo_lib`` asks for a *range* of torch versions (so
Colab and GPU users keep theirs), and a bare range resolved by pip on a Linux machine without
torch pulls the multi-gigabyte CUDA build. So:

* torch already importable in the venv: keep it;
* an NVIDIA driver present (``nvidia-smi`` answers): the default PyPI build, which carries CUDA;
* otherwise the CPU build ``torch==$MBPO_TORCH_CPU_VERSION`` (default 2.13.0): from a local
  wheel when ``PIP_FIND_LINKS`` holds one, else from PyTorch's CPU index on Linux, else PyPI
  (whose macOS and Windows wheels are CPU builds already).

A stamp file records what was installed; while pyproject.toml and the extras are unchanged, a
second run does nothing and takes a fraction of a second.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TORCH_RANGE = "torch>=2.2,<3"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
STAMP_NAME = ".mbpo_lib-install-stamp"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def has_nvidia_driver() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        return subprocess.run([smi], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def local_cpu_wheel(version: str) -> Path | None:
    """A ``torch-<version>+cpu`` wheel in one of ``PIP_FIND_LINKS``' folders, if any."""
    for folder in os.environ.get("PIP_FIND_LINKS", "").split():
        path = Path(folder)
        if path.is_dir():
            found = sorted(path.glob(f"torch-{version}+cpu-*.whl"))
            if found:
                return found[0]
    return None


def torch_install_args(py: Path) -> list[str] | None:
    """The pip arguments that install torch, or None when the venv already has one."""
    probe = subprocess.run([str(py), "-c", "import torch"], capture_output=True)
    if probe.returncode == 0:
        return None
    if has_nvidia_driver():
        return [TORCH_RANGE]
    version = os.environ.get("MBPO_TORCH_CPU_VERSION", "2.13.0")
    if local_cpu_wheel(version) is not None or not sys.platform.startswith("linux"):
        return [f"torch=={version}"]
    return [f"torch=={version}", "--index-url", TORCH_CPU_INDEX]


def stamp_text(extras: str) -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"pyproject={digest} extras={extras}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=str(ROOT / ".venv"), help="venv folder (default .venv)")
    parser.add_argument("--extras", default="notebooks,dev", help="extras of mbpo_lib to install")
    args = parser.parse_args(argv)

    if sys.version_info < (3, 10):  # noqa: UP036 (this script may run on an older python3)
        sys.exit(f"mbpo_lib needs Python >= 3.10; this is {sys.version.split()[0]}")
    venv = Path(args.venv)
    py = venv_python(venv)
    stamp = venv / STAMP_NAME
    if py.exists() and stamp.exists() and stamp.read_text() == stamp_text(args.extras):
        print(f"{venv} is up to date (delete {stamp} to reinstall)")
        return 0

    start = time.perf_counter()
    if not py.exists():
        run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(py), "-m", "pip", "install", "--progress-bar", "off"]
    torch_args = torch_install_args(py)
    if torch_args is not None:
        run(pip + torch_args)
    run(pip + ["-e", f"{ROOT}[{args.extras}]"])
    stamp.write_text(stamp_text(args.extras))
    print(f"installed mbpo_lib[{args.extras}] into {venv} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
