r"""Functions of a task that the user gives: a termination rule and a reward, by import path.

MBPO's model rollouts need to know where an imagined episode ends,
:math:`d = \text{done}(s, a, s')`, and may take the reward from a known function
:math:`r = R(s, a, s')` instead of the model's prediction. For a task of your own both are
functions ``fn(obs, act, next_obs)`` on batched tensors ``[B, obs_dim]``, ``[B, act_dim]``,
``[B, obs_dim]`` (on the model's device) that return

* termination: a ``torch.bool`` tensor ``[B]`` (``[B, 1]`` is accepted), True where the
  transition ends the episode (Gymnasium's ``terminated``, never a time limit);
* reward: a floating tensor ``[B]`` (``[B, 1]`` is accepted), as mbrl-lib's reward functions.

A run is re-created from its config (``config.json``, checkpoints, every Ray worker of a
sweep), so a config records such a function as an **import path** ``"package.module:function"``
(:func:`function_path` turns a module-level function into one; a lambda, a function defined
inside another, or one defined in ``__main__`` is refused, since another process cannot import
it). :func:`load_function` imports it back; :class:`CheckedFunction` checks every result's
shape, dtype and device (host-side metadata only, no device sync) and names the function and
what was wrong.

This module imports nothing from the package: :mod:`mbpo_lib.config` uses it to record
functions, :mod:`mbpo_lib.termination` and the trainer to call them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

import torch

IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
KINDS = ("termination", "reward")


def is_import_path(text: Any) -> bool:
    """True for a string of the form ``"package.module:function"`` (``"mod:Class.method"`` too)."""
    return isinstance(text, str) and IMPORT_PATH.fullmatch(text) is not None


def load_function(path: str, what: str = "function") -> Callable[..., Any]:
    """The callable at import path ``"package.module:name"``; ``ValueError`` naming ``what``, the
    path and what went wrong (not a path, the module cannot be imported, no such name)."""
    if not is_import_path(path):
        raise ValueError(f"{what} {path!r} is not an import path; write it as 'package.module:function'")
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"{what} {path!r}: module {module_name!r} cannot be imported "
                         f"({type(error).__name__}: {error}); it must be importable wherever the run is "
                         "made, resumed or swept") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{what} {path!r}: {module_name!r} has no {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{what} {path!r} is a {type(target).__name__}, not a function")
    return target


def function_path(fn: Any, what: str = "function") -> str:
    """The import path ``"module:qualname"`` that gives back ``fn`` (a string is returned as it
    is, once checked to look like a path).

    Refused with a ``ValueError`` that says why and what to do: a lambda, a function defined
    inside another (``<locals>``), a function of ``__main__`` (a script or notebook: a resumed run
    or a Ray worker cannot import it) and anything whose path does not lead back to it.
    """
    if isinstance(fn, str):
        if not is_import_path(fn):
            raise ValueError(f"{what} {fn!r} is not an import path; write it as 'package.module:function'")
        return fn
    if not callable(fn):
        raise ValueError(f"{what} must be a function or an import path 'package.module:function', got "
                         f"{type(fn).__name__} {fn!r}")
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    fix = ("; a run is re-created from its config (config.json, checkpoints, Ray workers), which records "
           "functions as 'package.module:function': define it at the top level of an importable module")
    if not isinstance(module, str) or not isinstance(name, str):
        raise ValueError(f"{what} {fn!r} has no module and name to import it by{fix}")
    if name == "<lambda>" or "<lambda>" in name:
        raise ValueError(f"{what} {fn!r} is a lambda{fix}")
    if "<locals>" in name:
        raise ValueError(f"{what} {name} is defined inside another function{fix}")
    if module == "__main__":
        raise ValueError(f"{what} {name} is defined in __main__ (a script or notebook), which a resumed "
                         f"run or a Ray worker cannot import{fix}")
    path = f"{module}:{name}"
    try:
        found = load_function(path, what)
    except ValueError:
        found = None
    if found is not fn:
        raise ValueError(f"{what} {fn!r}: its import path {path!r} does not give it back{fix}")
    return path


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {list(x.shape)} on {x.device}"
    return f"a {type(x).__name__}"


class CheckedFunction:
    """A user's ``fn(obs, act, next_obs)`` whose every result is checked (cheaply: shape, dtype
    and device are host-side metadata).

    ``kind`` is ``"termination"`` (a ``torch.bool`` tensor ``[B]`` or ``[B, 1]``) or
    ``"reward"`` (a floating tensor ``[B]`` or ``[B, 1]``); the result is returned as ``[B]``,
    on ``next_obs``'s device, or a ``ValueError`` names the function, what it returned and what
    is expected. ``name`` is how errors name it (its import path). Picklable when ``fn`` is a
    module-level function.
    """

    def __init__(self, fn: Callable[..., Any], kind: str, name: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not callable(fn):
            raise TypeError(f"the {kind} function must be callable as fn(obs, act, next_obs), got "
                            f"{type(fn).__name__}")
        self.fn, self.kind = fn, kind
        self.name = name or getattr(fn, "__qualname__", repr(fn))

    def __call__(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        out = self.fn(obs, act, next_obs)
        rows = next_obs.shape[0]
        expected = ("a torch.bool tensor [B]" if self.kind == "termination" else "a floating tensor [B]")
        expected += f" for B = {rows} rows, on {next_obs.device} (the model's device)"
        problem = None
        if not isinstance(out, torch.Tensor):
            problem = "returned " + _describe(out)
        elif tuple(out.shape) not in ((rows,), (rows, 1)):
            problem = f"returned shape {list(out.shape)}"
        elif self.kind == "termination" and out.dtype != torch.bool:
            problem = f"returned dtype {out.dtype} (compare, e.g. next_obs[:, 0] < 0.2, to get bools)"
        elif self.kind == "reward" and not out.dtype.is_floating_point:
            problem = f"returned dtype {out.dtype}"
        elif out.device != next_obs.device:
            problem = f"returned a tensor on {out.device}"
        if problem is not None:
            raise ValueError(f"the {self.kind} function {self.name} {problem}; it must return {expected} "
                             f"(called as fn(obs, act, next_obs) with obs {list(obs.shape)}, act "
                             f"{list(act.shape)})")
        return out.reshape(rows)

    def __repr__(self) -> str:
        return f"CheckedFunction({self.kind}: {self.name})"
