"""State written by the tools survives a kill mid-write, and a locked read-modify-write loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from motcua.durable import locked, write_atomic

SIZE = 4 << 20  # big enough that a write takes a while: a kill lands inside one
WRITER = f"""
import sys
from pathlib import Path
from motcua.durable import write_atomic
path = Path(sys.argv[1])
n = 0
while True:
    write_atomic(path, bytes([65 + n % 2]) * {SIZE})  # all A, then all B, then all A ...
    n += 1
"""
INCREMENTER = """
import sys
from pathlib import Path
from motcua.durable import locked, write_atomic
path = Path(sys.argv[1])
for _ in range(int(sys.argv[2])):
    with locked(path):
        value = int(path.read_text())
        write_atomic(path, str(value + 1))
"""


def test_a_writer_killed_mid_write_leaves_the_old_or_the_new_content(tmp_path):
    path = tmp_path / "state.bin"
    write_atomic(path, b"A" * SIZE)
    for attempt in range(12):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
        time.sleep(0.15 + 0.05 * attempt)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
        data = path.read_bytes()
        assert len(data) == SIZE and data in (b"A" * SIZE, b"B" * SIZE), f"torn after kill {attempt}: {len(data)} bytes"
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_the_mode_is_set_before_the_content_is_written(tmp_path):
    path = tmp_path / "secret.cfg"
    write_atomic(path, "enable secret 9 $9$...\n", mode=0o600)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    write_atomic(path, "changed\n", mode=0o600)
    assert path.read_text() == "changed\n" and oct(path.stat().st_mode & 0o777) == "0o600"


def test_locked_read_modify_writes_lose_nothing(tmp_path):
    path = tmp_path / "counter.txt"
    write_atomic(path, "0")
    runs = [subprocess.Popen([sys.executable, "-c", INCREMENTER, str(path), "200"]) for _ in range(4)]
    assert all(run.wait(timeout=120) == 0 for run in runs)
    assert path.read_text() == "800"
    with locked(path):  # the lock is free again
        assert Path(str(path) + ".lock").exists()
