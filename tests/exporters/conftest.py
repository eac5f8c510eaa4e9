"""Exporters run as their real console scripts, on loopback, stopped by PID after each test."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from motcua.lab.procs import Proc, alive, spawn, stop, wait_for_port

from ..conftest import BIN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Running:
    proc: Proc
    base: str
    log: Path
    config: Path

    def get(self, path: str, timeout: float = 10.0, headers: dict | None = None, context=None) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path, headers=headers or {})  # noqa: S310 (http(s) on loopback)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:  # noqa: S310 (loopback)
                return resp.status, resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8")

    def metrics(self) -> str:
        status, text = self.get("/metrics")
        assert status == 200, text
        return text

    def alive(self) -> bool:
        return alive(self.proc)

    def wait_for(self, needle: str, path: str = "/metrics", timeout: float = 15.0) -> str:
        """The page once a line of it that is not a comment contains ``needle`` (fails with the last page and
        the log). Comments are left out: "# HELP motcua_dossier_records_up 1 if the last read..." would
        otherwise answer a wait for "motcua_dossier_records_up 1" at once."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.get(path)[1]
            if any(needle in line for line in text.splitlines() if not line.startswith("#")):
                return text
            time.sleep(0.2)
        if self.alive():  # the exporter's threads' stacks into its log (faulthandler on SIGUSR1)
            os.kill(self.proc.pid, signal.SIGUSR1)
            time.sleep(0.5)
        raise AssertionError(
            f"{needle!r} not in {path} after {timeout}s:\n{text[-3000:]}\nlog:\n{self.log.read_text()}"
        )


# promtool's linter reads "counter" in a name as the metric type; in motcua_counter_* it is the
# counter PC (quầy), the namespace issue #21 named. That one finding, for that namespace only.
COUNTER_PC_NAME = re.compile(r"^motcua_counter_\w+ metric name should not include type 'counter'$")


def promtool_check(text: str) -> None:
    """`promtool check metrics`: exposition format and naming conventions."""
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    findings = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    problems = [line for line in findings if not COUNTER_PC_NAME.match(line)]
    # rc 3: lint findings only (1 would be a text that does not parse).
    assert result.returncode in ((0, 3) if findings else (0,)) and not problems, result.stdout + result.stderr


@pytest.fixture(scope="module")
def start_exporter(tmp_path_factory):
    """start_exporter(script, config_text, *args, scheme="http") -> Running; all stopped after the module."""
    started: list[Proc] = []
    tmp_path = tmp_path_factory.mktemp("exporters")

    def _start(script: str, config: str, *args: str, scheme: str = "http") -> Running:
        port = free_port()
        config_file = tmp_path / f"{script}-{port}.yml"
        config_file.write_text(config)
        log = tmp_path / f"{script}-{port}.log"
        argv = [
            str(BIN / script),
            "--config.file",
            str(config_file),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            *args,
        ]
        proc = spawn(script, "exporter", argv, log)
        started.append(proc)
        assert wait_for_port("127.0.0.1", port, 15), log.read_text()
        return Running(proc, f"{scheme}://127.0.0.1:{port}", log, config_file)

    yield _start
    stop(started)


def tls_client(ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False  # the lab certificate names the stand-in's address, not 127.0.0.1
    return context


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    root = tmp_path_factory.mktemp("sink")
    http, smtp = free_port(), free_port()
    argv = [sys.executable, "-m", "motcua.lab.sink", "--address", "127.0.0.1", "--http-port", str(http),
            "--smtp-port", str(smtp), "--log", str(root / "notifications.jsonl"), "--fault-delay", "3"]  # fmt: skip
    proc = spawn("sink", "sink", argv, root / "sink.log")
    assert wait_for_port("127.0.0.1", http, 15), (root / "sink.log").read_text()
    yield f"http://127.0.0.1:{http}/"
    stop([proc])
