"""Many targets at a time, with a progress bar: the fleet tools' shared runner.

``motcua netgear`` (routers and switches) and ``motcua fleet`` (counter PCs)
both run one action per target through :func:`run_each`: a bounded pool, an
exception is that target's failure (never the run's), outcomes in order.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TextIO


class Progress:
    """A one-line progress bar on a terminal; a line per tenth otherwise (logs stay short)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, enabled: bool = True):
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.tty = self.stream.isatty()
        self.done = self.failed = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._last_tenth = -1

    def step(self, ok: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += 0 if ok else 1
            if not self.enabled:
                return
            tenth = self.done * 10 // self.total
            if self.tty:
                width = 30
                filled = width * self.done // self.total
                self.stream.write(
                    f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                    f" failed {self.failed} {time.monotonic() - self.started:5.1f}s"
                )
                if self.done == self.total:
                    self.stream.write("\n")
                self.stream.flush()
            elif tenth != self._last_tenth or self.done == self.total:
                self._last_tenth = tenth
                self.stream.write(f"{self.label}: {self.done}/{self.total} done, {self.failed} failed\n")
                self.stream.flush()


@dataclass
class Outcome:
    """What one action did on one target (a device, a host: anything with a ``name``)."""

    device: Any
    ok: bool
    value: Any = None
    error: str | None = None
    seconds: float = 0.0


def run_each(
    devices: list[Any],
    action: Callable[[Any], Any],
    workers: int = 32,
    label: str = "targets",
    progress: bool = True,
) -> list[Outcome]:
    """``action`` on every device, ``workers`` at a time; outcomes in the devices' order.

    An exception is the device's failure (its message kept), never the run's.
    """
    bar = Progress(len(devices), label, enabled=progress)

    def one(device: Any) -> Outcome:
        started = time.monotonic()
        try:
            value = action(device)
            outcome = Outcome(device, True, value)
        except Exception as exc:
            outcome = Outcome(device, False, error=_describe(exc))
        outcome.seconds = time.monotonic() - started
        bar.step(outcome.ok)
        return outcome

    if workers <= 1:
        return [one(d) for d in devices]
    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(devices)))) as pool:
        futures = {pool.submit(one, d): d.name for d in devices}
        results = {futures[f]: f.result() for f in as_completed(futures)}
    return [results[d.name] for d in devices]


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"
