"""Fault-switch files: JSON the lab CLI writes and a running simulator re-reads when it changes."""

from __future__ import annotations

import json
import threading
from pathlib import Path


class WatchedJSON:
    """The content of a JSON object file, re-read only when its mtime changes.

    A missing, empty or malformed file reads as ``{}``: a simulator never
    stops serving because of a half-written switch file.
    """

    def __init__(self, path: Path):
        self.path = path
        self._mtime: float | None = None
        self._data: dict = {}
        self._lock = threading.Lock()

    def read(self) -> dict:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                self._mtime, self._data = None, {}
                return {}
            if mtime != self._mtime:
                try:
                    data = json.loads(self.path.read_text() or "{}")
                except (OSError, ValueError):
                    data = {}
                self._data = data if isinstance(data, dict) else {}
                self._mtime = mtime
            return dict(self._data)


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text() or "{}")
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict) -> None:
    """Replace the file atomically, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
