"""Processes the lab starts: spawned detached, remembered by PID and start time,
stopped by PID only (never by name), so nothing the lab did not start is touched."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Proc:
    """A process the lab started. ``start_time`` guards against PID reuse."""

    name: str
    kind: str  # counter | gear | dossier
    pid: int
    start_time: int
    log: str
    namespace: str = ""  # counters: the container's PID namespace, to find leftovers

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def stat_fields(pid: int | str) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on, or None if the process is gone.

    comm (field 2) may contain spaces and parentheses, so fields start after the last ')':
    [0] state, [1] ppid, ... [19] start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def start_time_of(pid: int) -> int | None:
    """Kernel start time (clock ticks since boot) of a PID, or None if gone."""
    fields = stat_fields(pid)
    if fields is None or fields[0] == "Z":  # a zombie has exited already
        return None
    return int(fields[19])


def alive(proc: Proc) -> bool:
    return start_time_of(proc.pid) == proc.start_time


def spawn(name: str, kind: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Proc:
    """Start ``argv`` in its own session, output to ``log``; return its record."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    started = None
    for _ in range(50):
        started = start_time_of(child.pid)
        if started is not None:
            break
        time.sleep(0.01)
    if started is None:
        raise RuntimeError(f"{name}: process exited at once; see {log}")
    return Proc(name, kind, child.pid, started, str(log))


def stop(procs: list[Proc], timeout: float = 20.0) -> list[str]:
    """SIGTERM every live process, wait, SIGKILL stragglers. Returns what was killed hard."""
    live = [p for p in procs if alive(p)]
    for proc in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in live):
        _reap()
        time.sleep(0.1)
    killed = []
    for proc in live:
        if alive(proc):
            try:
                os.kill(proc.pid, signal.SIGKILL)
                killed.append(proc.name)
            except ProcessLookupError:
                pass
    _reap()
    return killed


def _reap() -> None:
    """Collect exited children of this process (when the lab CLI started them)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def port_in_use(address: str, port: int) -> str | None:
    """Why (address, port) cannot be listened on, or None if it is free."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As every server does: connections left in TIME_WAIT do not block a new
    # listener, only another listening socket does.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        sock.close()
    return None


def wait_for_banner(address: str, port: int, prefix: bytes, timeout: float) -> bool:
    """Wait until a TCP service on (address, port) greets with ``prefix``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1.0) as sock:
                sock.settimeout(2.0)
                if sock.recv(len(prefix)).startswith(prefix):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def wait_for_port(address: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def poll(predicate, timeout: float, what: str, step: float = 0.5):
    """Call ``predicate`` until it returns something true; return that.

    Raises TimeoutError naming ``what`` after ``timeout`` seconds. Tests and
    benchmarks wait on the lab's services with it.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)
