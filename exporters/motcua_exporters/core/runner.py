"""Command-line entry shared by the exporters: Go-style flags, config check, serve until SIGTERM."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import prometheus_client
from prometheus_client import REGISTRY, Gauge, Histogram

from .. import __version__
from . import logs
from .config import ConfigError
from .exposition import render_registry
from .web import ExporterServer, Route, WebConfig, split_address

log = logging.getLogger("main")

# "_created" series double every counter and nobody alerts on them (absent before prometheus-client 0.17).
if hasattr(prometheus_client, "disable_created_metrics"):
    prometheus_client.disable_created_metrics()

HTTP_SECONDS = Histogram(
    "motcua_exporter_http_request_duration_seconds",
    "Time to answer an HTTP request, by path.",
    ["path"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BUILD = Gauge("motcua_exporter_build_info", "Always 1; labels say which exporter and version.", ["exporter", "version"])
CONFIG_OK = Gauge("motcua_exporter_config_last_reload_successful", "1 if the last config (re)load worked.")


class Exporter(Protocol):
    def routes(self) -> dict[str, Route]: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def reload(self, config_file: Path) -> None: ...


def arguments(name: str, description: str, listen: str, config: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=name, description=description)
    parser.add_argument(
        "--config.file",
        dest="config_file",
        type=Path,
        default=Path(config) if config else None,
        required=config is None,
    )
    parser.add_argument("--web.listen-address", dest="listen", default=listen, help=f"HOST:PORT (default {listen})")
    parser.add_argument(
        "--web.config.file", dest="web_config", type=Path, help="TLS and basic auth (exporter-toolkit format)"
    )
    parser.add_argument("--log.level", dest="log_level", default="info", choices=logs.LEVELS)
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=("logfmt", "json"))
    parser.add_argument("--check-config", action="store_true", help="validate the config files and exit")
    parser.add_argument("--version", action="version", version=f"{name} {__version__}")
    return parser


def notify_systemd(state: str) -> bool:
    """Tell systemd about our state (sd_notify(3)): the units are Type=notify, so `systemctl start` and a
    playbook's restart return once the port answers, and an exporter that dies starting fails them.
    Nothing happens outside systemd (no NOTIFY_SOCKET). Returns whether the message was sent."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", address, exc)
        return False
    return True


def run(name: str, args: argparse.Namespace, load: Callable[[Path], Exporter]) -> int:
    logs.setup(args.log_level, args.log_format)
    try:
        split_address(args.listen)
        web = WebConfig.load(args.web_config)
        exporter = load(args.config_file)
    except (ConfigError, ValueError) as exc:
        print(f"{name}: config refused: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"{name}: {args.config_file}: OK")
        return 0
    BUILD.labels(name, __version__).set(1)
    CONFIG_OK.set(1)
    post_routes = getattr(exporter, "post_routes", dict)()
    server = ExporterServer(name, args.listen, exporter.routes(), web, post_routes)
    server.observe = lambda path, seconds: HTTP_SECONDS.labels(path).observe(seconds)
    stopping = threading.Event()

    def reload(*_args: object) -> None:
        try:
            exporter.reload(args.config_file)
        except ConfigError as exc:
            CONFIG_OK.set(0)
            log.error("reload refused, keeping the running config: %s", exc)
        else:
            CONFIG_OK.set(1)
            log.info("config reloaded from %s", args.config_file)

    # A signal sent as soon as the port answers (systemd's ExecReload, a test) is held until the
    # exporter has started, then handled: never lost (a parent that ignores SIGHUP passes that on to
    # us) and never the default action (SIGHUP would end the process). The threads started below
    # inherit the mask, so the main thread handles every signal.
    # SIGUSR1 writes every thread's stack to stderr (the journal) and the exporter runs on: what an
    # operator, or a test that gave up waiting, sends to see where an exporter is stuck.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signals = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGHUP, reload)
    try:
        try:
            server.bind()
        except OSError as exc:
            print(f"{name}: cannot listen on {args.listen}: {exc.strerror}", file=sys.stderr)
            return 1
        # The address is taken first (a second instance fails before it starts anything); requests are
        # answered once the exporter has started, never by one half started (the bridge's store).
        exporter.start()
        server.serve()
        notify_systemd(f"READY=1\nMAINPID={os.getpid()}\nSTATUS=listening on {args.listen}")
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    log.info("%s %s started", name, __version__)
    while not stopping.wait(1.0):
        pass
    log.info("stopping")
    notify_systemd("STOPPING=1")
    exporter.stop()
    server.stop()
    return 0


def self_metrics() -> str:
    return render_registry(REGISTRY)
