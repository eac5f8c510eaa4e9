"""The exporters' shared core: durations, config sections, exposition, listen addresses, the zipapp bundle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import zipfile
from io import BytesIO

import pytest

from motcua.lab.procs import spawn, stop
from motcua.monitoring.bundle import PACKAGE, bundle_bytes
from motcua_exporters.core.config import ConfigError, Section, parse_duration
from motcua_exporters.core.exposition import Board, Family
from motcua_exporters.core.web import split_address

from ..conftest import BIN
from .conftest import free_port


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("15s", 15), ("1m30s", 90), ("2h", 7200), ("7d", 604800), (3, 3.0)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15", "fifteen", "-1s", "1x", True, None, ""])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_section_names_file_and_key_in_errors():
    root = Section({"targets": [{"name": "a", "timeout": "x"}]}, "dossier.yml")
    item = root.sections("targets")[0]
    with pytest.raises(ConfigError) as caught:
        item.duration("timeout")
    assert str(caught.value).startswith("dossier.yml: targets[0].timeout: not a duration")
    item.str("name")
    typo = Section({"name": "a", "timeot": 1}, "dossier.yml", "targets[0]")
    typo.str("name")
    with pytest.raises(ConfigError, match=r"^dossier.yml: targets\[0\]\.timeot: unknown key$"):
        typo.done()


def test_board_renders_each_family_once_and_escapes_label_values():
    board = Board([Family("x_up", "gauge", "Up."), Family("x_info", "gauge", "Info.")])
    board.put("a", {"x_up": [({"target": "a"}, 1.0)], "x_info": [({"target": "a", "why": 'say "hi"\\\n'}, 1)]})
    board.put("b", {"x_up": [({"target": "b"}, 0.0)]})
    text = board.render()
    assert text.count("# TYPE x_up gauge") == 1 and text.count("# TYPE x_info gauge") == 1
    assert 'x_up{target="a"} 1\nx_up{target="b"} 0\n' in text
    assert r'why="say \"hi\"\\\n"' in text
    board.keep_only(["b"])
    assert "x_info" not in board.render() and 'target="a"' not in board.render()


@pytest.mark.parametrize(
    ("listen", "expected"), [("127.0.0.1:9110", ("127.0.0.1", 9110)), ("[::1]:9111", ("::1", 9111))]
)
def test_listen_addresses(listen, expected):
    assert split_address(listen) == expected


@pytest.mark.parametrize("listen", [":9110", "localhost", "127.0.0.1:x", "127.0.0.1:70000"])
def test_listen_address_needs_a_host_and_a_port(listen):
    with pytest.raises(ValueError):
        split_address(listen)


def test_bundle_is_reproducible_and_holds_every_module():
    first, second = bundle_bytes(), bundle_bytes()
    assert first == second  # copying it to counters is idempotent
    assert first.startswith(b"#!/usr/bin/python3\n")
    names = zipfile.ZipFile(BytesIO(first.split(b"\n", 1)[1])).namelist()
    files = [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("templates/*.html")]
    modules = sorted(f"motcua_exporters/{p.relative_to(PACKAGE).as_posix()}" for p in files)
    assert names == ["__main__.py", *modules]
    assert "motcua_exporters/board/templates/city.html" in names  # the duty board's pages travel with its code
    assert not any("__pycache__" in name for name in names)


def test_the_board_reads_its_templates_from_inside_the_zip(tmp_path):
    """On a monitoring host the board runs from the zip: its templates are read with importlib.resources."""
    bundle = tmp_path / "motcua-exporters.pyz"
    bundle.write_bytes(bundle_bytes())
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import motcua_exporters.board.app as app; "
        "from motcua_exporters.board.sources import Snapshot; "
        "assert app.__file__.startswith(sys.argv[1]), app.__file__; "
        "print(app._templates().get_template('city.html').render(partial=True, snap=Snapshot(), stale_am=False, "
        "stale_prom=False, regions=[], counts={'ok': 0, 'warning': 0, 'critical': 0, 'offline': 0}, "
        "system={'known': False, 'alerts': [], 'seconds': None, 'cert_days': None}, readiness={}, level_text={}, "
        "refresh=15, host=str, at=str)[:2000])"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(bundle)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "0 bình thường / ok" in done.stdout


SLOW_ADDRESS = "127.81.0.7:19110"  # the tests' own loopback address


@pytest.fixture
def http_server(monkeypatch):
    """An exporter's HTTP server on loopback with a quick head deadline and few connection slots."""
    from motcua_exporters.core import web

    monkeypatch.setattr(web._Handler, "head_deadline", 1.5)
    monkeypatch.setattr(web._Server, "max_connections", 24)
    server = web.ExporterServer("test", SLOW_ADDRESS, {"/metrics": lambda _r: web.Response(200, "up 1\n")})
    server.start()
    yield server
    server.stop()


