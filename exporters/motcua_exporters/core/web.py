"""The exporters' HTTP server: routes, optional TLS and basic auth, never dies on a bad request.

The web config file has the shape of the Prometheus exporter-toolkit's
``--web.config.file`` so operators write it the same way as for node_exporter::

    tls_server_config:
      cert_file: /etc/motcua/exporter.crt
      key_file: /etc/motcua/exporter.key
      client_ca_file: /etc/motcua/prometheus-ca.crt   # optional: require client certificates
      min_version: TLS12                               # or TLS13
    basic_auth_users:
      prometheus: $2b$12$...                          # bcrypt hash (htpasswd -B)

As exporter-toolkit does, the file is read again when it (or the certificate or key it names)
changes, so a renewed certificate or a new user needs no restart; a changed file that does not
load keeps the last good config (and says so in the log).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bcrypt

from .config import ConfigError, load_yaml

log = logging.getLogger("web")
# exporter-toolkit's min_version values this server takes (older ones are refused).
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    method: str = "GET"
    body: bytes = b""
    user: str = ""  # the basic-auth user the server accepted ("" without basic auth)

    def scrape_timeout(self, default: float) -> float:
        """Prometheus tells the exporter how long it will wait; a probe must answer before that."""
        try:
            value = float(self.headers.get("x-prometheus-scrape-timeout-seconds", ""))
        except ValueError:
            return default
        return value if value > 0 else default


@dataclass
class Response:
    status: int
    body: bytes | str
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)  # more headers (Location, Cache-Control)

    def data(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


Route = Callable[[Request], Response]


@dataclass
class WebConfig:
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    source: Path | None = None
    min_version: str = "TLS12"

    @classmethod
    def load(cls, path: str | Path | None) -> WebConfig:
        if not path:
            return cls()
        root = load_yaml(path)
        config = cls(source=Path(path))
        tls = root.section("tls_server_config", None)
        if tls is not None:
            config.cert_file = tls.path("cert_file", must_exist=True)
            config.key_file = tls.path("key_file", must_exist=True)
            config.client_ca_file = tls.path("client_ca_file", None, must_exist=True)
            config.min_version = tls.str("min_version", "TLS12", choices=tuple(TLS_VERSIONS))
            tls.done()
            try:
                config.tls_context()
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(path, "tls_server_config", f"cannot load the certificate and key: {exc}") from None
        users = root.mapping("basic_auth_users", {})
        for user, hashed in users.items():
            if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise ConfigError(path, f"basic_auth_users.{user}", "must be a bcrypt hash ($2b$..., htpasswd -B)")
            config.users[str(user)] = hashed.encode()
        root.done()
        return config

    def stamp(self) -> tuple[tuple[str, float, int], ...]:
        """What a change is seen by: the file's and the TLS files' modification times and sizes."""
        out = []
        for path in (self.source, self.cert_file, self.key_file, self.client_ca_file):
            if path is None:
                continue
            try:
                info = path.stat()
            except OSError:
                out.append((str(path), -1.0, -1))
            else:
                out.append((str(path), info.st_mtime, info.st_size))
        return tuple(out)

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.cert_file:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = TLS_VERSIONS[self.min_version]
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.client_ca_file)
        return context


def basic_user(header: str | None) -> str:
    """The user name of a basic ``Authorization`` header ("" for none or a malformed one)."""
    if not header or not header.startswith("Basic "):
        return ""
    try:
        return base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")[0]
    except (ValueError, UnicodeDecodeError):
        return ""


class _Auth:
    """bcrypt is slow on purpose; remember what was already checked (as exporter-toolkit does)."""

    def __init__(self, users: dict[str, bytes]):
        self.users = users
        self._ok: set[str] = set()
        self._lock = threading.Lock()

    def allows(self, header: str | None) -> bool:
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        token = hashlib.sha256(f"{user}\0{password}".encode() + hashed).hexdigest()
        with self._lock:
            if token in self._ok:
                return True
        if bcrypt.checkpw(password.encode("utf-8"), hashed):
            with self._lock:
                self._ok.add(token)
            return True
        return False


def split_address(listen: str) -> tuple[str, int]:
    """``127.0.0.1:9111`` or ``[::1]:9111``. An empty host would mean every address: refused."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"listen address must be HOST:PORT with an explicit host, not {listen!r}")
    if not 0 < int(port) < 65536:
        raise ValueError(f"port out of range in {listen!r}")
    return host, int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "motcua-exporter"
    # Every read and write of a connection gives up after this long (an idle keep-alive too).
    timeout = 10.0
    # A request's line and headers must arrive within this long in all: a client that sends them
    # a byte at a time (slowloris) is cut off instead of holding a thread.
    head_deadline = 10.0

    def handle_one_request(self) -> None:
        timer = threading.Timer(self.head_deadline, self._cut_off)
        timer.daemon = True
        self._head_timer = timer
        timer.start()
        try:
            super().handle_one_request()
        finally:
            timer.cancel()

    def parse_request(self) -> bool:
        parsed = super().parse_request()  # reads the headers too
        self._head_timer.cancel()  # the head is in: the route's own time does not count against it
        return parsed

    def _cut_off(self) -> None:
        log.debug("%s: no request head within %.0f s; closing", self.address_string(), self.head_deadline)
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, fmt: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        """Authenticate, find the route for the method, read a POST's body, run the route, time it."""
        server: ExporterServer = self.server.exporter  # type: ignore[attr-defined]
        if not server.auth.allows(self.headers.get("Authorization")):
            self._reply(Response(401, "Unauthorized\n"), {"WWW-Authenticate": 'Basic realm="motcua-exporter"'})
            return
        url = urllib.parse.urlsplit(self.path)
        route = _find(server.post_routes if method == "POST" else server.routes, url.path)
        if route is None:
            known = method == "POST" and _find(server.routes, url.path) is not None
            self._reply(Response(405 if known else 404, "Method not allowed\n" if known else "Not found\n"))
            return
        body = b""
        if method == "POST":
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                self._reply(Response(411, "Content-Length required\n"))
                self.close_connection = True
                return
            if length > server.max_body:
                self._reply(Response(413, f"Body larger than {server.max_body} bytes\n"))
                self.close_connection = True
                return
            body = self.rfile.read(length)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        request = Request(
            url.path,
            query,
            {k.lower(): v for k, v in self.headers.items()},
            method,
            body,
            basic_user(self.headers.get("Authorization")) if server.auth.users else "",
        )
        started = time.monotonic()
        try:
            response = route(request)
        except Exception:
            log.exception("handler for %s %s failed", method, url.path)
            response = Response(500, "Internal error; see the exporter's log\n")
        server.observe(url.path, time.monotonic() - started)
        self._reply(response)

    def _reply(self, response: Response, extra: dict[str, str] | None = None) -> None:
        data = response.data()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in {**response.headers, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _find(routes: dict[str, Route], path: str) -> Route | None:
    """The route of exactly ``path``, else of the longest prefix route (a key ending in ``/``, not ``/`` itself:
    ``/site/`` serves ``/site/26740``)."""
    route = routes.get(path)
    if route is not None:
        return route
    prefixes = [p for p in routes if p.endswith("/") and p != "/" and path.startswith(p)]
    return routes[max(prefixes, key=len)] if prefixes else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    # At most this many connections at once, one thread each; more are closed as they arrive.
    max_connections = 64

    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext | None):
        self.tls = tls
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("%s connections open: closing one from %s", self.max_connections, client_address[0])
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def get_request(self):
        sock, addr = self.socket.accept()
        self.exporter.refresh_web()  # type: ignore[attr-defined]
        if self.tls is None:
            return sock, addr
        # The handshake happens in the request's own thread, so a slow client cannot block accept().
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address) -> None:
        log.debug("connection from %s ended badly", client_address)


