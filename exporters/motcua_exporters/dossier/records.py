"""One dossier (hồ sơ thủ tục hành chính) as the project reads it from any source.

Every source (the dossier system's reporting API, a CSV/XLSX export) maps its rows onto
:class:`Dossier`; the indicators (:mod:`.indicators`) read nothing else. A source reports what
it cannot map by the file or page, the row and the column, and :func:`check` adds the rules that
hold whatever the source: dates in order, a status that fits its dates, a site the registry has.

One model for the exporter on the monitoring hosts (which runs from a zip, without the motcua
package) and for ``motcua dossiers`` (which imports it from here).
"""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, fields
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # a time without an offset, in every source, is Vietnam's

# channel -> the spellings a source may use (compared without accents, case or spaces)
CHANNELS = {
    "direct": ("truc tiep", "direct", "tai quay"),
    "online": ("truc tuyen", "online", "dich vu cong truc tuyen", "dvc truc tuyen"),
    "postal": ("buu chinh", "buu chinh cong ich", "postal", "post"),
}
# status -> spellings. A finished dossier has a result (finished_at); a returned one was
# also handed over (returned_at); withdrawn and refused ones leave the on-time figures. A paused
# one waits for the applicant's further documents: its clock is stopped (see Dossier.overdue).
STATUSES = {
    "in_progress": ("dang xu ly", "dang giai quyet", "in progress", "in_progress"),
    "paused": ("cho bo sung", "yeu cau bo sung", "tam dung", "tam dung xu ly", "paused", "awaiting documents"),
    "finished": ("da giai quyet", "da xu ly", "co ket qua", "finished", "done"),
    "returned": ("da tra ket qua", "returned", "da tra"),
    "withdrawn": ("rut ho so", "cong dan rut", "withdrawn"),
    "refused": ("tu choi", "khong du dieu kien", "refused", "rejected"),
}
RATINGS = {
    "very_satisfied": ("rat hai long", "very satisfied", "very_satisfied"),
    "satisfied": ("hai long", "satisfied"),
    "dissatisfied": ("khong hai long", "dissatisfied", "not satisfied"),
}
OPEN, CLOSED, LEFT = ("in_progress", "paused"), ("finished", "returned"), ("withdrawn", "refused")
# Public holidays on a fixed solar date (Labour Code 2019, Article 112(1)): 1 January, 30 April,
# 1 May, 2 September. Tết, the Hùng Kings' day (lunar dates) and the days the government adds
# each year are not known here: the dossier system's limit already skips them (it counts working
# days); this only matters for a limit a system puts on a day off.
FIXED_HOLIDAYS = frozenset({(1, 1), (4, 30), (5, 1), (9, 2)})


def day_off(day: dt.date) -> bool:
    """A Saturday, a Sunday or a fixed-date public holiday."""
    return day.weekday() >= 5 or (day.month, day.day) in FIXED_HOLIDAYS


def legal_limit(due: dt.datetime) -> dt.datetime:
    """When a limit really ends. Civil Code 2015, Article 148(5): a limit whose last day is a weekend
    day or a holiday ends at the end of the next working day; (6): a day ends at 24:00. So a limit on
    a Saturday ends at 24:00 on Monday (00:00 on Tuesday); any other limit is the recorded time."""
    local = due.astimezone(TZ)
    if not day_off(local.date()):
        return due
    day = local.date() + dt.timedelta(days=1)
    while day_off(day):
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), TZ)


