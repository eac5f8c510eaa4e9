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
from collections.abc import Iterator
from pathlib import Path

# One implementation, in the exporters' package (which runs alone on the hosts; the tools may import it).
from motcua_exporters.core.files import sync_directory, write_atomic

__all__ = ["locked", "sync_directory", "write_atomic"]


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
