"""Runs each check on its own interval in the background; /metrics serves the latest results."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from prometheus_client import Counter

from ..core.exposition import CONTENT_TYPE, Board, Family, render_family
from ..core.httpprobe import result_families
from ..core.runner import self_metrics
from ..core.web import Request, Response
from . import config as config_module
from .checks import Check, CheckError

log = logging.getLogger("counter")

FAMILIES = (
    Family("motcua_counter_printers", "gauge", "Print queues configured in CUPS."),
    Family("motcua_counter_printer_state", "gauge", "1 for the queue's current state: idle, processing or stopped."),
    Family("motcua_counter_printer_accepting_jobs", "gauge", "1 if the queue accepts new jobs."),
    Family("motcua_counter_printer_jobs", "gauge", "Jobs waiting or printing in the queue."),
    Family("motcua_counter_printer_stuck_jobs", "gauge", "Jobs older than printers.stuck_after that have not printed."),
    Family("motcua_counter_printer_oldest_job_age_seconds", "gauge", "Age of the oldest unfinished job; 0 if none."),
    Family("motcua_counter_scanners", "gauge", "Scanners SANE finds."),
    Family("motcua_counter_scanner_info", "gauge", "1 per scanner SANE finds, with its device name, vendor and model."),
    Family("motcua_counter_tokens", "gauge", "PKCS#11 tokens present (the ward's USB token for signing)."),
    Family("motcua_counter_token_certificates", "gauge", "Certificates on the token."),
    Family(
        "motcua_counter_token_certificate_not_after_timestamp_seconds",
        "gauge",
        "When a certificate on the token expires (Unix time).",
    ),
    *result_families("motcua_counter_portal"),
    Family(
        "motcua_counter_clock_offset_seconds",
        "gauge",
        "How far the clock is from NTP time, by chrony (positive: fast).",
    ),
    Family("motcua_counter_clock_synchronized", "gauge", "1 if chrony is synchronised to a time source."),
    Family("motcua_counter_clock_stratum", "gauge", "chrony's NTP stratum (0: none)."),
    Family("motcua_counter_scans_free_bytes", "gauge", "Free space, for the officials, where scans are kept."),
    Family("motcua_counter_scans_size_bytes", "gauge", "Size of the file system where scans are kept."),
)
CHECK_SUCCESS = Family("motcua_counter_check_success", "gauge", "1 if the check's last run answered; 0 if it failed.")
CHECK_DURATION = Family("motcua_counter_check_duration_seconds", "gauge", "How long the check's last run took.")
CHECK_LAST_RUN = Family(
    "motcua_counter_check_last_run_timestamp_seconds", "gauge", "When the check last ran (Unix time): its results' age."
)
RUNS = Counter("motcua_counter_exporter_check_runs_total", "Check runs, by check and result.", ["check", "result"])


class CounterExporter:
    def __init__(self, checks: list[Check]):
        self.checks = checks
        self.board = Board(FAMILIES)
        self._status: dict[str, tuple[bool, float, float]] = {}  # name -> (ok, duration, finished: Unix time)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_file(cls, path: Path) -> CounterExporter:
        return cls(config_module.load(path))

    def start(self) -> None:
        # Each generation of threads has its own stop event: a check still running when a reload
        # stops its generation ends with it, instead of seeing the next generation's event.
        stop = self._stop
        for check in self.checks:
            thread = threading.Thread(target=self._loop, args=(check, stop), name=f"check {check.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def reload(self, path: Path) -> None:
        checks = config_module.load(path)  # ConfigError leaves the running checks alone
        self.stop()
        self._stop = threading.Event()
        self._threads = []
        self.board.keep_only(c.name for c in checks)
        self._status = {k: v for k, v in self._status.items() if any(c.name == k for c in checks)}
        self.checks = checks
        self.start()

    def run_once(self, check: Check, stop: threading.Event | None = None) -> bool:
        """Run one check and publish its results, unless its generation was stopped meanwhile."""
        started = time.monotonic()
        try:
            samples = check.run()
        except CheckError as exc:
            ok, samples = False, {}  # no stale results: the check's age and success say what is known
            log.warning("check %s failed: %s", check.name, exc)
        except Exception:
            ok, samples = False, {}
            log.exception("check %s failed unexpectedly", check.name)
        else:
            ok = True
        if stop is not None and stop.is_set():
            return ok  # a reload replaced this check: its late result must not come back
        self.board.put(check.name, samples)
        self._status[check.name] = (ok, time.monotonic() - started, time.time())
        RUNS.labels(check.name, "success" if ok else "failure").inc()
        return ok

    def _loop(self, check: Check, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self.run_once(check, stop)
            stop.wait(max(0.0, check.interval - (time.monotonic() - started)))

    def routes(self):
        return {"/metrics": self.metrics}

    def metrics(self, _request: Request) -> Response:
        status = dict(self._status)
        names = sorted(status)
        meta = (
            render_family(CHECK_SUCCESS, [({"check": n}, float(status[n][0])) for n in names])
            + render_family(CHECK_DURATION, [({"check": n}, round(status[n][1], 6)) for n in names])
            + render_family(CHECK_LAST_RUN, [({"check": n}, round(status[n][2], 3)) for n in names])
        )
        return Response(200, self_metrics() + meta + self.board.render(), CONTENT_TYPE)
