"""The counter exporter's config file: which checks run, how often, with what limits."""

from __future__ import annotations

from pathlib import Path

from ..core.config import Section, load_yaml
from ..core.expect import read_expect
from ..core.httpprobe import ProbeSpec
from .checks import Check, Clock, Portal, Printers, Scanners, ScanStorage, Token

# check name -> (default interval, default timeout). Slow checks run rarely; their age is exported.
DEFAULTS = {
    "printers": (30.0, 10.0),
    "scanners": (300.0, 60.0),
    "token": (300.0, 30.0),
    "portal": (30.0, 5.0),
    "clock": (60.0, 10.0),
    "scan_storage": (60.0, 5.0),
}


def load(path: str | Path) -> list[Check]:
    root = load_yaml(path)
    checks_section = root.section("checks")
    checks: list[Check] = []
    for name in checks_section:
        if name not in DEFAULTS:
            raise checks_section.error(str(name), f"unknown check; known: {', '.join(DEFAULTS)}")
        item = Section(checks_section.raw(name) or {}, root.file, f"checks.{name}")
        interval = item.duration("interval", DEFAULTS[name][0], minimum=1.0)
        # A default timeout shrinks to fit a short interval; one written in the file must fit.
        timeout = item.duration("timeout", min(DEFAULTS[name][1], interval * 0.8), minimum=0.1)
        if timeout >= interval:
            raise item.error("timeout", f"must be shorter than the interval ({interval:g}s)")
        checks.append(_check(name, item, interval, timeout))
        item.done()
    if not checks:
        raise root.error("checks", f"name at least one check ({', '.join(DEFAULTS)})")
    root.done()
    return checks


def _check(name: str, item: Section, interval: float, timeout: float) -> Check:
    if name == "printers":
        return Printers(
            name, interval, timeout, stuck_after=item.duration("stuck_after", Printers.stuck_after, minimum=1.0)
        )
    if name == "scanners":
        return Scanners(name, interval, timeout)
    if name == "token":
        return Token(name, interval, timeout, module=item.str("module", Token.module))
    if name == "clock":
        return Clock(name, interval, timeout, server=item.str("server", Clock.server))
    if name == "scan_storage":
        paths = item.list("paths", list(ScanStorage.paths))
        if not paths or not all(isinstance(p, str) and p.startswith("/") for p in paths) or len(paths) > 10:
            raise item.error("paths", "must be 1 to 10 absolute paths")
        return ScanStorage(name, interval, timeout, paths=tuple(paths))
    # portal
    try:
        spec = ProbeSpec(
            item.str("url"),
            timeout=timeout,
            expect=read_expect(item.section("expect", None)),
            ca_file=item.path("ca_file", None, must_exist=True),
        )
    except ValueError as exc:
        raise item.error("url", str(exc)) from None
    return Portal(name, interval, timeout, spec=spec)