def plain(text: str) -> str:
    """Lower case, no Vietnamese accents (đ -> d), single spaces: what spellings are compared as."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "d"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.lower().replace("_", " ").replace("-", " ").split())


def lookup(table: dict[str, tuple[str, ...]], value: str) -> str | None:
    """The key whose spellings include ``value`` (or the key itself), None if none does."""
    _TABLES.setdefault(id(table), table)  # held here, so no other table ever has its id
    return _lookup(id(table), value)


_TABLES: dict[int, dict[str, tuple[str, ...]]] = {}  # the tables looked up in (module constants)


@functools.lru_cache(maxsize=4096)
def _lookup(table_id: int, value: str) -> str | None:
    # A source spells a channel or a status the same way a million times: each spelling is worked out once.
    wanted = plain(value)
    for key, spellings in _TABLES[table_id].items():
        if wanted == plain(key) or wanted in (plain(s) for s in spellings):
            return key
    return None


@dataclass(frozen=True)
class Dossier:
    """One dossier. Times are aware (Vietnam's time unless the source says otherwise)."""

    code: str  # mã hồ sơ: unique in the dossier system
    site: str  # the registry's site code: the ward or unit, or the city centre, that received it
    agency: str | None  # the agency (sở, ban, ngành) that decides it, at the city centre; None in a ward
    procedure_code: str
    procedure_name: str
    field: str  # lĩnh vực
    channel: str  # a key of CHANNELS
    received_at: dt.datetime
    due_at: dt.datetime | None  # None: a procedure with no time limit
    finished_at: dt.datetime | None  # the result was ready
    returned_at: dt.datetime | None  # the result was handed over
    status: str  # a key of STATUSES
    paid_online: bool | None = None  # None: no fee, or not recorded
    digitised_at_intake: bool | None = None
    digitised_result: bool | None = None
    overdue_reason: str | None = None  # as recorded by the system
    late_step: str | None = None  # the step (bước) where the time was lost, where recorded
    rating: str | None = None  # a key of RATINGS, where the applicant gave one
    source: str = ""  # file:row or api page, for messages
    line: int = 0

    def __reduce__(self) -> tuple[type[Dossier], tuple[object, ...]]:
        """Pickled (a build's part in another process, running.build) as its fields, and made again by the
        constructor: its instance dict shares its keys with the others' as when it was first made (unpickled
        into a fresh dict instead, a month's figures took 24 MiB more), and ``limit`` is worked
        out again when asked."""
        return (Dossier, tuple(getattr(self, name) for name in _DOSSIER_FIELDS))

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

    @property
    def counts_for_time(self) -> bool:
        """Whether the dossier is judged on time or late (not withdrawn or refused, and has a limit)."""
        return self.status not in LEFT and self.due_at is not None

    @property  # judged again at every refresh for every dossier in progress: worked out once
    def limit(self) -> dt.datetime | None:
        """The limit as the law reads it (:func:`legal_limit` of ``due_at``); None: no time limit."""
        # (Not functools.cached_property: in Python 3.11 it takes a lock at every read.)
        try:
            return self.__dict__["_limit"]
        except KeyError:
            limit = self.__dict__["_limit"] = None if self.due_at is None else legal_limit(self.due_at)
            return limit

    def on_time(self) -> bool | None:
        """Finished within its limit (a result at the limit itself is on time: "đúng hạn"); None while
        open or not judged."""
        if not self.closed or not self.counts_for_time or self.finished_at is None:
            return None
        limit = self.limit
        assert limit is not None
        return self.finished_at <= limit

    def overdue(self, now: dt.datetime) -> bool:
        """In progress and past its limit at ``now``. A paused dossier (awaiting the applicant's further
        documents) is not: the applicant holds it, and the system records the limit again when they
        come (Decree 61/2018/NĐ-CP, Article 19, on dossiers that need more documents)."""
        limit = self.limit
        return self.status == "in_progress" and limit is not None and now > limit


_DOSSIER_FIELDS = tuple(f.name for f in fields(Dossier))


@dataclass(frozen=True, order=True)
class RecordProblem:
    """What is wrong with one record: where it came from (a file, an API page), its row, its code, the field."""

    source: str
    line: int
    code: str
    field: str
    message: str

    def __str__(self) -> str:
        parts = [f"{self.source}:{self.line}" if self.line else self.source]
        parts += [f"dossier {self.code}"] if self.code else []
        parts += [f"field {self.field}"] if self.field else []
        return ": ".join(parts) + f": {self.message}"


def check(dossiers: Iterable[Dossier], file: str, sites: Iterable[str] | None = None) -> list[RecordProblem]:
    """The rules every source's dossiers follow; problems name the file, the row and the field."""
    known = sites if isinstance(sites, frozenset) or sites is None else set(sites)
    seen: dict[str, int] = {}
    problems = []

    def problem(d: Dossier, field: str, message: str) -> None:
        problems.append(RecordProblem(file, d.line, d.code, field, message))

    for d in dossiers:
        if d.code in seen:
            problem(d, "code", f"the same dossier code as line {seen[d.code]}")
        else:
            seen[d.code] = d.line
        if known is not None and d.site not in known:
            problem(d, "site", f"site {d.site!r} is not in the registry")
        if d.due_at is not None and d.due_at < d.received_at:
            problem(
                d, "due_at", f"due {d.due_at:%d/%m/%Y %H:%M}, before it was received ({d.received_at:%d/%m/%Y %H:%M})"
            )
        if d.finished_at is not None and d.finished_at < d.received_at:
            problem(d, "finished_at", f"finished {d.finished_at:%d/%m/%Y %H:%M}, before it was received")
        if d.returned_at is not None and (d.finished_at is None or d.returned_at < d.finished_at):
            problem(d, "returned_at", "handed over before (or without) a result")
        if d.status in CLOSED and d.finished_at is None:
            problem(d, "finished_at", f"status {d.status} needs the time the result was ready")
        if d.status in OPEN and d.finished_at is not None:
            problem(d, "status", "in progress, yet it has a result time: which one is right?")
        if d.status == "returned" and d.returned_at is None:
            problem(d, "returned_at", "status returned needs the time it was handed over")
    return problems