def slow_clients(port: int, count: int) -> list:
    """Connections that send a request head a byte at a time (slowloris), never finishing it."""
    import socket

    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.81.0.7", port), timeout=5)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(sock)
    return socks


def test_slow_clients_cannot_hold_the_server(http_server):
    import threading
    import time
    import urllib.request

    socks = slow_clients(http_server.port, 60)  # more than the slots
    try:
        for sock in socks[:10]:
            sock.sendall(b"a")  # still dribbling
        started = time.monotonic()
        workers = [t for t in threading.enumerate() if "process_request_thread" in t.name]
        assert len(workers) <= 24, f"{len(workers)} connection threads for 24 slots"
        # Cut off at the head deadline: every slow connection is closed by the server.
        deadline = time.monotonic() + 5
        for sock in socks:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                assert sock.recv(1) == b"", "a slow client got an answer"
            except (ConnectionResetError, BrokenPipeError):
                pass
            except TimeoutError:
                pytest.fail("a slow client still held its connection after the head deadline")
        assert time.monotonic() - started < 5
        # Meanwhile and after, /metrics answers at once.
        with urllib.request.urlopen(f"http://127.81.0.7:{http_server.port}/metrics", timeout=3) as resp:
            assert resp.status == 200 and resp.read() == b"up 1\n"
    finally:
        for sock in socks:
            sock.close()
    # The threads are gone: nothing was left holding a slot.
    time.sleep(0.5)
    assert len([t for t in threading.enumerate() if "process_request_thread" in t.name]) == 0


def test_metrics_answer_while_slow_clients_wait(http_server):
    import urllib.request

    socks = slow_clients(http_server.port, 12)  # fewer than the slots: /metrics has one free
    try:
        for _ in range(3):
            with urllib.request.urlopen(f"http://127.81.0.7:{http_server.port}/metrics", timeout=2) as resp:
                assert resp.status == 200
    finally:
        for sock in socks:
            sock.close()


def test_an_exporter_tells_systemd_it_is_ready_once_its_port_answers(tmp_path):
    """The units are Type=notify: `systemctl restart` (and the playbook's handler) returns on READY=1, so a
    port that does not answer yet must never be announced, and an exporter that cannot start never is."""
    notify = tmp_path / "notify"
    port = free_port()
    config = tmp_path / "counter.yml"
    config.write_text(f'checks:\n  scan_storage: {{paths: ["{tmp_path}"], interval: 1s}}\n')
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(notify))
        listener.settimeout(15)
        argv = [str(BIN / "motcua-counter-exporter"), "--config.file", str(config),
                "--web.listen-address", f"127.0.0.1:{port}"]  # fmt: skip
        proc = spawn("notify", "exporter", argv, tmp_path / "log", env={**os.environ, "NOTIFY_SOCKET": str(notify)})
        try:
            ready = listener.recv(4096).decode()
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass  # the port answered when READY=1 arrived
            assert ready.splitlines()[0] == "READY=1" and f"MAINPID={proc.pid}" in ready, ready
            assert f"STATUS=listening on 127.0.0.1:{port}" in ready
            os.kill(proc.pid, signal.SIGTERM)
            assert listener.recv(4096) == b"STOPPING=1"
        finally:
            stop([proc])
        # A port already taken: the exporter ends without announcing anything.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            argv[-1] = f"127.0.0.1:{taken.getsockname()[1]}"
            env = {**os.environ, "NOTIFY_SOCKET": str(notify)}
            done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30, check=False)
        assert done.returncode == 1 and "cannot listen" in done.stderr, done.stderr
        listener.settimeout(0.1)
        with pytest.raises(TimeoutError):
            listener.recv(4096)
