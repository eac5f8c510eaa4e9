"""A small typed-field checker for registry entries.

Each check reports a :class:`Problem` naming file, line, site and field and
returns the cleaned value (or ``None``), so validation goes on after the
first error and one run lists them all.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from .problems import Problem
from .source import LineDict, LineList, shown, strip_diacritics, text_problem

MISSING = object()
# What text may hold, once its diacritics are stripped, where it goes into a router's or a
# switch's configuration: IOS reads '?' as a request for help, '!' and '#' start comments.
DEVICE_TEXT = re.compile(r"[A-Za-z0-9 \-_.,()/'&+:]*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def device_text_problem(value: str) -> str | None:
    """What keeps ``value`` (diacritics stripped) out of a device's configuration, or None."""
    plain = strip_diacritics(value)
    bad = sorted({ch for ch in plain if not DEVICE_TEXT.fullmatch(ch)})
    if bad:
        return (f"goes into the network gear's configuration, which takes letters, digits, spaces and "
                f"-_.,()/'&+: only; found {''.join(bad)!r}")  # fmt: skip
    return None


def domain_problem(value: str) -> str | None:
    """What keeps ``value`` from being a DNS domain name (lower case, two labels or more), or None."""
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        return (f"{shown(value)} is not a domain name: lower-case labels of letters, digits and '-', "
                "separated by dots, e.g. hcmc.gov.vn")  # fmt: skip
    return None


def type_name(value: object) -> str:
    if isinstance(value, dt.datetime):
        return "a date and time (quote it to write text)"
    if isinstance(value, dt.date):
        return "a date (quote it to write text)"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_DURATION = re.compile(r"(\d+)(s|m|h|d)")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Field:
    """How to check one key of a mapping."""

    kind: str  # int, text, ident, domain, cidr, mapping, list, code, duration; any (the caller checks the value)
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    multiline: bool = False  # text: line breaks allowed (a login banner)
    device: bool = False  # text: written into routers' and switches' configuration (DEVICE_TEXT)


