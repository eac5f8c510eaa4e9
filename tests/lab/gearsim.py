"""One simulated gear process of its own for a test module: a key, a password, an enable secret and
one device on a unit-test loopback address (apart from the lab's 127.79 and the benchmarks' 127.80)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from motcua.lab.procs import spawn, stop, wait_for_banner


@contextlib.contextmanager
def gear_simulator(home: Path, name: str, address: str, role: str, ports: int) -> Iterator[Path]:
    """Run ``motcua.lab.gear serve`` for one device; yields ``home`` (key, password, secret, state, gear.log)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "key")], check=True)
    (home / "password").write_text(os.urandom(8).hex())
    (home / "secret").write_text("lab-enable-" + os.urandom(4).hex())
    config = {
        "user": "dxadmin",
        "authorized_key": str(home / "key.pub"),
        "password_file": str(home / "password"),
        "enable_secret_file": str(home / "secret"),
        "devices": [{"name": name, "address": address, "role": role, "ports": ports}],
    }
    (home / "devices.json").write_text(json.dumps(config))
    argv = [sys.executable, "-m", "motcua.lab.gear", "serve", "--config", str(home / "devices.json"),
            "--state", str(home / "state")]  # fmt: skip
    proc = spawn(f"test-gear-{name}", "gear", argv, home / "gear.log")
    try:
        assert wait_for_banner(address, 22, b"SSH-", 30), (home / "gear.log").read_text()
        yield home
    finally:
        stop([proc])
