"""The dossier exporter's config file (see exporters/README.md for an example)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import ConfigError, Section, load_yaml, unique
from ..core.expect import read_expect
from ..core.httpprobe import ProbeSpec
from .statistics import ADAPTERS, StatisticsAdapter

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = {"target", "phase", "reason", "agency", "job", "instance"}
MAX_STATIC_LABELS = 5


@dataclass(frozen=True)
class Target:
    name: str
    spec: ProbeSpec
    interval: float
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RecordsSpec:
    """``records:``: the dossier records from the reporting API, read incrementally into a store, and
    the processing indicators computed from them (docs/dossiers.md)."""

    url: str
    token_file: Path  # read at every round: a rotated token is picked up without a reload
    store: Path
    sites: tuple[str, ...]  # the registry's site codes: the only sites reported by name
    interval: float = 60.0
    timeout: float = 30.0
    page_size: int = 500
    top: int = 20
    ca_file: Path | None = None
    # Processes a whole build of the figures (at start, or after the clock went back) is shared among:
    # 0 is as many as the host has cores, at most 4 (running.build; docs/dossiers.md, "Scale").
    build_workers: int = 0

    @property
    def workers(self) -> int:
        return self.build_workers or min(4, os.cpu_count() or 1)


@dataclass
class DossierConfig:
    file: Path
    targets: list[Target]
    max_concurrency: int = 200
    probe_allow_urls: tuple[str, ...] = ()
    statistics: StatisticsAdapter | None = None
    statistics_interval: float = 60.0
    defaults: dict[str, object] = field(default_factory=dict)
    ca_file: Path | None = None  # tls.ca_file: for /probe?target=URL without module= too
    verify: bool = True
    records: RecordsSpec | None = None

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


def load(path: str | Path) -> DossierConfig:
    root = load_yaml(path)
    interval = root.duration("interval", 15.0, minimum=1.0)
    timeout = root.duration("timeout", 5.0, minimum=0.1)
    max_targets = root.int("max_targets", 5000, minimum=1)
    max_concurrency = root.int("max_concurrency", 200, minimum=1, maximum=5000)
    tls = root.section("tls", None)
    ca_file = verify = None
    if tls is not None:
        ca_file = tls.path("ca_file", None, must_exist=True)
        verify = tls.bool("verify", True)
        tls.done()
    targets = []
    sections = root.sections("targets")
    if not sections:
        raise root.error("targets", "must list at least one target")
    if len(sections) > max_targets:
        raise root.error("targets", f"{len(sections)} targets, more than max_targets ({max_targets})")
    for item in sections:
        targets.append(_target(item, interval, timeout, ca_file, True if verify is None else verify))
    unique(targets, lambda t: t.name, root, "targets")
    probe = root.section("probe", None)
    allow: tuple[str, ...] = ()
    if probe is not None:
        allow = tuple(probe.list("allow_urls", []))
        for index, prefix in enumerate(allow):
            if not isinstance(prefix, str) or not re.match(r"^https?://[^/]+/", prefix):
                raise probe.error(f"allow_urls[{index}]", f"must be a URL prefix like https://host/, not {prefix!r}")
        probe.done()
    adapter = None
    statistics_interval = 60.0
    stats = root.section("statistics", None)
    if stats is not None:
        kind = stats.str("adapter", choices=tuple(ADAPTERS))
        statistics_interval = stats.duration("interval", 60.0, minimum=5.0)
        adapter = ADAPTERS[kind].from_config(stats, ca_file, True if verify is None else verify)
        stats.done()
    records = _records(root.section("records", None), ca_file)
    root.done()
    return DossierConfig(
        Path(path),
        targets,
        max_concurrency,
        allow,
        adapter,
        statistics_interval,
        ca_file=ca_file,
        verify=True if verify is None else verify,
        records=records,
    )


SITE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


def _records(section: Section | None, ca_file: Path | None) -> RecordsSpec | None:
    if section is None:
        return None
    url = section.str("url")
    if not re.match(r"^https?://[^/]+/", url):
        raise section.error("url", f"must be the records endpoint's http(s) URL, not {url!r}")
    token_file = section.path("token_file", must_exist=True)
    sites = section.list("sites")
    if not sites:
        raise section.error("sites", "must list the registry's site codes (the sites reported by name)")
    for index, code in enumerate(sites):
        if not isinstance(code, str | int) or not SITE.match(str(code)):
            raise section.error(f"sites[{index}]", f"must be a site code like 26740 or ttpv, not {code!r}")
    interval = section.duration("interval", 60.0, minimum=5.0)
    timeout = section.duration("timeout", 30.0, minimum=1.0)
    if timeout >= interval:
        raise section.error("timeout", f"must be shorter than the interval ({interval:g}s)")
    spec = RecordsSpec(
        url,
        token_file,
        section.path("store"),
        tuple(str(code) for code in sites),
        interval,
        timeout,
        section.int("page_size", 500, minimum=1, maximum=10_000),
        section.int("top", 20, minimum=1, maximum=200),
        section.path("ca_file", ca_file, must_exist=True),
        section.int("build_workers", 0, minimum=0, maximum=64),
    )
    section.done()
    return spec


def _target(item: Section, interval: float, timeout: float, ca_file: Path | None, verify: bool) -> Target:
    name = item.str("name")
    if not NAME.match(name):
        raise item.error(
            "name", f"must be lower-case letters, digits, '_', '.', '-' (it is a label value), not {name!r}"
        )
    url = item.str("url")
    target_interval = item.duration("interval", interval, minimum=1.0)
    target_timeout = item.duration("timeout", timeout, minimum=0.1)
    if target_timeout >= target_interval:
        raise item.error("timeout", f"must be shorter than the interval ({target_interval:g}s)")
    labels = item.mapping("labels", {})
    if len(labels) > MAX_STATIC_LABELS:
        raise item.error("labels", f"at most {MAX_STATIC_LABELS} labels")
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL.match(key) or key in RESERVED_LABELS:
            raise item.error(f"labels.{key}", "is not a usable label name")
        if not isinstance(value, str | int):
            raise item.error(f"labels.{key}", "must be a string")
    expect = read_expect(item.section("expect", None))
    try:
        spec = ProbeSpec(
            url,
            timeout=target_timeout,
            expect=expect,
            ca_file=item.path("ca_file", ca_file, must_exist=True),
            verify=item.bool("verify", verify),
        )
    except ValueError as exc:
        raise item.error("url", str(exc)) from None
    item.done()
    return Target(name, spec, target_interval, tuple(sorted((k, str(v)) for k, v in labels.items())))


__all__ = ["ConfigError", "DossierConfig", "RecordsSpec", "Target", "load"]