class Checker:
    """Collects problems for one file."""

    def __init__(self, file: str, problems: list[Problem], kind: str = "site"):
        self.file = file
        self.problems = problems
        self.kind = kind

    def report(self, line: int, site: str, field: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, site, field, message, self.kind))

    def mapping(self, value: object, line: int, site: str, field: str) -> LineDict | None:
        if isinstance(value, dict):
            return value  # type: ignore[return-value]
        self.report(line, site, field, f"must be a mapping (key: value), got {type_name(value)}")
        return None

    def sequence(self, value: object, line: int, site: str, field: str) -> LineList | None:
        if isinstance(value, list):
            return value  # type: ignore[return-value]
        self.report(line, site, field, f"must be a list, got {type_name(value)}")
        return None

    def fields(
        self,
        entry: LineDict,
        site: str,
        prefix: str,
        spec: dict[str, Field],
    ) -> dict[str, object]:
        """Check every key of ``entry`` against ``spec``; return the clean values."""
        out: dict[str, object] = {}
        for key in entry:
            if key not in spec:
                name = f"{prefix}{key}"
                hint = difflib.get_close_matches(str(key), list(spec), n=1, cutoff=0.6)
                suggestion = f"; did you mean {prefix}{hint[0]!r}?" if hint else ""
                known = ", ".join(sorted(spec))
                self.report(
                    entry.line_of(key),
                    site,
                    name,
                    f"unknown key{suggestion} (known keys: {known})",
                )
        for key, field in spec.items():
            name = f"{prefix}{key}"
            if key not in entry:
                if field.required:
                    self.report(entry.line, site, name, "required field is missing")
                continue
            value = self.value(entry[key], field, entry.line_of(key), site, name)
            if value is not MISSING:
                out[key] = value
        return out

    def value(self, raw: object, field: Field, line: int, site: str, name: str) -> object:
        check: Callable[[object, Field, int, str, str], object] = getattr(self, f"_{field.kind}")
        return check(raw, field, line, site, name)

    def _int(self, raw: object, field: Field, line: int, site: str, name: str) -> object:
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.report(line, site, name, f"must be a whole number, got {type_name(raw)} {shown(raw)}")
            return MISSING
        low, high = field.minimum, field.maximum
        if low is not None and high is not None and not low <= raw <= high:
            self.report(line, site, name, f"{raw} is outside {low}..{high}")
        elif low is not None and raw < low:
            self.report(line, site, name, f"{raw} is too small: at least {low}")
        elif high is not None and raw > high:
            self.report(line, site, name, f"{raw} is too large: at most {high}")
        else:
            return int(raw)
        return MISSING

    def _text(self, raw: object, field: Field, line: int, site: str, name: str) -> object:
        if not isinstance(raw, str):
            self.report(line, site, name, f"must be text, got {type_name(raw)} {shown(raw)}")
            return MISSING
        if not raw.strip():
            self.report(line, site, name, "must not be empty")
            return MISSING
        problem = text_problem(raw, multiline=field.multiline) or (device_text_problem(raw) if field.device else None)
        if problem:
            self.report(line, site, name, problem)
            return MISSING
        if field.choices and raw not in field.choices:
            hint = difflib.get_close_matches(raw, field.choices, n=1, cutoff=0.6)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            self.report(line, site, name, f"{shown(raw)} is not one of {', '.join(field.choices)}{suggestion}")
            return MISSING
        return raw

    def _ident(self, raw: object, field: Field, line: int, site: str, name: str) -> object:
        value = self._text(raw, field, line, site, name)
        if value is MISSING:
            return MISSING
        text = str(value)
        if not (text[0].isascii() and text[0].isalpha()) or not all(
            ch.isascii() and (ch.isalnum() or ch in "-_") for ch in text
        ):
            self.report(line, site, name, f"{shown(text)} must be ASCII letters, digits, '-' or '_'")
            return MISSING
        return text

    def _domain(self, raw: object, field: Field, line: int, site: str, name: str) -> object:
        value = self._text(raw, field, line, site, name)
        if value is MISSING:
            return MISSING
        problem = domain_problem(str(value))
        if problem:
            self.report(line, site, name, problem)
            return MISSING
        return value

    def _cidr(self, raw: object, field: Field, line: int, site: str, name: str) -> object:
        if not isinstance(raw, str):
            self.report(line, site, name, f"must be an IPv4 network like 10.79.0.0/16, got {type_name(raw)}")
            return MISSING
        try:
            return ipaddress.IPv4Network(raw)
        except ValueError as exc:
            self.report(line, site, name, f"{shown(raw)} is not an IPv4 network ({exc})")
            return MISSING

    def _duration(self, raw: object, field: Field, line: int, site: str, name: str) -> object:
        """A duration as systemd timers and Prometheus write it: 90s, 30m, 2h, 1d; whole seconds out."""
        match = _DURATION.fullmatch(raw.strip()) if isinstance(raw, str) else None
        if match is None:
            self.report(line, site, name, f"must be a duration like 30m, 2h or 90s, got {type_name(raw)} {shown(raw)}")
            return MISSING
        seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
        low, high = field.minimum, field.maximum
        if low is not None and seconds < low:
            self.report(line, site, name, f"{raw} is too short: at least {low} s")
        elif high is not None and seconds > high:
            self.report(line, site, name, f"{raw} is too long: at most {high} s")
        else:
            return seconds
        return MISSING

    def _mapping(self, raw: object, field: Field, line: int, site: str, name: str) -> object:
        value = self.mapping(raw, line, site, name)
        return MISSING if value is None else value

    def _any(self, raw: object, field: Field, line: int, site: str, name: str) -> object:
        return raw

    def _list(self, raw: object, field: Field, line: int, site: str, name: str) -> object:
        value = self.sequence(raw, line, site, name)
        return MISSING if value is None else value

    def _code(self, raw: object, field: Field, line: int, site: str, name: str) -> object:
        """A site code: a 5-digit ward code or a short lower-case centre code."""
        if isinstance(raw, bool):
            self.report(line, site, name, f"must be a site code, got {type_name(raw)}")
            return MISSING
        if isinstance(raw, int):
            raw = f"{raw:05d}"
        if not isinstance(raw, str) or not raw:
            self.report(line, site, name, f"must be a site code, got {type_name(raw)}")
            return MISSING
        if raw.isdigit() and len(raw) == 5:
            return raw
        if raw.isascii() and raw[0].isalpha() and raw.isalnum() and raw.islower() and len(raw) <= 10:
            return raw
        self.report(
            line,
            site,
            name,
            f"{shown(raw)} is not a site code (5-digit ward code, or up to 10 lower-case letters/digits for a centre)",
        )
        return MISSING
