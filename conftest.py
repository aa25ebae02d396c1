"""Every Jupyter kernel a test run starts talks over Unix sockets, and no reply waits for a
missed wake-up (both explained in ``scripts/jupyter_kernels.py``).

This is pytest's root ``conftest.py``, so it applies to every run under the repository: the unit
tests, ``pytest notebooks --nbmake`` (nbmake executes each notebook with nbclient in the pytest
process) and the browser tests. Servers started as subprocesses (Voila, JupyterLab) get the same
settings from ``tests/browser/jupyter_servers.py``; ``scripts/build_slides.py`` sets them itself.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))


def _patch_nbclient() -> None:
    try:
        from nbclient.client import NotebookClient
    except ImportError:         # no notebook tooling installed: nothing to configure
        return
    from jupyter_kernels import ipc_kernel_config, patch_missed_wakeups

    patch_missed_wakeups()
    if getattr(NotebookClient, "_mbpo_ipc", False):
        return
    create = NotebookClient.create_kernel_manager
    cleanup = NotebookClient._async_cleanup_kernel

    def create_kernel_manager(self):
        folder = tempfile.mkdtemp(prefix="mbpo-kernel-", dir="/tmp")  # short: socket paths <= 107 bytes
        self.update_config(ipc_kernel_config(Path(folder)))
        self._mbpo_ipc_folder = folder
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
