"""Reads every source on an interval in the background; /metrics serves the latest results."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..core import certs
from ..core.exposition import CONTENT_TYPE, Board, Family
from ..core.runner import self_metrics
from ..core.web import Request, Response
from . import config as config_module
from .config import CertificateConfig
from .sources import Source, SourceError

log = logging.getLogger("certificate")

FAMILIES = (
    Family("motcua_certificate_source_up", "gauge", "1 if the source could be read at the last attempt."),
    Family("motcua_certificate_source_certificates", "gauge", "Certificates found in the source."),
    Family(
        "motcua_certificate_source_last_read_timestamp_seconds", "gauge", "When the source was last read (Unix time)."
    ),
    Family(
        "motcua_certificate_not_after_timestamp_seconds",
        "gauge",
        "When the certificate expires (Unix time), with its subject, issuer and serial.",
    ),
    Family(
        "motcua_certificate_not_before_timestamp_seconds", "gauge", "When the certificate became valid (Unix time)."
    ),
)


def source_samples(source: Source, found: list | None, finished: float) -> dict[str, list]:
    base = {"source": source.name, "site": source.site, "kind": source.kind}
    samples: dict[str, list] = {
        "motcua_certificate_source_up": [(base, float(found is not None))],
        "motcua_certificate_source_last_read_timestamp_seconds": [(base, round(finished, 3))],
    }
    if found is None:
        return samples
    samples["motcua_certificate_source_certificates"] = [(base, float(len(found)))]
    after, before = [], []
    for cert in found:
        labels = {
            "source": source.name,
            "site": source.site,
            "subject": certs.common_name(cert.subject),
            "issuer": certs.common_name(cert.issuer),
            "serial": certs.serial_hex(cert),
        }
        not_before, not_after = certs.dates(cert)
        after.append((labels, not_after))
        before.append((labels, not_before))
    samples["motcua_certificate_not_after_timestamp_seconds"] = after
    samples["motcua_certificate_not_before_timestamp_seconds"] = before
    return samples


class CertificateExporter:
    def __init__(self, config: CertificateConfig):
        self.config = config
        self.board = Board(FAMILIES)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    @classmethod
    def from_file(cls, path: Path) -> CertificateExporter:
        return cls(config_module.load(path))

    def read_all(self) -> None:
        config = self.config
        self.board.keep_only(s.name for s in config.sources)

        def one(source: Source) -> None:
            try:
                found = source.read(config.timeout)
            except SourceError as exc:
                log.warning("source %s (site %s): %s", source.name, source.site, exc)
                found = None
            except Exception:  # a bug reading one source must not stop the others, nor later rounds
                log.exception("source %s (site %s): unexpected error", source.name, source.site)
                found = None
            self.board.put(source.name, source_samples(source, found, time.time()))

        # TLS endpoints wait on the network; a few at a time keeps one slow site from delaying the rest.
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="read") as pool:
            list(pool.map(one, config.sources))

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.read_all()
            self._wake.wait(max(0.0, self.config.interval - (time.monotonic() - started)))
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="certificates", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(10)

    def reload(self, path: Path) -> None:
        self.config = config_module.load(path)  # ConfigError leaves the running config alone
        self._wake.set()  # read the new sources now

    def routes(self):
        return {"/metrics": self.metrics}

    def metrics(self, _request: Request) -> Response:
        return Response(200, self_metrics() + self.board.render(), CONTENT_TYPE)
