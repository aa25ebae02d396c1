"""Every Jupyter kernel a test run starts talks over Unix sockets, never over TCP ports.

Why: jupyter_client gives a kernel five TCP ports by binding port 0, closing the sockets and
writing the numbers to the connection file; the kernel binds them again a second or two later.
In between, anything else on the machine may take one of them (another kernel, a Ray worker,
the ephemeral port of any outgoing connection), and then the kernel fails to bind or the client
talks to the wrong process: the kernel "started", and no reply ever comes. That was the
intermittent hang of ``make test`` (nbmake kernels beside each other or beside Ray's servers,
Voila's kernel after the slide decks' thirty).

On the IPC transport a kernel's sockets are files in a folder of its own (made here, one per
kernel), so there is nothing to collide with. This file is pytest's root ``conftest.py``, so it
applies to every run under the repository: the unit tests, ``pytest notebooks --nbmake`` (nbmake
executes each notebook with nbclient in the pytest process) and the browser tests. Servers
started as subprocesses (Voila, JupyterLab) and ``scripts/build_slides.py`` take the same setting
on their own command lines (``--KernelManager.transport=ipc``).
"""

from __future__ import annotations

import shutil
import tempfile

from traitlets.config import Config


def _kernel_on_ipc(client) -> None:
    """Configure ``client`` (an nbclient ``NotebookClient``) so its kernel manager uses IPC."""
    folder = tempfile.mkdtemp(prefix="mbpo-kernel-", dir="/tmp")  # short: socket paths max 107 bytes
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = f"{folder}/k"
    client.update_config(config)
    client._mbpo_ipc_folder = folder


def _patch_nbclient() -> None:
    try:
        from nbclient.client import NotebookClient
    except ImportError:         # no notebook tooling installed: nothing to configure
        return
    if getattr(NotebookClient, "_mbpo_ipc", False):
        return
    create = NotebookClient.create_kernel_manager
    cleanup = NotebookClient._async_cleanup_kernel

    def create_kernel_manager(self):
        _kernel_on_ipc(self)
        return create(self)

    async def _async_cleanup_kernel(self):
        try:
            await cleanup(self)
        finally:
            folder = getattr(self, "_mbpo_ipc_folder", None)
            if folder:
                shutil.rmtree(folder, ignore_errors=True)

    NotebookClient.create_kernel_manager = create_kernel_manager
    NotebookClient._async_cleanup_kernel = _async_cleanup_kernel
    NotebookClient._mbpo_ipc = True


_patch_nbclient()
