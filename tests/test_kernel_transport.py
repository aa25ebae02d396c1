"""Kernels started by a test run talk over IPC, never TCP (the root ``conftest.py`` sets it).

Over TCP a kernel's ports are picked, released and bound again, and another process can take
one in between: the intermittent hang of the notebook and browser tests. These tests run a
notebook the way nbmake does (nbclient in the pytest process) and the way the slide build does.
"""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbclient")
from nbclient import NotebookClient  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROBE = ("import json, ipykernel.connect\n"
         "print(json.dumps(json.load(open(ipykernel.connect.get_connection_file()))))")


def probe_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def connection_info(nb: nbformat.NotebookNode) -> dict:
    return json.loads(nb.cells[0].outputs[0]["text"])


def test_a_notebook_run_by_nbclient_gets_an_ipc_kernel_and_its_socket_folder_is_removed(tmp_path):
    nb = probe_notebook()
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    info = connection_info(nb)
    assert info["transport"] == "ipc", info
    folder = Path(info["ip"]).parent
    assert folder.name.startswith("mbpo-kernel-"), info["ip"]
    assert len(f"{info['ip']}-{info['control_port']}") <= 107   # a Unix socket path's limit
    assert not folder.exists(), f"{folder} left behind after the kernel stopped"
    assert list(tmp_path.iterdir()) == []     # nothing written into the notebook's folder


def test_the_slide_build_starts_its_kernels_on_ipc(tmp_path):
    # In a subprocess: there, no conftest patches nbclient, so this is build_slides' own setting.
    notebook, executed = tmp_path / "probe.ipynb", tmp_path / "out" / "probe.ipynb"
    nbformat.write(probe_notebook(), notebook)
    code = ("import sys; from pathlib import Path; import build_slides; "
            f"build_slides.execute(Path({str(notebook)!r}), Path({str(executed)!r}), 120, True)")
    subprocess.run([sys.executable, "-c", code], cwd=REPO / "scripts", check=True, timeout=300)
    info = connection_info(nbformat.read(executed, as_version=4))
    assert info["transport"] == "ipc", info
    assert not Path(info["ip"]).parent.exists()


class MissedWakeupSocket:
    """A socket whose first poll misses the message that is already there: it sleeps out its
    whole timeout and reports nothing (what a missed wake-up looks like); later polls see it."""

    def __init__(self):
        self.polls: list[float | None] = []

    async def poll(self, timeout_ms=None):
        import asyncio

        self.polls.append(timeout_ms)
        if len(self.polls) == 1:
            await asyncio.sleep((timeout_ms or 0) / 1000)
            return 0
        return 1


def test_a_missed_wakeup_costs_a_poll_slice_not_the_whole_timeout():
    import asyncio
    import time as time_

    from jupyter_client.channels import AsyncZMQSocketChannel

    sys.path.insert(0, str(REPO / "scripts"))
    import jupyter_kernels

    jupyter_kernels.patch_missed_wakeups()          # also done by the root conftest: idempotent
    channel = AsyncZMQSocketChannel.__new__(AsyncZMQSocketChannel)
    channel.socket = MissedWakeupSocket()

    async def received():
        return {"msg_type": "execute_reply"}

    channel._recv = received
    start = time_.monotonic()
    msg = asyncio.run(channel.get_msg(timeout=30))  # unpatched: 30 s, the whole timeout
    assert msg == {"msg_type": "execute_reply"}
    assert time_.monotonic() - start < 3 * jupyter_kernels.POLL_SLICE
    assert channel.socket.polls[0] == int(jupyter_kernels.POLL_SLICE * 1000)
