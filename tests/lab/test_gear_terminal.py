"""The simulated gear's SSH terminal, over a real SSH session (paramiko, as netmiko uses).

IOS takes type-ahead one line at a time: each line is echoed, answered and
prompted before the next. netmiko sends several returns at once while it waits
for a slow device's first prompt; if the prompts ran together
("sw#sw#sw#") netmiko would take that run as the device's prompt and time out
on every command (as the 168-device benchmark did under load).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import paramiko
import pytest

from motcua.lab.procs import spawn, stop, wait_for_banner

ADDRESS = "127.81.0.1"  # unit tests' own loopback address, apart from the lab (127.79) and bench (127.80)
NAME = "w26740-sw01"


@pytest.fixture(scope="module")
def gear(tmp_path_factory):
    home = tmp_path_factory.mktemp("gear")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "key")], check=True)
    (home / "password").write_text(os.urandom(8).hex())
    (home / "secret").write_text("lab-enable-" + os.urandom(4).hex())
    config = {
        "user": "dxadmin",
        "authorized_key": str(home / "key.pub"),
        "password_file": str(home / "password"),
        "enable_secret_file": str(home / "secret"),
        "devices": [{"name": NAME, "address": ADDRESS, "role": "switch", "ports": 24}],
    }
    (home / "devices.json").write_text(json.dumps(config))
    argv = [sys.executable, "-m", "motcua.lab.gear", "serve", "--config", str(home / "devices.json"),
            "--state", str(home / "state")]  # fmt: skip
    proc = spawn("test-gear", "gear", argv, home / "gear.log")
    try:
        assert wait_for_banner(ADDRESS, 22, b"SSH-", 30), (home / "gear.log").read_text()
        yield home
    finally:
        stop([proc])


@pytest.fixture
def shell(gear):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 - a throwaway simulator on loopback
    client.connect(ADDRESS, username="dxadmin", key_filename=str(gear / "key"), look_for_keys=False,
                   allow_agent=False, timeout=10)  # fmt: skip
    channel = client.invoke_shell(width=511)
    try:
        yield channel
    finally:
        client.close()


def read_until(channel, text: str, count: int = 1, timeout: float = 10) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while seen.count(text) < count:
        assert time.monotonic() < deadline, f"waited for {count} x {text!r}; got {seen!r}"
        if channel.recv_ready():
            seen += channel.recv(65536).decode()
        else:
            time.sleep(0.02)
    return seen


def test_type_ahead_returns_give_one_prompt_per_line(shell):
    assert read_until(shell, f"{NAME}>") == f"\r\n{NAME}>"
    shell.send("\n\n\n")
    assert read_until(shell, f"{NAME}>", 3) == f"\r\n{NAME}>" * 3
    shell.send("\r\n\r")  # CR LF is one line end, a lone CR another
    assert read_until(shell, f"{NAME}>", 2) == f"\r\n{NAME}>" * 2


def test_commands_sent_at_once_are_answered_in_order(shell, gear):
    read_until(shell, f"{NAME}>")
    secret = (gear / "secret").read_text()
    shell.send(f"enable\n{secret}\nterminal length 0\nshow clock\n")
    out = read_until(shell, f"{NAME}#", 2)
    assert secret not in out  # the enable secret is not echoed
    assert out.startswith(f"enable\r\nPassword: \r\n{NAME}#terminal length 0\r\n{NAME}#show clock\r\n")


def test_backspace_erases(shell):
    read_until(shell, f"{NAME}>")
    shell.send("shox\x7fw versiox\x08n\n")
    out = read_until(shell, f"{NAME}>")
    assert "Invalid input" not in out and "Cisco IOS" in out
