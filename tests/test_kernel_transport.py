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
