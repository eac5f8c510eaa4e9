"""The ``expect:`` block of a probe in a config file, read into :class:`Expect`."""

from __future__ import annotations

from .config import Section
from .httpprobe import Expect


def read_expect(section: Section | None) -> Expect:
    if section is None:
        return Expect()
    status = section.list("status", [200])
    if not status or not all(isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in status):
        raise section.error("status", f"must be a list of HTTP status codes (100-599), not {status!r}")
    contains = _strings(section, "body_contains")
    not_contains = _strings(section, "body_not_contains")
    json_path, json_equals = None, ()
    condition = section.section("json", None)
    if condition is not None:
        json_path = condition.str("path")
        if condition.has("equals"):
            equals = condition.raw("equals")
            json_equals = tuple(equals) if isinstance(equals, list) else (equals,)
        condition.done()
    section.done()
    return Expect(tuple(status), contains, not_contains, json_path, json_equals)


def _strings(section: Section, key: str) -> tuple[str, ...]:
    values = section.list(key, [])
    if not all(isinstance(v, str) and v for v in values):
        raise section.error(key, "must be a list of non-empty strings")
    return tuple(values)
