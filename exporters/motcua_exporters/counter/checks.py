"""One class per thing a counter needs, each turning a local tool's answer into samples.

Every check runs the tools of the counter itself (``lpstat``, ``scanimage``,
``pkcs11-tool``, ``chronyc``) with the C locale and a timeout, and raises
:class:`CheckError` with a one-line reason when it cannot answer; the
exporter then reports the check as failed and keeps its other results.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import time
from dataclasses import dataclass

from ..core import certs as certs_module
from ..core import pkcs11
from ..core.httpprobe import ProbeSpec, probe, result_samples

Samples = dict[str, list[tuple[dict[str, object], float]]]
MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}


class CheckError(Exception):
    """Why a check could not answer (one line, goes to the log)."""


def command(argv: list[str], timeout: float, ok_codes: tuple[int, ...] = (0,)) -> str:
    try:
        return pkcs11.command(argv, timeout, ok_codes)
    except pkcs11.ToolError as exc:
        raise CheckError(str(exc)) from None


@dataclass
class Check:
    name: str
    interval: float
    timeout: float

    def run(self) -> Samples:
        raise NotImplementedError


# --- printers ---------------------------------------------------------------

PRINTER_STATES = ("idle", "processing", "stopped")
_PRINTER = re.compile(r"^printer (\S+) (?:is (idle)|now (printing)|(disabled))")
_ACCEPTING = re.compile(r"^(\S+) (not )?accepting requests")
_JOB = re.compile(r"^(\S+)-(\d+)\s+\S+\s+\d+\s+(.+?)\s*$")


def parse_c_date(text: str) -> float:
    """lpstat's %c date in the C locale: ``Mon Nov 23 17:30:59 2026`` (local time)."""
    parts = text.split()
    if len(parts) != 5 or parts[1] not in MONTHS:
        raise ValueError(f"unexpected date {text!r}")
    hour, minute, second = (int(x) for x in parts[3].split(":"))
    return dt.datetime(int(parts[4]), MONTHS[parts[1]], int(parts[2]), hour, minute, second).timestamp()


@dataclass
class Printers(Check):
    stuck_after: float = 600.0

    def run(self) -> Samples:
        printers: dict[str, str] = {}
        for line in command(["lpstat", "-p"], self.timeout, ok_codes=(0, 1)).splitlines():
            match = _PRINTER.match(line)
            if match:
                printers[match.group(1)] = "idle" if match.group(2) else "processing" if match.group(3) else "stopped"
        accepting = {}
        for line in command(["lpstat", "-a"], self.timeout, ok_codes=(0, 1)).splitlines():
            match = _ACCEPTING.match(line)
            if match:
                accepting[match.group(1)] = match.group(2) is None
        jobs: dict[str, list[float]] = {name: [] for name in printers}
        now = time.time()
        for line in command(["lpstat", "-o"], self.timeout, ok_codes=(0, 1)).splitlines():
            match = _JOB.match(line)
            if match and match.group(1) in jobs:
                try:
                    jobs[match.group(1)].append(now - parse_c_date(match.group(3)))
                except ValueError as exc:
                    raise CheckError(f"lpstat -o: {exc}") from None
        samples: Samples = {
            "motcua_counter_printers": [({}, float(len(printers)))],
            "motcua_counter_printer_state": [],
            "motcua_counter_printer_accepting_jobs": [],
            "motcua_counter_printer_jobs": [],
            "motcua_counter_printer_stuck_jobs": [],
            "motcua_counter_printer_oldest_job_age_seconds": [],
        }
        for name, state in sorted(printers.items()):
            label = {"printer": name}
            for candidate in PRINTER_STATES:
                samples["motcua_counter_printer_state"].append(
                    ({**label, "state": candidate}, float(state == candidate))
                )
            samples["motcua_counter_printer_accepting_jobs"].append((label, float(accepting.get(name, False))))
            ages = jobs[name]
            samples["motcua_counter_printer_jobs"].append((label, float(len(ages))))
            samples["motcua_counter_printer_stuck_jobs"].append(
                (label, float(sum(a >= self.stuck_after for a in ages)))
            )
            samples["motcua_counter_printer_oldest_job_age_seconds"].append((label, round(max(ages, default=0.0), 1)))
        return samples


