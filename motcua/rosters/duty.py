"""The duty roster of the launch window: who is on duty for which sites, when, and how to reach them.

A duty roster says who is on duty for which sites when (format:
docs/monitoring.md). It is checked against the site registry before anything
is written: unknown sites, regions or teams, people without a way to reach
them, shifts outside the window, two shifts covering one site at the same
time, and a site's opening hours (the registry's) or, for the dossier system,
any hour that nobody covers are reported with file, line and shift.

A valid roster compiles into Alertmanager's routing
(:func:`motcua.monitoring.alertmanager.compile_alertmanager`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..hours import parse_hours
from ..registry import Registry
from ..validation import Checker, Field, InputError, LineDict, Problem, load_yaml, shown, text_problem, type_name

CITY_TIMEZONE = "Asia/Ho_Chi_Minh"
CITY_OFFSET = timedelta(hours=7)
MAX_WINDOW_DAYS = 62
WINDOW_INTERVAL = "launch-window"
SYSTEM = "system"  # the scope of city-wide alerts (the dossier system, the monitoring itself)
_DATES = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.\.(\d{4}-\d{2}-\d{2}))?$")
_PERSON_ID = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Vietnamese numbers as people write them: 0 and nine digits, or +84 and the same nine.
_PHONE = re.compile(r"^(?:0|\+84)[1-9]\d{8}$")
_ZALO_ID = re.compile(r"^\d{6,24}$")  # a Zalo user id (per Official Account): digits
# The notification bridge's channels (motcua-notify), tried in the person's order.
BRIDGE_CHANNELS = ("zalo", "zns", "sms")
CHANNEL_NEEDS = {"zalo": "zalo", "zns": "phone", "sms": "phone"}

TOP_SPEC = {
    "window": Field("mapping", required=True),
    "timezone": Field("text"),
    "opening_hours": Field("mapping"),
    "system_hours": Field("text"),
    "lead": Field("text", required=True),
    "people": Field("list", required=True),
    "shifts": Field("list", required=True),
    "allow_other_timezone": Field("any"),  # true: a time zone whose offset is not the city's UTC+7, on purpose
}
# A date, quoted or not (YAML reads an unquoted 2025-07-01 as a date).
WINDOW_SPEC = {"start": Field("any", required=True), "end": Field("any", required=True)}
# Keys and presence are checked by Checker.fields; the values by _Reader (a
# number is as good as text for a phone or a chat id; scope and dates may be lists).
PERSON_SPEC = {
    "id": Field("any", required=True),
    "name": Field("any", required=True),
    "email": Field("any"),
    "telegram_chat_id": Field("any"),  # Telegram is blocked in Vietnam since June 2025: kept as an option only
    "phone": Field("any"),
    "zalo": Field("any"),
    "channels": Field("any"),
}
SHIFT_SPEC = {
    "person": Field("any", required=True),
    "scope": Field("any", required=True),  # checked by _Reader.scope: system, all, or a mapping
    "dates": Field("any", required=True),  # checked by _Reader.dates: a date, a range, or a list of them
    "hours": Field("any", required=True),
}
SCOPE_SPEC = {"sites": Field("list"), "regions": Field("list"), "teams": Field("list")}


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str | None
    telegram_chat_id: int | None
    phone: str | None
    line: int
    zalo: str | None = None
    channels: tuple[str, ...] = ()  # the bridge's channels in order (empty: the bridge does not reach them)

    @property
    def receiver(self) -> str:
        return f"duty-{self.id}"

    @property
    def urgent_receiver(self) -> str:
        """The lead's receiver for critical alerts: SMS first."""
        return f"urgent-{self.id}"

    @property
    def urgent_channels(self) -> tuple[str, ...]:
        if self.phone is None:
            return self.channels
        return ("sms", *[c for c in self.channels if c != "sms"])


@dataclass(frozen=True)
class Scope:
    """What a shift covers: the dossier system, or a set of sites."""

    system: bool
    sites: frozenset[str]

    def covers(self, site: str | None) -> bool:
        return self.system if site is None else site in self.sites


@dataclass(frozen=True)
class Shift:
    number: int  # 1-based position in the file, for messages
    line: int
    person: Person
    scope: Scope
    days: tuple[date, ...]
    start: time
    end_minutes: int  # minutes after the start day's midnight; > 1440 when overnight
    hours: str

    @property
    def name(self) -> str:
        return f"shift-{self.number:03d}"

    def spans(self) -> list[tuple[datetime, datetime]]:
        out = []
        for day in self.days:
            start = datetime.combine(day, self.start)
            out.append((start, datetime.combine(day, time()) + timedelta(minutes=self.end_minutes)))
        return out


