"""Files that survive faults: atomic writes with the user's permissions, and checkpoints that are
rotated, verified on load, and fall back to the previous one when the newest is damaged.

Atomic write (:func:`atomic_write`): the bytes go to a temporary file in the target's folder,
are flushed and fsynced, get the permissions the process umask gives a new file (``0644`` under
the usual ``022``; ``tempfile.mkstemp`` alone would leave ``0600``, unreadable to collaborators
on shared storage), and are renamed over the target; then the folder itself is fsynced, so the
rename survives a power cut too. A reader sees the old file or the new one, never half of one.

Checkpoints (:func:`save_checkpoint`, :func:`load_checkpoint`):

- each save keeps the previous checkpoint beside the new one, ``checkpoint.pt`` and
  ``checkpoint.prev.pt``: the new file is written in full first, then the current one is renamed
  to the previous name and the new one into place;
- a checkpoint is a ``torch.save`` zip archive, which stores a CRC-32 of every record (the
  pickled structure and each tensor's bytes). :func:`verify_checkpoint` reads every record and
  compares; ``torch.load`` alone does not, and loads flipped bytes as silently wrong weights;
- :func:`load_checkpoint` verifies the newest and, if it is missing, truncated, damaged or not
  ours, says why and loads the previous one instead (and says that too).
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

T = TypeVar("T")


class CheckpointWarning(UserWarning):
    """A checkpoint could not be used and another one was loaded instead."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a read-only folder); the one before is whole."""


def new_file_mode() -> int:
    """The permissions ``open()`` gives a new file under this process's umask (``0o666 & ~umask``)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_folder(folder: str | Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None],
                 before_replace: Callable[[], None] | None = None) -> Path:
    """Write ``path`` through ``write(f)`` atomically (see the module docstring); return the path.

    ``before_replace`` runs after the temporary file is complete and fsynced, just before it is
    renamed over ``path`` (checkpoints move the current file aside there). On any error, the
    temporary file is removed and an existing ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), new_file_mode())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_folder(path.parent)
    return path


def previous_checkpoint(path: str | Path) -> Path:
    """Where the checkpoint before ``path`` is kept: ``checkpoint.pt`` -> ``checkpoint.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(state: Any, path: str | Path) -> Path:
    """``torch.save(state)`` to ``path``, keeping the checkpoint it replaces as the previous one.

    The new file is complete and fsynced before anything is renamed; a crash at any point leaves
    at least one whole checkpoint (the new one, or the old one under either name). CRC-32s of
    every record are written whatever ``torch.serialization``'s global setting is.
    """
    path = Path(path)

    def keep_previous() -> None:
        if path.exists():
            os.replace(path, previous_checkpoint(path))

    crc = torch.serialization.get_crc32_options()
    try:
        torch.serialization.set_crc32_options(True)
        atomic_write(path, lambda f: torch.save(state, f), before_replace=keep_previous)
    except OSError as error:
        previous = previous_checkpoint(path)
        kept = (f"the checkpoint before it, {path}, is whole" if path.exists() else
                f"the checkpoint before it is whole as {previous}" if previous.exists() else
                "no checkpoint was replaced")
        raise CheckpointWriteError(error.errno, f"could not write the checkpoint {path} "
                                   f"({error.strerror or error}); {kept}") from error
    finally:
        torch.serialization.set_crc32_options(crc)
    return path


def verify_checkpoint(path: str | Path) -> None:
    """Raise ``ValueError`` naming ``path`` and what is wrong unless every record of the zip
    archive reads back with its stored CRC-32."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ValueError(f"{path} is not a readable checkpoint (truncated or not a torch.save file: "
                         f"{error})") from None
    except Exception as error:  # zlib and friends on garbage
        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error})") from None
    if bad is not None:
        raise ValueError(f"{path} is damaged: the record {bad!r} does not match its stored checksum "
                         "(bytes changed on disk)")


def _read(path: Path, parse: Callable[[dict[str, Any]], T]) -> T:
    verify_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error})") from None
    return parse(state)


def load_checkpoint(path: str | Path, parse: Callable[[dict[str, Any]], T],
                    fallback: bool = True) -> tuple[T, Path]:
    """Verify and load ``path``, then ``parse(state)``; return its result and the file used.

    ``parse`` checks that the state is ours (raising ``ValueError`` otherwise). When the newest
    checkpoint is missing or fails (and ``fallback``), the previous one is tried; a
    :class:`CheckpointWarning` says what was wrong with the newest and which file was loaded.
    If neither can be used, ``ValueError`` lists both reasons.
    """
    path = Path(path)
    try:
        return _read(path, parse), path
    except ValueError as newest_error:
        previous = previous_checkpoint(path)
        if not fallback or not previous.is_file():
            raise
        try:
            result = _read(previous, parse)
        except ValueError as previous_error:
            raise ValueError(f"{newest_error}; the previous checkpoint cannot be used either: "
                             f"{previous_error}") from None
        warnings.warn(f"{newest_error}; loaded the previous checkpoint {previous} instead",
                      CheckpointWarning, stacklevel=2)
        return result, previous


def checkpoint_exists(path: str | Path) -> bool:
    """``path`` or its previous checkpoint is on disk (a crash between the two renames of a save
    leaves only the previous one)."""
    path = Path(path)
    return path.is_file() or previous_checkpoint(path).is_file()
