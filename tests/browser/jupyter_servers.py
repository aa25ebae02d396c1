"""Shared by the browser tests: Debian's Chromium, and Jupyter servers that fail loudly.

A server (Voila, JupyterLab) is started by :func:`jupyter_server`:

- its kernels run on the IPC transport (``--KernelManager.transport=ipc``, sockets in a short
  folder of their own), never on TCP ports that another process can take between the moment
  jupyter_client picks them and the moment the kernel binds them, and it runs with jupyter_client's
  polling patched so that a missed wake-up cannot stall a cell until its timeout (both in
  ``scripts/jupyter_kernels.py``);
- it must bind the port it was given (``port_retries=0``): a server that quietly moved to the
  next port would leave the test talking to nothing, or to someone else;
- every wait has a deadline and fails with a message that says what did not happen and ends
  with the server's log, never a bare browser timeout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VENV_BIN = Path(sys.executable).parent
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def require_chromium(*programs: str) -> None:
    """Skip without Debian's Chromium, Playwright or the venv's ``programs`` (e.g. ``voila``);
    fail instead when ``MBPO_REQUIRE_BROWSER=1`` (CI), where these tests must really run."""
    missing = [] if CHROMIUM.exists() else [f"{CHROMIUM} (Debian's chromium)"]
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright in this venv")
    missing += [f"{name} in this venv" for name in programs if not shutil.which(name, path=str(VENV_BIN))]
    if not missing:
        return
    reason = "needs " + ", ".join(missing)
    if os.environ.get("MBPO_REQUIRE_BROWSER") == "1":
        pytest.fail(f"MBPO_REQUIRE_BROWSER=1 but the browser test cannot run: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running Jupyter server: its base URL, its process and its log file."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self, last: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as error:
            return f"(no log: {error})"
        return text[-last:]

    def failure(self, what: str) -> str:
        """A failure message: ``what`` did not happen, then the server's state and log."""
        state = "running" if self.process.poll() is None else f"exited with {self.process.returncode}"
        return f"{what}\nserver {state}; last lines of its log ({self.log_path}):\n{self.log()}"


@contextlib.contextmanager
def jupyter_server(argv: list[str], cwd: Path, port: int, start_timeout: float = 120) -> Iterator[Server]:
    """Start ``argv`` (a Voila or JupyterLab command, with ``--port=port`` in it) in ``cwd``.

    Adds the IPC kernel settings. Yields once the port accepts connections; stops the server
    (terminate, then kill) on the way out.
    """
    sockets = tempfile.mkdtemp(prefix="mbpo-kernel-", dir="/tmp")  # short: socket paths <= 107 bytes
    argv = [*argv, "--KernelManager.transport=ipc", f"--KernelManager.ip={sockets}/k"]
    log_path = cwd / f"{Path(argv[0]).name}.log"
    log = open(log_path, "w")
    # The server runs in a Python that first patches jupyter_client's polling (a missed wake-up
    # must not cost a cell timeout), then starts the program's own entry point.
    program = Path(argv[0]).read_text().splitlines()
    entry = next(line.split()[1:4] for line in program if line.startswith("from ") and " import main" in line)
    launcher = (f"import sys; sys.path.insert(0, {str(SCRIPTS)!r}); import jupyter_kernels; "
                f"jupyter_kernels.patch_missed_wakeups(); from {entry[0]} import main; "
                f"sys.argv[0] = {argv[0]!r}; sys.exit(main())")
    process = subprocess.Popen([sys.executable, "-c", launcher, *argv[1:]], cwd=cwd, stdout=log,
                               stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}/", process, log_path)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(server.failure(f"{Path(argv[0]).name} did not listen on port {port} "
                                               f"within {start_timeout:.0f} s"))
                time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
        log.close()
        shutil.rmtree(sockets, ignore_errors=True)


def wait_until(check: Callable[[], bool], timeout: float, message: Callable[[], str],
               interval: float = 0.5) -> None:
    """Poll ``check`` until it is true; after ``timeout`` seconds fail with ``message()``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:   # a page mid-navigation may refuse a query: try again
            pass
        if time.monotonic() > deadline:
            pytest.fail(message())
        time.sleep(interval)
