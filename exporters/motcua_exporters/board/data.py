"""The board's data file: the sites, their devices and the duty roster's shifts, rendered on the controller from
the registry and the roster (``lookup('motcua.ops.monitoring', 'board')``): the monitoring host never reads the
registry itself, and nothing here parses it again.

::

    timezone: Asia/Ho_Chi_Minh
    regions: [{id: hcm, name: TP Hồ Chí Minh}, {id: bd, name: Bình Dương}, {id: vt, name: Bà Rịa - Vũng Tàu}]
    sites:
      - {code: "26740", name: Phường Sài Gòn, kind: ward, region: hcm, team: dx-hcm, phase: live,
         address: ..., devices: [{name: w26740-rt01, role: router}, ...]}
    lead: lan.tt      # who gets the alerts no shift covers (outside the launch window, for one)
    people: {an.nv: {name: Nguyễn Văn An, zalo: "847...", phone: "0900000002"}}
    shifts:   # each span of each shift, in the roster's local time
      - {person: an.nv, scope: system, start: "2025-07-01T07:00", end: "2025-07-01T19:00"}
      - {person: dung.hv, scope: ["26740", "ttpv"], start: ..., end: ...}
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..core.config import Section, load_yaml

SITE_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
ROLES = ("router", "switch", "kiosk", "counter", "printer", "scanner")  # the registry's device roles


@dataclass(frozen=True)
class Device:
    name: str
    role: str


@dataclass(frozen=True)
class Site:
    code: str
    name: str
    kind: str  # ward | centre
    region: str
    team: str
    phase: str
    address: str
    devices: tuple[Device, ...]

    @property
    def short(self) -> str:
        """The name without its type word, for a small tile (Phường Sài Gòn -> Sài Gòn)."""
        for word in ("Phường ", "Xã ", "Đặc khu "):
            if self.name.startswith(word):
                return self.name[len(word) :]
        return self.name


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    zalo: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Span:
    person: Person
    system: bool  # the dossier system's cover (scope: system)
    sites: frozenset[str]
    start: dt.datetime  # aware, the roster's time zone
    end: dt.datetime

    def covers(self, site: str | None) -> bool:
        return self.system if site is None else site in self.sites


@dataclass
class BoardData:
    file: str
    zone: ZoneInfo
    regions: dict[str, str]
    sites: dict[str, Site]
    spans: list[Span]
    lead: Person | None = None

    def on_duty(self, site: str | None, when: dt.datetime) -> tuple[list[Span], list[Span]]:
        """The spans covering ``site`` (None: the dossier system) now, and the next ones to start."""
        mine = [s for s in self.spans if s.covers(site)]
        now = [s for s in mine if s.start <= when < s.end]
        later = sorted((s for s in mine if s.start > when), key=lambda s: s.start)
        nxt = [s for s in later if s.start == later[0].start] if later else []
        return now, nxt

    def spans_between(self, start: dt.datetime, end: dt.datetime) -> list[Span]:
        return sorted(
            (s for s in self.spans if s.start < end and s.end > start), key=lambda s: (s.start, s.person.name)
        )

    def by_region(self) -> list[tuple[str, str, list[Site]]]:
        """(region id, its name, its sites: the centres first, then by name) in the file's order of regions."""
        out = []
        for region, name in self.regions.items():
            sites = sorted(
                (s for s in self.sites.values() if s.region == region), key=lambda s: (s.kind != "centre", s.short)
            )
            if sites:
                out.append((region, name, sites))
        return out


def _time(section: Section, key: str, zone: ZoneInfo) -> dt.datetime:
    text = section.str(key)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise section.error(key, f"not a date and time (2025-07-01T07:00): {text!r}") from None
    return when.replace(tzinfo=zone) if when.tzinfo is None else when.astimezone(zone)


def load_data(path: str | Path) -> BoardData:
    return parse_data(load_yaml(path))


def parse_data(root: Section) -> BoardData:
    """The data file's mapping (a file's, or one given inline in the board's config for a check)."""
    zone_name = root.str("timezone", "Asia/Ho_Chi_Minh")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise root.error("timezone", f"unknown time zone {zone_name!r}") from None
    regions: dict[str, str] = {}
    for entry in root.sections("regions"):
        regions[entry.str("id")] = entry.str("name")
        entry.done()
    sites: dict[str, Site] = {}
    for entry in root.sections("sites"):
        code = str(entry.raw("code") or "")
        if not SITE_CODE.match(code):
            raise entry.error("code", f"not a site code: {code!r}")
        if code in sites:
            raise entry.error("code", f"site {code} is listed twice")
        region = entry.str("region")
        if region not in regions:
            raise entry.error("region", f"site {code}: region {region!r} is not in regions ({', '.join(regions)})")
        devices = []
        for item in entry.sections("devices", []):
            devices.append(Device(item.str("name"), item.str("role", choices=ROLES)))
            item.done()
        sites[code] = Site(
            code,
            entry.str("name"),
            entry.str("kind", choices=("ward", "centre")),
            region,
            entry.str("team"),
            entry.str("phase"),
            entry.str("address", "") or "",
            tuple(devices),
        )
        entry.done()
    if not sites:
        raise root.error("sites", "no site: the board would show nothing")
    people: dict[str, Person] = {}
    for pid, raw in root.mapping("people", {}).items():
        person = Section(raw, root.file, f"people.{pid}")
        people[str(pid)] = Person(
            str(pid), person.str("name"), str(person.raw("zalo", "") or ""), str(person.raw("phone", "") or "")
        )
        person.done()
    lead_id = root.str("lead", None)
    if lead_id is not None and lead_id not in people:
        raise root.error("lead", f"{lead_id!r} is not in people")
    spans = []
    for entry in root.sections("shifts", []):
        pid = entry.str("person")
        if pid not in people:
            raise entry.error("person", f"{pid!r} is not in people")
        scope = entry.raw("scope")
        if scope == "system":
            system, codes = True, frozenset()
        elif isinstance(scope, list) and scope:
            unknown = sorted(str(c) for c in scope if str(c) not in sites)
            if unknown:
                raise entry.error("scope", f"unknown site(s): {', '.join(unknown)}")
            system, codes = False, frozenset(str(c) for c in scope)
        else:
            raise entry.error("scope", f"must be 'system' or a list of site codes, not {scope!r}")
        start, end = _time(entry, "start", zone), _time(entry, "end", zone)
        if end <= start:
            raise entry.error("end", "must be after start")
        spans.append(Span(people[pid], system, codes, start, end))
        entry.done()
    root.done()
    return BoardData(root.file, zone, regions, sites, spans, people[lead_id] if lead_id else None)
