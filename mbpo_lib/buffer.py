"""Replay buffers: the real data ``D_env``, the model data ``D_model``, and MBPO's mixed batch.

A :class:`ReplayBuffer` stores transitions :math:`(s, a, r, s', d)` in preallocated tensors on
one device and overwrites the oldest row when full (FIFO). The done flag :math:`d` is
Gymnasium's ``terminated`` and never ``truncated``: a time limit does not end the MDP, so the
critic's target :math:`y = r + \\gamma (1 - d)\\, V(s')` must still bootstrap there.

Sampling draws indices uniformly with replacement, :math:`i_1, \\dots, i_n \\sim U\\{0, N-1\\}`:
one ``torch.randint`` and one gather per field, no host round trip.

MBPO trains SAC on batches mixing both buffers (:func:`sample_mixed`): of ``batch_size`` rows,
``int(batch_size * real_ratio)`` come from ``D_env`` and the rest from ``D_model``; the
paper's 5 % of 256 gives ``int(12.8) = 12`` real rows and 244 model rows.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

FLOAT_STORAGE = (torch.float32, torch.bfloat16, torch.float16)


class Batch(NamedTuple):
    """A minibatch of transitions, rows aligned, float32 on one device.

    ``obs [B, obs_dim]``, ``act [B, act_dim]``, ``rew [B]``, ``next_obs [B, obs_dim]``,
    ``terminated [B]`` (1.0 where the episode truly ended, else 0.0; never set by truncation).
    """

    obs: torch.Tensor
    act: torch.Tensor
    rew: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor

    @property
    def size(self) -> int:
        return self.obs.shape[0]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _randint(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """``n`` indices uniform in ``[0, high)`` on ``device``, drawn with ``generator`` (on the
    device or on the CPU; a CPU generator's draw is copied over)."""
    where = generator.device if generator is not None else device
    index = torch.randint(high, (n,), generator=generator, device=where)
    return index.to(device, non_blocking=True)


class ReplayBuffer:
    """A FIFO replay buffer of transitions, preallocated on ``device``.

    Args:
        capacity: the most rows held; once full, each new row overwrites the oldest.
        obs_dim, act_dim: widths of an observation and of an action.
        device: where the rows live (default CPU). Sampling returns tensors there.
        dtype: storage type of obs, act, rew and next_obs: float32 (default), or bfloat16 /
            float16 to halve the memory of a big model buffer. :meth:`sample` always returns
            float32. ``terminated`` is stored as bool.

    Rows are kept in a ring: ``add``/``add_batch`` write at the cursor and wrap around.
    :meth:`transitions` and :meth:`state_dict` give rows in insertion order (oldest first).
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        self.capacity = _positive_int("capacity", capacity)
        self.obs_dim = _positive_int("obs_dim", obs_dim)
        self.act_dim = _positive_int("act_dim", act_dim)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if dtype not in FLOAT_STORAGE:
            raise ValueError(f"dtype must be one of {', '.join(map(str, FLOAT_STORAGE))}, got {dtype!r}")
        self.dtype = dtype
        self._allocate(self.capacity)
        self._cursor = 0     # the row the next transition goes to
        self._size = 0       # rows held, <= capacity
        self.total_added = 0  # transitions ever added (overwritten ones included)

    def _allocate(self, capacity: int) -> None:
        def zeros(*shape: int, dtype: torch.dtype = self.dtype) -> torch.Tensor:
            return torch.zeros(capacity, *shape, dtype=dtype, device=self.device)

        self._obs, self._act = zeros(self.obs_dim), zeros(self.act_dim)
        self._rew, self._next_obs = zeros(), zeros(self.obs_dim)
        self._terminated = zeros(dtype=torch.bool)

    def _stores(self) -> tuple[torch.Tensor, ...]:
        return (self._obs, self._act, self._rew, self._next_obs, self._terminated)

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes the preallocated storage takes (all ``capacity`` rows, filled or not)."""
        return sum(store.element_size() * store.numel() for store in self._stores())

    def __repr__(self) -> str:
        return (f"ReplayBuffer({self._size}/{self.capacity} rows, obs_dim={self.obs_dim}, "
                f"act_dim={self.act_dim}, device={self.device}, dtype={self.dtype})")

    def check_finite(self) -> None:
        """Raise ``ValueError`` naming the field and the first bad row unless every stored value
        is finite (one pass over the filled rows; checkpoints call it before saving)."""
        for name, store in zip(("obs", "act", "rew", "next_obs"), self._stores()[:4], strict=True):
            bad = ~torch.isfinite(store[:self._size])
            if bool(bad.any()):
                row = int(bad.reshape(self._size, -1).any(dim=1).nonzero()[0, 0])
                raise ValueError(f"the buffer's {name} holds non-finite values (first at storage row {row})")

    # --- writing ---------------------------------------------------------------------------

    def _rows(self, value: Any, name: str, n: int | None, width: int | None) -> torch.Tensor:
        """``value`` as a tensor of shape ``[n, width]`` (``n`` None: one row; ``width`` None: a
        scalar per row, also accepted as ``[n, 1]``; a width of 1 also accepts one scalar per row)."""
        x = torch.as_tensor(value, device=self.device)
        x = (x != 0) if name == "terminated" and x.dtype != torch.bool else x
        x = x if name == "terminated" else x.to(self.dtype)
        rows = [] if n is None else [n]
        shape = rows + ([] if width is None else [width])
        accepted = [shape, rows + [1]] if width in (None, 1) else [shape]
        if width == 1:
            accepted.append(rows)
        if list(x.shape) not in accepted:
            dims = ["N"] * (n is not None) + [str(width)] * (width is not None)
            wanted = f"shape [{', '.join(dims)}]" if dims else "a scalar"
            rows_note = f" (N = {n}, the rows of obs)" if n is not None else ""
            raise ValueError(f"{name} must be {wanted}{rows_note}, got shape {list(x.shape)}")
        return x.reshape(shape)

    def add(self, obs: Any, act: Any, rew: Any, next_obs: Any, terminated: Any) -> None:
        """Store one transition: ``obs [obs_dim]``, ``act [act_dim]``, scalar ``rew``,
        ``next_obs [obs_dim]`` and ``terminated`` (Gymnasium's flag; pass ``terminated``, not
        ``terminated or truncated``).

        A row with a NaN or infinite value is refused (``ValueError`` naming the field): one
        such row would poison every fit and every checkpoint after it."""
        fields = (self._rows(obs, "obs", None, self.obs_dim), self._rows(act, "act", None, self.act_dim),
                  self._rows(rew, "rew", None, None), self._rows(next_obs, "next_obs", None, self.obs_dim),
                  self._rows(terminated, "terminated", None, None))
        finite = torch.stack([torch.isfinite(x).all() for x in fields[:4]])
        if not bool(finite.all()):
            names = [name for name, ok in zip(("obs", "act", "rew", "next_obs"), finite.tolist(), strict=True)
                     if not ok]
            raise ValueError(f"ReplayBuffer.add: {', '.join(names)} not finite (NaN or inf); the row was "
                             "not stored")
        for store, value in zip(self._stores(), fields, strict=True):
            store[self._cursor] = value
        self._cursor = (self._cursor + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)
        self.total_added += 1

    def add_batch(self, obs: Any, act: Any, rew: Any, next_obs: Any, terminated: Any) -> None:
        """Store N transitions at once: ``obs [N, obs_dim]``, ``act [N, act_dim]``, ``rew [N]``,
        ``next_obs [N, obs_dim]``, ``terminated [N]``. With N > capacity only the last
        ``capacity`` rows are kept. At most two slice copies per field, whatever N."""
        obs = torch.as_tensor(obs, device=self.device)
        n = obs.shape[0] if obs.dim() == 2 else -1
        if n < 0:
            raise ValueError(f"obs must have shape [N, {self.obs_dim}], got {list(obs.shape)}")
        fields = (self._rows(obs, "obs", n, self.obs_dim), self._rows(act, "act", n, self.act_dim),
                  self._rows(rew, "rew", n, None), self._rows(next_obs, "next_obs", n, self.obs_dim),
                  self._rows(terminated, "terminated", n, None))
        if n == 0:
            return
        self.total_added += n
        if n > self.capacity:  # only the newest rows survive
            fields = tuple(f[n - self.capacity:] for f in fields)
            n = self.capacity
        first = min(n, self.capacity - self._cursor)   # rows before the wrap
        for store, values in zip(self._stores(), fields, strict=True):
            store[self._cursor:self._cursor + first] = values[:first]
            if first < n:
                store[:n - first] = values[first:]
        self._cursor = (self._cursor + n) % self.capacity
        self._size = min(self._size + n, self.capacity)

    # --- reading ---------------------------------------------------------------------------

    def sample(self, n: int, generator: torch.Generator | None = None) -> Batch:
        """``n`` rows drawn uniformly with replacement, as a float32 :class:`Batch` on the device.

        ``generator`` (on the buffer's device or on the CPU) makes the draw repeatable.
        """
        n = _positive_int("n", n)
        if self._size == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer: add transitions first")
        return self.gather(_randint(self._size, n, generator, self.device))

    def gather(self, index: torch.Tensor) -> Batch:
        """The rows at storage positions ``index [n]`` (in ``[0, len(self))``) as a float32 Batch."""
        f32 = torch.float32
        return Batch(self._obs[index].to(f32), self._act[index].to(f32), self._rew[index].to(f32),
                     self._next_obs[index].to(f32), self._terminated[index].to(f32))

    def latest(self, n: int) -> Batch:
        """The newest ``min(n, len(self))`` rows, oldest of them first, as a float32 Batch.

        One gather at storage positions ``(cursor - m + i) mod capacity``, ``i = 0..m-1``: no copy
        of the whole buffer, also after it has wrapped. MBPO's model monitoring reads the real
        steps taken since the last fit with it.
        """
        m = min(_positive_int("n", n), self._size)
        index = (self._cursor - m + torch.arange(m, device=self.device)) % self.capacity
        return self.gather(index)

    def _ordered(self, store: torch.Tensor) -> torch.Tensor:
        """The rows of ``store`` oldest first: a view when no wrap happened, else one copy."""
        if self._size < self.capacity or self._cursor == 0:
            return store[:self._size]
        return torch.cat([store[self._cursor:], store[:self._cursor]])

    def transitions(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(obs, act, rew, next_obs, terminated)`` of every stored row, oldest first, float32.

        ``terminated`` is float (1.0 / 0.0). Read only: before the buffer first wraps (and when
        stored as float32) these are views of the storage. ``DynamicsModel.fit(buffer)`` reads this.
        """
        obs, act, rew, next_obs, terminated = (self._ordered(x).to(torch.float32) for x in self._stores())
        return obs, act, rew, next_obs, terminated

    # --- capacity and persistence ----------------------------------------------------------

    def resize(self, new_capacity: int) -> None:
        """Change the capacity and keep what the buffer holds, in order.

        Growing keeps every row; shrinking keeps the newest ``new_capacity`` rows. MBPO grows its
        model buffer when the rollout length k grows.
        """
        new_capacity = _positive_int("new_capacity", new_capacity)
        kept = [self._ordered(store)[-new_capacity:].clone() for store in self._stores()]
        self.capacity = new_capacity
        self._allocate(new_capacity)
        self._size = min(self._size, new_capacity)
        if self._size:
            for store, values in zip(self._stores(), kept, strict=True):
                store[:self._size] = values
        self._cursor = self._size % new_capacity

    def state_dict(self) -> dict[str, Any]:
        """The stored rows (oldest first, in the storage dtype), the capacity and counters.

        ``cursor`` records where the next row goes, so :meth:`load_state_dict` puts every row
        back at its storage position: a restored buffer then draws exactly the rows the
        original would from the same generator (what resuming a run step for step needs).
        """
        names = ("obs", "act", "rew", "next_obs", "terminated")
        state: dict[str, Any] = {name: self._ordered(store).clone()
                                 for name, store in zip(names, self._stores(), strict=True)}
        state.update(capacity=self.capacity, obs_dim=self.obs_dim, act_dim=self.act_dim,
                     total_added=self.total_added, cursor=self._cursor)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore rows, capacity and counters from :meth:`state_dict` (dims must match)."""
        if (state["obs_dim"], state["act_dim"]) != (self.obs_dim, self.act_dim):
            raise ValueError(f"state has obs_dim={state['obs_dim']}, act_dim={state['act_dim']}; this buffer "
                             f"has obs_dim={self.obs_dim}, act_dim={self.act_dim}")
        capacity = _positive_int("capacity", state["capacity"])
        rows = state["obs"].shape[0]
        if rows > capacity:
            raise ValueError(f"state holds {rows} rows but capacity {capacity}")
        cursor = int(state.get("cursor", rows % capacity))
        if not (0 <= cursor < capacity and (rows == capacity or cursor == rows % capacity)):
            raise ValueError(f"state has cursor {cursor} for {rows} rows in capacity {capacity}")
        self.capacity = capacity
        self._allocate(capacity)
        self._cursor = self._size = 0
        if rows:
            # oldest first -> storage positions cursor, cursor + 1, ... (mod capacity), as they were
            self._cursor = cursor if rows == capacity else 0
            self.add_batch(state["obs"], state["act"], state["rew"], state["next_obs"], state["terminated"])
        self.total_added = int(state["total_added"])


def sample_mixed(real: ReplayBuffer, model: ReplayBuffer, real_ratio: float, batch_size: int,
                 generator: torch.Generator | None = None) -> Batch:
    """MBPO's SAC batch: ``int(batch_size * real_ratio)`` rows from ``real``, the rest from ``model``.

    The paper's ``real_ratio = 0.05`` and ``batch_size = 256`` give 12 real and 244 model rows
    (``int`` truncates, as the official code does). While ``model`` is still empty every row
    comes from ``real``. Real rows come first in the batch. Both buffers must share a device.
    """
    if isinstance(real_ratio, bool) or not isinstance(real_ratio, (int, float)) or not (
            math.isfinite(real_ratio) and 0.0 <= real_ratio <= 1.0):
        raise ValueError(f"real_ratio must be a number in [0, 1], got {real_ratio!r}")
    batch_size = _positive_int("batch_size", batch_size)
    if real.device != model.device:
        raise ValueError(f"real and model buffers must be on one device, got {real.device} and "
                         f"{model.device}")
    if (real.obs_dim, real.act_dim) != (model.obs_dim, model.act_dim):
        raise ValueError(f"real buffer has obs_dim={real.obs_dim}, act_dim={real.act_dim}; model buffer "
                         f"has obs_dim={model.obs_dim}, act_dim={model.act_dim}")
    n_real = batch_size if len(model) == 0 else int(batch_size * real_ratio)
    n_model = batch_size - n_real
    if n_model == 0:
        return real.sample(n_real, generator)
    if n_real == 0:
        return model.sample(n_model, generator)
    a, b = real.sample(n_real, generator), model.sample(n_model, generator)
    return Batch(*(torch.cat([x, y]) for x, y in zip(a, b, strict=True)))