# --- scanners ---------------------------------------------------------------


@dataclass
class Scanners(Check):
    def run(self) -> Samples:
        # One line per device: name|vendor|model. scanimage -L exits 0 with no devices too.
        out = command(["scanimage", "-f", "%d|%v|%m%n"], self.timeout)
        devices = sorted({tuple(line.split("|", 2)) for line in out.splitlines() if line.count("|") == 2})
        return {
            "motcua_counter_scanners": [({}, float(len(devices)))],
            "motcua_counter_scanner_info": [({"device": d, "vendor": v, "model": m}, 1.0) for d, v, m in devices[:20]],
        }


# --- USB token (PKCS#11) ----------------------------------------------------


@dataclass
class Token(Check):
    module: str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

    def run(self) -> Samples:
        try:
            found = pkcs11.tokens(self.module, self.timeout)
            per_token = [(label, pkcs11.certificates(self.module, slot, label, self.timeout)) for slot, label in found]
        except pkcs11.ToolError as exc:
            raise CheckError(str(exc)) from None
        samples: Samples = {
            "motcua_counter_tokens": [({}, float(len(found)))],
            "motcua_counter_token_certificates": [({"token": label}, float(len(certs))) for label, certs in per_token],
            "motcua_counter_token_certificate_not_after_timestamp_seconds": [],
        }
        for _label, certs in per_token:
            for item in certs:
                labels = {
                    "token": item.token,
                    "id": item.object_id,
                    "subject": certs_module.common_name(item.cert.subject),
                }
                samples["motcua_counter_token_certificate_not_after_timestamp_seconds"].append(
                    (labels, certs_module.dates(item.cert)[1])
                )
        return samples


# --- the dossier portal, from this counter ------------------------------------


@dataclass
class Portal(Check):
    spec: ProbeSpec | None = None

    def run(self) -> Samples:
        assert self.spec is not None
        return result_samples(asyncio.run(probe(self.spec)), "motcua_counter_portal", {})


# --- clock --------------------------------------------------------------------


@dataclass
class Clock(Check):
    server: str = "127.0.0.1"  # where chronyd answers monitoring commands (its Unix socket is root-only)

    def run(self) -> Samples:
        out = command(["chronyc", "-h", self.server, "-c", "tracking"], self.timeout).strip()
        fields = out.split(",")
        if len(fields) < 14:
            raise CheckError(f"chronyc tracking: unexpected answer {out[:80]!r}")
        stratum, offset, leap = int(fields[2]), float(fields[4]), fields[13]
        synchronised = leap != "Not synchronised" and stratum > 0
        return {
            # chronyc reports how far the system clock is from NTP time; positive: the clock is fast.
            "motcua_counter_clock_offset_seconds": [({}, offset)],
            "motcua_counter_clock_synchronized": [({}, float(synchronised))],
            "motcua_counter_clock_stratum": [({}, float(stratum))],
        }


# --- where scans are kept -----------------------------------------------------------------------


@dataclass
class ScanStorage(Check):
    paths: tuple[str, ...] = ("/srv/motcua/scans",)

    def run(self) -> Samples:
        samples: Samples = {"motcua_counter_scans_free_bytes": [], "motcua_counter_scans_size_bytes": []}
        for path in self.paths:
            try:
                stat = os.statvfs(path)
            except OSError as exc:
                raise CheckError(f"{path}: {exc.strerror}") from None
            samples["motcua_counter_scans_free_bytes"].append(({"path": path}, float(stat.f_bavail * stat.f_frsize)))
            samples["motcua_counter_scans_size_bytes"].append(({"path": path}, float(stat.f_blocks * stat.f_frsize)))
        return samples