@dataclass
class DutyRoster:
    file: str
    timezone: str
    window: tuple[date, date]
    system_hours: tuple[int, int] | None  # daily minutes; None: the system needs no cover
    lead: Person
    people: dict[str, Person]
    shifts: list[Shift] = field(default_factory=list)

    def on_duty(self, site: str | None, when: datetime) -> list[Person]:
        """Who is on duty for ``site`` (None: the dossier system) at local time ``when``."""
        return [s.person for s in self.shifts if s.scope.covers(site) and any(a <= when < b for a, b in s.spans())]


def moved(text: str, first_day: date) -> str:
    """A roster file's text with every date in it moved by the same number of days, so that its earliest
    is ``first_day``: a window's roster reused for another window, or the lab's roster made current (the
    duty board shows who is on duty now). Comments and layout are kept."""
    found = [date.fromisoformat(d) for d in re.findall(r"\b\d{4}-\d{2}-\d{2}\b", text)]
    if not found:
        return text
    delta = first_day - min(found)
    return re.sub(r"\b\d{4}-\d{2}-\d{2}\b", lambda m: (date.fromisoformat(m.group(0)) + delta).isoformat(), text)


# ---------------------------------------------------------------- parsing
def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


class _Reader:
    def __init__(self, registry: Registry, label: str, problems: list[Problem]):
        self.registry = registry
        self.check = Checker(label, problems, kind="roster")

    def report(self, line: int, who: str, fld: str, message: str) -> None:
        self.check.report(line, who, fld, message)

    def text(self, raw: object, line: int, who: str, fld: str) -> str | None:
        if isinstance(raw, bool) or raw is None or isinstance(raw, list | dict):
            self.report(line, who, fld, f"must be text, got {type_name(raw)} {shown(raw)}")
            return None
        if isinstance(raw, date | datetime):  # an unquoted 2025-07-01: YAML reads a date, which is what we want
            return raw.isoformat()
        value = str(raw).strip()
        if not value:
            self.report(line, who, fld, "must not be empty")
            return None
        problem = text_problem(str(raw))
        if problem:
            self.report(line, who, fld, problem)
            return None
        return value

    def person(self, raw: object, line: int) -> Person | None:
        entry = self.check.mapping(raw, line, f"people line {line}", "")
        if entry is None:
            return None
        who = f"person {entry.get('id', f'at line {line}')}"
        raw_values = self.check.fields(entry, who, "", PERSON_SPEC)
        values = {k: self.text(v, entry.line_of(k), who, k) for k, v in raw_values.items() if k != "channels"}
        pid, name = values.get("id"), values.get("name")
        ok = pid is not None and name is not None
        if pid is not None and not _PERSON_ID.fullmatch(pid):
            self.report(entry.line_of("id"), who, "id", "ids are 2-32 lower-case letters, digits, '.', '_' or '-'")
            ok = False
        email, chat, phone = values.get("email"), values.get("telegram_chat_id"), values.get("phone")
        if email is not None and not _EMAIL.fullmatch(email):
            self.report(entry.line_of("email"), who, "email", f"{email!r} is not an e-mail address")
            ok = False
        chat_id = None
        if chat is not None:
            if re.fullmatch(r"-?\d{1,19}", chat) and -(2**63) <= int(chat) < 2**63:
                chat_id = int(chat)
            else:
                self.report(entry.line_of("telegram_chat_id"), who, "telegram_chat_id",
                            f"{shown(chat)} is not a Telegram chat id (a whole number that fits 64 bits)")  # fmt: skip
                ok = False
        if phone is not None and not _PHONE.fullmatch(phone):
            self.report(entry.line_of("phone"), who, "phone",
                        f"{shown(phone)} is not a Vietnamese number: write 0xxxxxxxxx or +84xxxxxxxxx")  # fmt: skip
            ok = False
        zalo = values.get("zalo")
        if zalo is not None and not _ZALO_ID.fullmatch(zalo):
            self.report(entry.line_of("zalo"), who, "zalo",
                        f"{shown(zalo)} is not a Zalo user id (the digits the Official Account sees)")  # fmt: skip
            ok = False
        channels = self.channels(entry, who, {"zalo": zalo, "phone": phone})
        if channels is None:
            ok = False
        if not any(k in entry for k in ("email", "telegram_chat_id", "zalo", "phone")):
            self.report(line, who, "email", "no way to reach this person: give a zalo id, a phone or an email")
            ok = False
        if not ok:
            return None
        return Person(pid, name, email, chat_id, phone, line, zalo, channels)  # type: ignore[arg-type]

    def channels(self, entry: LineDict, who: str, contacts: dict[str, str | None]) -> tuple[str, ...] | None:
        """The person's channels in order; by default every one their contacts allow (zalo, zns, sms)."""
        if "channels" not in entry:
            return tuple(c for c in BRIDGE_CHANNELS if contacts[CHANNEL_NEEDS[c]])
        raw = entry["channels"]
        line = entry.line_of("channels")
        if not isinstance(raw, list) or not raw:
            self.report(line, who, "channels", f"must be a list of {', '.join(BRIDGE_CHANNELS)}, got {shown(raw)}")
            return None
        out: list[str] = []
        for index, item in enumerate(raw):
            if item == "telegram":
                self.report(line, who, f"channels[{index}]", "telegram is set with telegram_chat_id "
                            "(Alertmanager sends it; blocked in Vietnam), not as a bridge channel")  # fmt: skip
                return None
            if item not in BRIDGE_CHANNELS:
                self.report(line, who, f"channels[{index}]",
                            f"unknown channel {shown(item)}: known are {', '.join(BRIDGE_CHANNELS)}")  # fmt: skip
                return None
            if not contacts[CHANNEL_NEEDS[item]]:
                self.report(line, who, f"channels[{index}]", f"{item} needs this person's {CHANNEL_NEEDS[item]}")
                return None
            if item in out:
                self.report(line, who, f"channels[{index}]", f"{item} is listed twice")
                return None
            out.append(item)
        return tuple(out)

    def scope(self, raw: object, line: int, who: str) -> Scope | None:
        if isinstance(raw, str):
            if raw == SYSTEM:
                return Scope(True, frozenset())
            if raw == "all":
                return Scope(False, frozenset(self.registry.sites))
            self.report(line, who, "scope", f"{raw!r}: write system, all, or a mapping of sites/regions/teams")
            return None
        entry = self.check.mapping(raw, line, who, "scope")
        if entry is None:
            return None
        values = self.check.fields(entry, who, "scope.", SCOPE_SPEC)
        if not values:
            self.report(line, who, "scope", "names no sites, regions or teams")
            return None
        sites: set[str] = set()
        ok = True
        by_site = self.registry.sites
        known = {"sites": by_site, "regions": {s.region for s in by_site.values()}, "teams": self.registry.teams}
        for key, items in values.items():
            names = [f"{i:05d}" if isinstance(i, int) and not isinstance(i, bool) else str(i) for i in items]
            for name in names:
                if key == "sites":
                    matched = {name} if name in by_site else set()
                elif key == "regions":
                    matched = {c for c, s in by_site.items() if s.region == name}
                else:
                    matched = {c for c, s in by_site.items() if s.team == name}
                if name not in known[key]:
                    self.report(
                        entry.line_of(key),
                        who,
                        f"scope.{key}",
                        f"unknown {key[:-1]} {name!r}: not in the site registry",
                    )
                    ok = False
                sites |= matched
        return Scope(False, frozenset(sites)) if ok else None

    def dates(self, raw: object, line: int, who: str, window: tuple[date, date] | None) -> list[date] | None:
        items = raw if isinstance(raw, list) else [raw]
        days: list[date] = []
        for item in items:
            text = self.text(item, line, who, "dates")
            if text is None:
                return None
            match = _DATES.fullmatch(text)
            first = _parse_date(match.group(1)) if match else None
            last = _parse_date(match.group(2)) if match and match.group(2) else first
            if first is None or last is None or last < first:
                self.report(
                    line, who, "dates", f"{text!r}: write a date (2025-07-01) or a range (2025-07-01..2025-07-07)"
                )
                return None
            if window and (first < window[0] or last > window[1]):
                self.report(line, who, "dates", f"{text} is outside the launch window {window[0]}..{window[1]}")
                return None
            days += [first + timedelta(days=n) for n in range((last - first).days + 1)]
        if len(set(days)) != len(days):
            self.report(line, who, "dates", "a date is listed twice")
            return None
        return sorted(days)


