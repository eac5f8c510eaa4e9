"""Writing state so that a crash, a kill or a power cut leaves the old content or the new, never a torn file.

Every file the tools keep (the certificate ledger, gear backups and their manifest,
reports, a move's record, rendered configs) is written with :func:`write_atomic`: a
temporary file of a unique name in the same directory, created with its final mode,
written and ``fsync``-ed, renamed over the target, and the directory ``fsync``-ed so
the rename itself survives. A read-modify-write of shared state (the ledger) holds
:func:`locked` around it, so two runs never lose each other's changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``data`` atomically and durably (see the module's docstring)."""
    path = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """fsync a directory, so the names created, renamed or removed in it are on disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for ``path`` (on ``<path>.lock`` beside it) until the block ends."""
    path = Path(path)
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
