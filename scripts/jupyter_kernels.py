"""How this repository's tools talk to Jupyter kernels without hanging.

Two causes of the test suite's intermittent hangs, each removed here:

1. **TCP port races.** jupyter_client gives a kernel five TCP ports by binding port 0, closing
   the sockets and writing the numbers down; the kernel binds them again a moment later, and any
   other process on the machine may take one in between. :func:`ipc_kernel_config` puts a
   kernel's sockets on the IPC transport instead: Unix socket files in a folder of their own,
   which nothing else can take.

2. **A reply that is waited for until the cell's timeout.** jupyter_client's asyncio channel
   waits for a message with a single ``socket.poll(timeout)``. If the wake-up for a message that
   has arrived is missed, the poll returns only at its timeout, finds the message and goes on
   as if nothing happened: a cell that took a second costs the whole cell timeout. Seen here in a
   fresh-clone ``make test``: in the slide build, notebook 03's widget cell got its reply 0.6 s
   after it started, yet the next cell started 899 s later (the cell timeout is 900 s), with
   kernel and client both idle and every socket queue empty. nbclient's issue 312 reports the
   same for cells that display ipywidgets; Voila executes notebooks with nbclient too, which is
   how the widget's browser test could wait 300 s for a page. :func:`patch_missed_wakeups`
   makes the channel poll in slices of at most :data:`POLL_SLICE` seconds, so a missed
   wake-up costs at most that; the total timeout is unchanged.

``scripts/build_slides.py`` uses both. The root ``conftest.py`` applies both to every kernel a
test run starts in its own process (nbmake, nbclient), and ``tests/browser/jupyter_servers.py``
starts Voila and JupyterLab on IPC with the polling patch applied in the server's process.
"""

from __future__ import annotations

import time
from pathlib import Path

POLL_SLICE = 0.5   # seconds: the longest a missed wake-up can delay a message


def ipc_kernel_config(folder: Path):
    """nbclient/jupyter_client settings for a kernel on the IPC transport, its sockets as files
    ``folder/k-1`` ... ``k-5``. Keep ``folder`` short: a socket path has at most 107 bytes."""
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(folder) / "k")
    return config


def patch_missed_wakeups() -> None:
    """Make ``jupyter_client``'s asyncio channels poll in slices (idempotent; see the docstring)."""
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    if getattr(AsyncZMQSocketChannel, "_mbpo_sliced", False):
        return

    async def get_msg(self, timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SLICE if deadline is None else max(0.0, deadline - time.monotonic())
            if await self.socket.poll(int(min(left, POLL_SLICE) * 1000)):
                return await self._recv()
            if deadline is not None and time.monotonic() >= deadline:
                raise Empty

    get_msg.__doc__ = AsyncZMQSocketChannel.get_msg.__doc__
    AsyncZMQSocketChannel.get_msg = get_msg
    AsyncZMQSocketChannel._mbpo_sliced = True
