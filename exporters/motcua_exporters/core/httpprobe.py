"""One HTTP(S) probe, timed by phase, on an asyncio loop.

Written on asyncio's transport API rather than an HTTP library so that every
phase is measured where it happens (resolve, connect, TLS, waiting for the
first byte, transfer) and a probe costs little CPU: the dossier exporter runs
thousands of them. Each probe is one fresh connection (``Connection: close``),
as a citizen's browser would open it; redirects are not followed (expect the
3xx status if that is the normal answer).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from .certs import not_after_of
from .exposition import Family, Sample

log = logging.getLogger("probe")

PHASES = ("resolve", "connect", "tls", "processing", "transfer")
# Why a probe failed. A fixed set: it becomes a label value.
REASONS = (
    "dns",
    "refused",
    "connect_timeout",
    "tls_handshake",
    "tls_verify",
    "reset",
    "timeout",
    "protocol",
    "too_large",
    "http_status",
    "body",
    "json",
    "error",  # anything else: a fault in the exporter itself (logged with its traceback), never a success
)
USER_AGENT = "motcua-exporter/0.1"


class ProbeError(Exception):
    def __init__(self, reason: str, detail: str):
        assert reason in REASONS
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class Expect:
    """What a healthy answer looks like."""

    status: tuple[int, ...] = (200,)
    body_contains: tuple[str, ...] = ()
    body_not_contains: tuple[str, ...] = ()
    json_path: str | None = None  # dotted, e.g. "status" or "components.db"
    json_equals: tuple[object, ...] = ()  # any of these values


@dataclass(frozen=True)
class ProbeSpec:
    url: str
    timeout: float = 5.0
    expect: Expect = field(default_factory=Expect)
    ca_file: Path | None = None  # None: the system trust store
    verify: bool = True
    max_body_bytes: int = 1 << 20
    keep_body: bool = False

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {self.url!r}")


@dataclass
class ProbeResult:
    success: bool
    duration: float
    phases: dict[str, float]
    status: int = 0
    reason: str = ""
    detail: str = ""
    tls_not_after: float | None = None
    finished: float = 0.0
    body: bytes = b""


_contexts: dict[tuple[str, bool], ssl.SSLContext] = {}


def tls_context(ca_file: Path | None, verify: bool) -> ssl.SSLContext:
    """One context per trust setting: loading a CA store per probe would cost more than the probe."""
    key = (str(ca_file or ""), verify)
    context = _contexts.get(key)
    if context is None:
        if verify:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _contexts[key] = context
    return context


def _dechunk(data: bytes) -> bytes | None:
    """The body of a complete chunked message, or None if more is to come."""
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        try:
            size = int(data[pos:end].split(b";", 1)[0], 16)
        except ValueError:
            raise ProbeError("protocol", "bad chunk size") from None
        pos = end + 2
        if size == 0:
            return bytes(out) if data.find(b"\r\n\r\n", end) >= 0 or data.endswith(b"\r\n") else None
        if len(data) < pos + size + 2:
            return None
        out += data[pos : pos + size]
        pos += size + 2


class _Response(asyncio.Protocol):
    """Collects one HTTP/1.1 response; ``done`` resolves when it is complete."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int):
        self.done: asyncio.Future[None] = loop.create_future()
        self.limit = limit
        self.data = bytearray()
        self.first_byte: float | None = None
        self.status = 0
        self.head_end = -1
        self.length: int | None = None
        self.chunked = False
        self.body = b""

    def data_received(self, data: bytes) -> None:
        if self.first_byte is None:
            self.first_byte = time.monotonic()
        self.data += data
        if len(self.data) > self.limit:
            self._fail(ProbeError("too_large", f"answer larger than {self.limit} bytes"))
            return
        try:
            self._check()
        except ProbeError as exc:
            self._fail(exc)

    def _check(self) -> None:
        if self.head_end < 0:
            end = self.data.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head_end = end + 4
            lines = bytes(self.data[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise ProbeError("protocol", f"not an HTTP status line: {lines[0][:60]!r}")
            self.status = int(parts[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length" and value.strip().isdigit():
                    self.length = int(value.strip())
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    self.chunked = True
        rest = bytes(self.data[self.head_end :])
        if self.chunked:
            body = _dechunk(rest)
            if body is not None:
                self._finish(body)
        elif self.length is not None and len(rest) >= self.length:
            self._finish(rest[: self.length])
        elif self.status in (204, 304) or 100 <= self.status < 200:
            self._finish(b"")

    def _finish(self, body: bytes) -> None:
        if not self.done.done():
            self.body = body
            self.done.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    def eof_received(self) -> bool:
        if self.head_end >= 0 and not self.chunked and self.length is None:
            self._finish(bytes(self.data[self.head_end :]))  # body delimited by the close
        elif not self.done.done():
            self._fail(ProbeError("protocol" if self.data else "reset", "connection closed before a full answer"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if isinstance(exc, ConnectionResetError) or (exc is None and not self.data):
                self._fail(ProbeError("reset", "connection reset by the server"))
            else:
                self.eof_received()


def _check_answer(spec: ProbeSpec, status: int, body: bytes) -> None:
    expect = spec.expect
    if status not in expect.status:
        raise ProbeError("http_status", f"HTTP {status}, expected {'/'.join(map(str, expect.status))}")
    if expect.body_contains or expect.body_not_contains:
        text = body.decode("utf-8", "replace")
        for needle in expect.body_contains:
            if needle not in text:
                raise ProbeError("body", f"answer does not contain {needle!r}")
        for needle in expect.body_not_contains:
            if needle in text:
                raise ProbeError("body", f"answer contains {needle!r}")
    if expect.json_path:
        try:
            value: object = json.loads(body)
        except ValueError:
            raise ProbeError("json", "answer is not JSON") from None
        for key in expect.json_path.split("."):
            if not isinstance(value, dict) or key not in value:
                raise ProbeError("json", f"no {expect.json_path!r} in the JSON answer")
            value = value[key]
        if expect.json_equals and value not in expect.json_equals:
            raise ProbeError(
                "json", f"{expect.json_path} is {value!r}, expected {' or '.join(map(repr, expect.json_equals))}"
            )


async def _peer_not_after(host: str, port: int, server_name: str, timeout: float) -> float | None:
    """After a failed verification: read the certificate anyway, to export when it expires."""
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(
                host, port, ssl=tls_context(None, verify=False), server_hostname=server_name
            )
            try:
                der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            finally:
                writer.close()
            return not_after_of(der)
    except (OSError, TimeoutError, ssl.SSLError, ValueError):
        return None


async def probe(spec: ProbeSpec) -> ProbeResult:
    """Run one probe; never raises for a failing target (the result says why)."""
    loop = asyncio.get_running_loop()
    parts = urllib.parse.urlsplit(spec.url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    phases = dict.fromkeys(PHASES, 0.0)
    result = ProbeResult(False, 0.0, phases)
    started = time.monotonic()
    mark = started
    stage = "resolve"
    sock: socket.socket | None = None
    transport: asyncio.BaseTransport | None = None
    try:
        async with asyncio.timeout(spec.timeout):
            try:
                address = ipaddress.ip_address(host)
                family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
                target: tuple = (host, port)
            except ValueError:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                family, _, _, _, target = infos[0]
            now = time.monotonic()
            phases["resolve"], mark, stage = now - mark, now, "connect"
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            await loop.sock_connect(sock, target)
            now = time.monotonic()
            phases["connect"], mark, stage = now - mark, now, "tls" if tls else "request"
            response = _Response(loop, spec.max_body_bytes)
            transport, _ = await loop.create_connection(
                lambda: response,
                sock=sock,
                ssl=tls_context(spec.ca_file, spec.verify) if tls else None,
                server_hostname=host if tls else None,
            )
            sock = None  # the transport owns it now
            now = time.monotonic()
            if tls:
                phases["tls"], mark = now - mark, now
                ssl_object = transport.get_extra_info("ssl_object")
                result.tls_not_after = not_after_of(ssl_object.getpeercert(binary_form=True))
            stage = "request"
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            hostport = parts.netloc.rsplit("@", 1)[-1]
            transport.write(  # type: ignore[attr-defined]
                f"GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: {USER_AGENT}\r\n"
                "Accept: */*\r\nConnection: close\r\n\r\n".encode("ascii")
            )
            await response.done
            end = time.monotonic()
            first = response.first_byte or end
            phases["processing"] = first - mark
            phases["transfer"] = end - first
            result.status = response.status
            if spec.keep_body:
                result.body = response.body
            _check_answer(spec, response.status, response.body)
            result.success = True
    except ProbeError as exc:
        result.reason, result.detail = exc.reason, exc.detail
    except TimeoutError:
        result.reason = "connect_timeout" if stage == "connect" else "timeout"
        result.detail = f"no answer within {spec.timeout:g}s ({stage})"
    except ssl.SSLCertVerificationError as exc:
        result.reason, result.detail = "tls_verify", exc.verify_message or str(exc)
        remaining = max(0.2, spec.timeout - (time.monotonic() - started))
        result.tls_not_after = await _peer_not_after(str(target[0]), port, host, remaining)
    except ssl.SSLError as exc:
        result.reason, result.detail = "tls_handshake", exc.reason or str(exc)
    except ConnectionRefusedError:
        result.reason, result.detail = "refused", f"connection refused by {host}:{port}"
    except ConnectionResetError:
        result.reason, result.detail = "reset", "connection reset by the server"
    except socket.gaierror as exc:
        result.reason, result.detail = "dns", f"cannot resolve {host}: {exc.strerror}"
    except OSError as exc:
        result.reason = "refused" if stage == "connect" else "reset"
        result.detail = f"{stage}: {exc.strerror or exc}"
    except Exception as exc:  # a probe reports; it never ends the loop that runs it
        log.exception("probe of %s failed inside the exporter (%s)", spec.url, stage)
        result.reason, result.detail = "error", f"{stage}: {type(exc).__name__}: {exc}"
    finally:
        if transport is not None:
            transport.close()
        if sock is not None:
            sock.close()
    result.duration = time.monotonic() - started
    result.finished = time.time()
    return result


def result_families(prefix: str) -> tuple[Family, ...]:
    """The metric families of a probe's result, named ``<prefix>_success`` and so on."""
    return (
        Family(
            f"{prefix}_success",
            "gauge",
            "1 if the last probe succeeded: answer in time, expected status and content, TLS valid.",
        ),
        Family(f"{prefix}_duration_seconds", "gauge", "How long the last probe took, all phases together."),
        Family(
            f"{prefix}_phase_duration_seconds",
            "gauge",
            "Time in each phase of the last probe: resolve, connect, tls, processing (to the first byte), transfer.",
        ),
        Family(f"{prefix}_http_status_code", "gauge", "HTTP status of the last answer; 0 if there was none."),
        Family(
            f"{prefix}_failure",
            "gauge",
            "Why the last probe failed: 1 for its reason, 0 for every other reason; all 0 after a success.",
        ),
    )


def result_samples(result: ProbeResult, prefix: str, base: dict[str, str]) -> dict[str, list[Sample]]:
    """Samples for :func:`result_families`; ``base`` labels go on every one."""
    samples: dict[str, list[Sample]] = {
        f"{prefix}_success": [(base, 1.0 if result.success else 0.0)],
        f"{prefix}_duration_seconds": [(base, round(result.duration, 6))],
        f"{prefix}_phase_duration_seconds": [({**base, "phase": p}, round(result.phases[p], 6)) for p in PHASES],
        f"{prefix}_http_status_code": [(base, float(result.status))],
    }
    failed = "" if result.success else result.reason
    samples[f"{prefix}_failure"] = [({**base, "reason": r}, 1.0 if r == failed else 0.0) for r in REASONS]
    return samples