class ExporterServer:
    """Serves ``routes`` on ``listen``; ``/`` is a landing page listing them."""

    def __init__(
        self,
        name: str,
        listen: str,
        routes: dict[str, Route],
        web: WebConfig | None = None,
        post_routes: dict[str, Route] | None = None,
        max_body: int = 4 << 20,
    ):
        self.name = name
        self.web = web or WebConfig()
        self._stamp = self.web.stamp()
        self._checked = 0.0
        self._web_lock = threading.Lock()
        self.routes = dict(routes)
        self.post_routes = dict(post_routes or {})
        self.max_body = max_body
        self.routes.setdefault("/", self._landing)
        self.routes.setdefault("/-/healthy", lambda _req: Response(200, "OK\n"))
        self.auth = _Auth(self.web.users)
        self.host, self.port = split_address(listen)
        self._server: _Server | None = None
        self.observe: Callable[[str, float], None] = lambda _path, _seconds: None

    def _landing(self, _request: Request) -> Response:
        links = "".join(
            f'<li><a href="{html.escape(path)}">{html.escape(path)}</a></li>' for path in self.routes if path != "/"
        )
        body = (
            f"<!doctype html><html><head><title>{self.name}</title></head>"
            f"<body><h1>{self.name}</h1><ul>{links}</ul></body></html>"
        )
        return Response(200, body, "text/html; charset=utf-8")

    def refresh_web(self, now: float | None = None) -> None:
        """Re-read the web config when it or its TLS files changed (checked at most once a second)."""
        if self.web.source is None:
            return
        now = time.monotonic() if now is None else now
        with self._web_lock:
            if now - self._checked < 1.0:
                return
            self._checked = now
            stamp = self.web.stamp()
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                web = WebConfig.load(self.web.source)
                tls = web.tls_context()
            except (ConfigError, ssl.SSLError, OSError) as exc:
                log.error("web config %s changed but does not load; keeping the last good one: %s",
                          self.web.source, exc)  # fmt: skip
                return
            if bool(tls) != bool(self.web.cert_file):
                log.error("web config %s: TLS cannot be switched on or off without a restart; keeping the last "
                          "good one", self.web.source)  # fmt: skip
                return
            self.web, self.auth = web, _Auth(web.users)
            if self._server is not None:
                self._server.tls = tls
            log.info("web config %s reloaded (tls=%s, basic auth users=%d)", web.source, bool(tls), len(web.users))

    def start(self) -> None:
        self.bind()
        self.serve()

    def bind(self) -> None:
        """Take the address (an OSError if it is taken); connections wait in the backlog until serve()."""
        self._server = _Server((self.host, self.port), self.web.tls_context())
        self._server.exporter = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]

    def serve(self) -> None:
        if self._server is None:
            raise RuntimeError("bind() first")
        threading.Thread(target=self._server.serve_forever, name="http", daemon=True).start()
        log.info(
            "listening on %s:%s (tls=%s, basic auth=%s)",
            self.host,
            self.port,
            bool(self.web.cert_file),
            bool(self.web.users),
        )

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
