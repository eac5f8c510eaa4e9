"""Weekly hours: the one-stop shops' opening hours, and the shifts' hours of day.

One spelling serves the site registry (``opening_hours`` of ``sites.yml``: when each shop is open)
and the duty roster (each shift's ``hours``):

    opening_hours:
      monday-friday: "07:30-17:00"
      saturday: "07:30-11:30"

A key is a weekday or a range of them; a value is ``HH:MM-HH:MM`` in the city's time (UTC+7).
:func:`opening_condition` turns such hours into a PromQL condition, so the alerts that only mean
something while a shop is open (docs/dossiers.md) are judged from the registry's hours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Hồ Chí Minh City's one-stop shops: Monday to Friday all day, Saturday morning.
DEFAULT_OPENING_HOURS = {"monday-friday": "07:30-17:00", "saturday": "07:30-11:30"}
CITY_OFFSET_SECONDS = 7 * 3600  # Vietnam: UTC+7 all year, no daylight saving
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

# weekday (Monday 0) -> (start, end) in minutes after midnight, city time
Opening = dict[int, tuple[int, int]]


def _minutes(hh: str, mm: str) -> int | None:
    h, m = int(hh), int(mm)
    if h > 24 or m > 59 or (h == 24 and m):
        return None
    return h * 60 + m


def parse_hours(text: str) -> tuple[int, int] | None:
    """'07:30-17:00' -> (450, 1020); '19:00-07:00' (overnight) -> (1140, 1860); None if malformed."""
    match = _HOURS.fullmatch(text.strip())
    if not match:
        return None
    start, end = _minutes(*match.group(1, 2)), _minutes(*match.group(3, 4))
    if start is None or end is None or start >= 1440 or start == end:
        return None
    return (start, end if end > start else end + 1440)


def parse_weekdays(text: str) -> list[int] | None:
    """'monday-friday' -> [0..4]; 'saturday' -> [5]; None if malformed."""
    parts = text.strip().lower().split("-")
    if not all(p in WEEKDAYS for p in parts) or len(parts) > 2:
        return None
    first, last = WEEKDAYS.index(parts[0]), WEEKDAYS.index(parts[-1])
    return list(range(first, last + 1)) if first <= last else None


def parse_opening(raw: Mapping[object, object]) -> tuple[Opening, list[tuple[object, str]]]:
    """Opening hours as written (weekdays -> hours within one day): the hours by weekday, and each
    problem as (the key it is about, the message). Empty hours are a problem: they would say a shop
    never opens."""
    opening: Opening = {}
    problems: list[tuple[object, str]] = []
    if not raw:
        problems.append(("", 'names no day: write e.g. monday-friday: "07:30-17:00"'))
    for key, text in raw.items():
        days = parse_weekdays(str(key))
        hours = parse_hours(str(text))
        if days is None:
            problems.append((key, f"{key!r}: write a weekday or a range like monday-friday"))
        elif hours is None or hours[1] > 1440:
            problems.append((key, f"{text!r}: write hours like 07:30-17:00 within one day"))
        else:
            for day in days:
                if day in opening:
                    problems.append((key, f"{WEEKDAYS[day]} is given twice"))
                opening[day] = hours
    return opening, problems


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _day_groups(opening: Opening) -> list[tuple[int, int, tuple[int, int]]]:
    """Consecutive weekdays with the same hours: (first, last, hours)."""
    groups: list[tuple[int, int, tuple[int, int]]] = []
    for day in sorted(opening):
        hours = opening[day]
        if groups and groups[-1][1] == day - 1 and groups[-1][2] == hours:
            groups[-1] = (groups[-1][0], day, hours)
        else:
            groups.append((day, day, hours))
    return groups


def describe(opening: Opening) -> str:
    """'monday-friday 07:30-17:00, saturday 07:30-11:30': the hours as people write them (and as
    the ``opening_hours`` label of ``motcua_site_info`` carries them)."""
    parts = []
    for first, last, (start, end) in _day_groups(opening):
        days = WEEKDAYS[first] if first == last else f"{WEEKDAYS[first]}-{WEEKDAYS[last]}"
        parts.append(f"{days} {_clock(start)}-{_clock(end)}")
    return ", ".join(parts)


def settled_hours(opening: Opening, settled: int) -> Opening:
    """Per weekday, the part of its hours from which the shop has been open for the whole last ``settled``
    minutes: its opening plus ``settled``, or earlier when it opens at 00:00 and the day before was open
    until 24:00 (hours that run on past midnight are one opening; every day 00:00-24:00 never closes).
    A day whose hours are all shorter than that is left out."""
    out: Opening = {}
    for day, (start, end) in opening.items():
        run_start, back = start, day  # the opening this day's hours belong to, in minutes from this midnight
        for _ in range(7):
            before = opening.get((back - 1) % 7)
            if run_start != (back - day) * 1440 or before is None or before[1] != 1440:
                break
            back -= 1
            run_start = (back - day) * 1440 + before[0]
        else:
            run_start = -7 * 1440 - settled  # open all week: open long enough at any time
        first = max(start, run_start + settled)
        if first < end:
            out[day] = (first, end)
    return out


def opening_condition(opening: Opening, settled: int = 0) -> str:
    """A PromQL expression that has one series (no labels) while the hours say open, in the city's
    time, and none otherwise. ``settled`` minutes: from that long after opening only (an alert that compares
    the last hour with other days' same hour waits until the whole hour was open; see :func:`settled_hours`
    for hours that run on past midnight)."""
    local = f"vector(time() + {CITY_OFFSET_SECONDS})"
    clock = f"(hour({local}) * 60 + minute({local}))"
    # Prometheus' day_of_week: Sunday 0 ... Saturday 6; ours: Monday 0 ... Sunday 6.
    terms = []
    for first, last, (start, end) in _day_groups(settled_hours(opening, settled)):
        a, b = (first + 1) % 7, (last + 1) % 7
        day = f"day_of_week({local}) == {a}" if a == b else None
        if day is None:
            day = (
                f"day_of_week({local}) >= {a} <= {b}"
                if a < b
                else f"(day_of_week({local}) >= {a} or day_of_week({local}) <= {b})"
            )
        terms.append(f"({clock} >= {start} < {end} and on () {day})")
    if not terms:
        return "vector(1) < 0"  # never open (long enough): no series
    return " or on () ".join(terms)