def check_duty_roster(
    path: str | Path, registry: Registry, label: str | None = None
) -> tuple[DutyRoster | None, list[Problem]]:
    """Validate a duty roster; return it (when valid) and every problem found."""
    path = Path(path)
    label = label or str(path)
    problems: list[Problem] = []
    doc = load_yaml(path, label, problems)
    if doc is None:
        return None, problems or [Problem(label, 0, "", "", "the roster is empty", "roster")]
    r = _Reader(registry, label, problems)
    top = r.check.mapping(doc, 1, "", "")
    if top is None:
        return None, problems
    values = r.check.fields(top, "", "", TOP_SPEC)
    # --- window and time zone
    window = None
    raw_window = values.get("window")
    if isinstance(raw_window, dict):
        wv = r.check.fields(raw_window, "window", "window.", WINDOW_SPEC)
        start = _parse_date(str(wv.get("start", "")))
        end = _parse_date(str(wv.get("end", "")))
        if start is None or end is None:
            r.report(raw_window.line, "window", "window", "start and end must be dates like 2025-07-01")
        elif end < start or (end - start).days >= MAX_WINDOW_DAYS:
            r.report(
                raw_window.line, "window", "window", f"end must be on or after start, at most {MAX_WINDOW_DAYS} days"
            )
        else:
            window = (start, end)
    tz = str(values.get("timezone", CITY_TIMEZONE))
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        r.report(top.line_of("timezone"), "", "timezone", f"unknown time zone {shown(tz)}")
    else:
        offset = datetime(2025, 7, 1, 12, tzinfo=zone).utcoffset()
        if offset != CITY_OFFSET and values.get("allow_other_timezone") is not True:
            hours = (offset or timedelta()).total_seconds() / 3600
            r.report(top.line_of("timezone"), "", "timezone",
                     f"{tz} is UTC{hours:+g}, not the city's UTC+7 (in Etc/GMT names the sign is reversed: "
                     f"Etc/GMT-7 is UTC+7); use {CITY_TIMEZONE}, or set allow_other_timezone: true")  # fmt: skip
    if "opening_hours" in values:  # one source: the registry's hours are what the alerts judge by as well
        r.report(top.line_of("opening_hours"), "", "opening_hours",
                 "the one-stop shops' opening hours are in the site registry (sites.yml: "
                 "defaults.opening_hours, or a site's own): remove this key; every site's cover is checked "
                 "against its hours there")  # fmt: skip
    system_text = str(values.get("system_hours", "00:00-24:00"))
    system_hours = None if system_text == "none" else parse_hours(system_text)
    if system_text != "none" and (system_hours is None or system_hours[1] > 1440):
        r.report(top.line_of("system_hours"), "", "system_hours", "write hours like 00:00-24:00, or none")
    # --- people
    people: dict[str, Person] = {}
    raw_people = values.get("people") or []
    for i, raw in enumerate(raw_people):
        person = r.person(raw, raw_people.line_of(i))
        if person is None:
            continue
        if person.id in people:
            r.report(person.line, f"person {person.id}", "id", f"duplicate id (first at line {people[person.id].line})")
            continue
        people[person.id] = person
    lead = None
    if "lead" in values:
        lead = people.get(str(values["lead"]))
        if lead is None:
            r.report(top.line_of("lead"), "", "lead", f"{values['lead']!r} is not in people")
    # --- shifts
    shifts: list[Shift] = []
    raw_shifts = values.get("shifts") or []
    for i, raw in enumerate(raw_shifts):
        line = raw_shifts.line_of(i)
        who = f"shift {i + 1}"
        entry = r.check.mapping(raw, line, who, "")
        if entry is None:
            continue
        before = len(problems)
        r.check.fields(entry, who, "", SHIFT_SPEC)
        if len(problems) != before:
            continue
        person = people.get(str(entry["person"]))
        if person is None:
            r.report(entry.line_of("person"), who, "person", f"{entry['person']!r} is not in people")
        scope = r.scope(entry["scope"], entry.line_of("scope"), who)
        days = r.dates(entry["dates"], entry.line_of("dates"), who, window)
        hours = parse_hours(str(entry["hours"]))
        if hours is None:
            r.report(
                entry.line_of("hours"),
                who,
                "hours",
                f"{entry['hours']!r}: write hours like 07:00-19:00 (19:00-07:00 ends the next day)",
            )
        if person and scope and days and hours:
            start = time(hours[0] // 60, hours[0] % 60)
            shifts.append(Shift(i + 1, line, person, scope, tuple(days), start, hours[1], str(entry["hours"])))
    if not problems and lead is not None and window is not None:
        problems += _overlaps(label, shifts)
        problems += _gaps(label, registry, shifts, window, system_hours)
    if problems:
        return None, sorted(set(problems))
    assert lead is not None and window is not None
    return DutyRoster(label, tz, window, system_hours, lead, people, shifts), []


def load_duty_roster(path: str | Path, registry: Registry, label: str | None = None) -> DutyRoster:
    roster, problems = check_duty_roster(path, registry, label)
    if problems or roster is None:
        raise InputError(problems, what="duty roster")
    return roster


def _overlaps(label: str, shifts: list[Shift]) -> list[Problem]:
    """Two shifts covering one site (or the system) at the same time."""
    spans = sorted(((a, b, s) for s in shifts for a, b in s.spans()), key=lambda x: (x[0], x[1], x[2].number))
    problems: list[Problem] = []
    seen: set[tuple[int, int]] = set()
    active: list[tuple[datetime, datetime, Shift]] = []
    for start, end, shift in spans:
        active = [x for x in active if x[1] > start]
        for _, other_end, other in active:
            if (other.number, shift.number) in seen or other.number == shift.number:
                continue
            shared = (shift.scope.sites & other.scope.sites) or (
                {SYSTEM} if shift.scope.system and other.scope.system else set()
            )
            if shared:
                seen.add((other.number, shift.number))
                what = "the dossier system" if SYSTEM in shared else _some_sites(shared)
                problems.append(
                    Problem(
                        label,
                        shift.line,
                        f"shift {shift.number}",
                        "hours",
                        f"overlaps shift {other.number} (line {other.line}, {other.person.id}) "
                        f"from {start:%Y-%m-%d %H:%M} to {min(end, other_end):%H:%M} for {what}: "
                        "one person is on duty for a site at a time",
                        "roster",
                    )
                )
        active.append((start, end, shift))
    return problems


def _some_sites(sites: set[str] | frozenset[str], limit: int = 5) -> str:
    codes = sorted(sites)
    more = f" and {len(codes) - limit} more" if len(codes) > limit else ""
    return ("site " if len(codes) == 1 else "sites ") + ", ".join(codes[:limit]) + more


def _gaps(
    label: str,
    registry: Registry,
    shifts: list[Shift],
    window: tuple[date, date],
    system_hours: tuple[int, int] | None,
) -> list[Problem]:
    """Opening hours of a site (the registry's) or system hours with nobody on duty, grouped by gap."""
    by_gap: dict[tuple[datetime, datetime], set[str]] = {}
    days = [window[0] + timedelta(days=n) for n in range((window[1] - window[0]).days + 1)]
    covering: dict[str, list[tuple[datetime, datetime]]] = {}
    for shift in shifts:
        keys = list(shift.scope.sites) + ([SYSTEM] if shift.scope.system else [])
        for key in keys:
            covering.setdefault(key, []).extend(shift.spans())
    needs: list[tuple[str, dict[int, tuple[int, int]]]] = [
        (code, site.opening_hours) for code, site in registry.sites.items()
    ]
    if system_hours is not None:
        needs.append((SYSTEM, dict.fromkeys(range(7), system_hours)))
    for key, hours_by_day in needs:
        spans = sorted(covering.get(key, []))
        for day in days:
            hours = hours_by_day.get(day.weekday())
            if hours is None:
                continue
            midnight = datetime.combine(day, time())
            need_start = midnight + timedelta(minutes=hours[0])
            need_end = midnight + timedelta(minutes=hours[1])
            cursor = need_start
            for a, b in spans:
                if b <= cursor or a >= need_end:
                    continue
                if a > cursor:
                    by_gap.setdefault((cursor, a), set()).add(key)
                cursor = max(cursor, b)
                if cursor >= need_end:
                    break
            if cursor < need_end:
                by_gap.setdefault((cursor, need_end), set()).add(key)
    problems = []
    for (a, b), keys in sorted(by_gap.items()):
        what = "the dossier system" if keys == {SYSTEM} else _some_sites(keys - {SYSTEM})
        if SYSTEM in keys and len(keys) > 1:
            what += " and the dossier system"
        problems.append(
            Problem(
                label,
                0,
                "",
                "shifts",
                f"nobody is on duty {a:%Y-%m-%d %H:%M}-{b:%H:%M} ({a:%A}) for {what}",
                "roster",
            )
        )
    return problems
