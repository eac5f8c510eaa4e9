"""The relocation schedule: which counter PCs move from which site to which, when, and who answers for it.

A schedule is YAML beside the inventory's ``motcua.yml`` (``relocation.yml``)::

    moves:
      - id: tu-phap-1                      # letters, digits, '-' and '_'
        hosts: [w26740-pc02]               # or  site: "26740"  (every counter PC of that site)
        from: "26740"
        to: ttpv
        start: 2026-12-10T18:00:00+07:00   # no offset: Vietnam's time (UTC+7)
        end: 2026-12-10T22:00:00+07:00
        responsible: Nguyễn Văn An (Trung tâm Chuyển đổi số)

Each moving PC takes the identity of the same role and number at the new site
(``w26740-pc02`` -> ``ttpv-pc02``), or the one ``to_hosts`` names in the same
order (``to_hosts: [ttpv-pc07]``); the registry's IP plan gives its address.
The schedule is checked against the registry before anything acts on it: unknown
hosts and sites, a host that is not at ``from``, a new site without that PC,
windows that end before they start, lie in the past or last longer than 14 days,
and one host in two moves whose windows overlap. Every problem names the file,
the line, the move and the field; all are reported in one run.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from ..registry import Registry
from ..silences import MAX_WINDOW  # a move's window is one silence's
from ..times import local, window_problem
from ..validation import Checker, Field, InputError, LineDict, LineList, Problem, load_yaml

SCHEDULE_NAME = "relocation.yml"
MOVABLE_ROLES = ("counter", "kiosk")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")
MOVE_SPEC = {
    "id": Field("text", required=True),
    "hosts": Field("list"),
    "site": Field("code"),
    "to_hosts": Field("list"),
    "from": Field("code", required=True),
    "to": Field("code", required=True),
    "start": Field("any", required=True),
    "end": Field("any", required=True),
    "responsible": Field("text", required=True),
    "notes": Field("text"),
}


@dataclass(frozen=True)
class HostMove:
    name: str
    role: str
    new_name: str
    address: str  # where it is now
    new_address: str  # where the IP plan puts it at the new site (in the lab: on loopback)
    plan_address: str = ""  # the IP plan's production address at the new site (the same outside the lab)
    prefix: int = 24  # the new site's subnet prefix length
    plan_gateway: str = ""  # the new site's gateway in the IP plan


@dataclass(frozen=True)
class Move:
    id: str
    source: str  # the site it leaves
    target: str  # the site it joins
    start: dt.datetime
    end: dt.datetime
    responsible: str
    hosts: tuple[HostMove, ...]
    line: int

    def is_open(self, now: dt.datetime) -> bool:
        return self.start <= now < self.end

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "from": self.source,
            "to": self.target,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "responsible": self.responsible,
            "hosts": [h.__dict__ for h in self.hosts],
        }


def _when(raw: object, check: Checker, line: int, who: str, field: str) -> dt.datetime | None:
    if isinstance(raw, dt.datetime):
        when = raw
    elif isinstance(raw, str):
        try:
            when = dt.datetime.fromisoformat(raw)
        except ValueError:
            check.report(line, who, field, f"{raw!r} is not a date and time (e.g. 2026-12-10T18:00:00+07:00)")
            return None
    else:
        check.report(line, who, field, f"must be a date and time (e.g. 2026-12-10T18:00:00+07:00), got {raw!r}")
        return None
    return local(when)


def check_schedule(
    path: str | Path, registry: Registry, now: dt.datetime, lab: bool = False
) -> tuple[list[Move], list[Problem]]:
    """Validate a schedule; return its moves (when valid) and every problem."""
    path = Path(path)
    problems: list[Problem] = []
    check = Checker(str(path), problems, kind="move")
    out: list[Move] = []
    seen_ids: dict[str, int] = {}
    for line, raw in _move_entries(path, problems):
        move = _check_move(check, registry, now, lab, line, raw, seen_ids)
        if move is not None:
            out.append(move)
    _check_overlaps(check, out)
    if problems:
        return [], sorted(problems)
    return out, []


def _move_entries(path: Path, problems: list[Problem]) -> list[tuple[int, object]]:
    """The items of the schedule's ``moves:`` list with their lines."""
    doc = load_yaml(path, str(path), problems)
    if doc is None:
        return []
    schedule = Checker(str(path), problems, kind="schedule")
    top = schedule.mapping(doc, 1, "", "")
    if top is None:
        return []
    schedule.fields(top, "", "", {"moves": Field("list", required=True)})
    moves = top.get("moves")
    return [(moves.line_of(i), item) for i, item in enumerate(moves)] if isinstance(moves, LineList) else []


def _check_move(
    check: Checker, registry: Registry, now: dt.datetime, lab: bool, line: int, raw: object,
    seen_ids: dict[str, int],
) -> Move | None:  # fmt: skip
    """One entry of ``moves:``: its Move, or None with every problem reported."""
    entry = check.mapping(raw, line, f"line {line}", "")
    if entry is None:
        return None
    who = str(entry.get("id") or f"line {line}")
    before = len(check.problems)
    values = check.fields(entry, who, "", MOVE_SPEC)
    move_id = str(values.get("id", ""))
    if move_id and not _ID.fullmatch(move_id):
        check.report(line, who, "id", "move IDs are 1-48 letters, digits, '-' or '_'")
    elif move_id in seen_ids:
        check.report(line, who, "id", f"duplicate move ID (first at line {seen_ids[move_id]})")
    elif move_id:
        seen_ids[move_id] = line
    source, target = str(values.get("from", "")), str(values.get("to", ""))
    for field, code in (("from", source), ("to", target)):
        if code and code not in registry.sites:
            check.report(entry.line_of(field), who, field, f"unknown site {code!r}: not in the site registry")
    if source and source == target:
        check.report(entry.line_of("to"), who, "to", f"the same site as from ({source})")
    names = _moving_names(check, registry, entry, values, who, source)
    start = _when(values["start"], check, entry.line_of("start"), who, "start") if "start" in values else None
    end = _when(values["end"], check, entry.line_of("end"), who, "end") if "end" in values else None
    problem = window_problem(start, end, now, MAX_WINDOW) if start and end else None
    if problem:
        check.report(entry.line_of("end"), who, "end", problem)
    wanted = _new_names(check, entry, values, who, len(names))
    moving = _host_moves(check, registry, lab, entry, who, source, target, names, wanted)
    if len(check.problems) != before or not start or not end:
        return None
    return Move(move_id, source, target, start, end, str(values["responsible"]), tuple(moving), line)


def _moving_names(
    check: Checker, registry: Registry, entry: LineDict, values: dict[str, object], who: str, source: str
) -> list[str]:
    """The PCs a move names: its ``hosts`` list, or every movable PC of its ``site``."""
    if ("hosts" in entry) == ("site" in entry):
        check.report(entry.line, who, "hosts", "give either hosts: [NAME, ...] or site: CODE (one of them)")
        return []
    if "hosts" in values:
        raw_hosts = values["hosts"]
        if not isinstance(raw_hosts, list) or not raw_hosts or not all(isinstance(h, str) for h in raw_hosts):
            check.report(entry.line_of("hosts"), who, "hosts", "must be a non-empty list of host names")
            return []
        dupes = sorted({n for n in raw_hosts if raw_hosts.count(n) > 1})
        if dupes:
            check.report(entry.line_of("hosts"), who, "hosts", f"listed twice: {', '.join(dupes)}")
        return list(raw_hosts)
    if "site" not in values:
        return []
    code = str(values["site"])
    if code not in registry.sites:
        check.report(entry.line_of("site"), who, "site", f"unknown site {code!r}: not in the site registry")
        return []
    if source and code != source:
        check.report(entry.line_of("site"), who, "site", f"site {code} is not the from site ({source})")
    return [h.name for h in registry.sites[code].hosts if h.role in MOVABLE_ROLES]


def _new_names(check: Checker, entry: LineDict, values: dict[str, object], who: str, count: int) -> list[str | None]:
    """``to_hosts``: one new name per moving PC, in order (None: the same role and number at the new site)."""
    if "to_hosts" not in values:
        return [None] * count
    given = values["to_hosts"]
    if not isinstance(given, list) or not all(isinstance(h, str) for h in given) or len(given) != count:
        check.report(entry.line_of("to_hosts"), who, "to_hosts", f"must list one new host name per moving PC ({count})")
        return [None] * count
    if len(set(given)) != len(given):
        check.report(entry.line_of("to_hosts"), who, "to_hosts", "a new host name is given twice")
        return [None] * count
    return list(given)


def _host_moves(
    check: Checker, registry: Registry, lab: bool, entry: LineDict, who: str, source: str, target: str,
    names: list[str], wanted: list[str | None],
) -> list[HostMove]:  # fmt: skip
    """Each PC's new identity at the target site, with its address there from the IP plan."""
    hosts_by_name = {h.name: h for h in registry.hosts()}
    moving: list[HostMove] = []
    for name, new_name in zip(names, wanted, strict=True):
        host = hosts_by_name.get(name)
        if host is None:
            check.report(entry.line_of("hosts"), who, "hosts", f"{name}: not a host of the registry")
            continue
        if host.role not in MOVABLE_ROLES:
            check.report(entry.line_of("hosts"), who, "hosts",
                         f"{name} is a {host.role}: only counter and kiosk PCs are relocated")  # fmt: skip
            continue
        if source in registry.sites and host.site != source:
            check.report(entry.line_of("hosts"), who, "hosts", f"{name} is at site {host.site}, not {source}")
            continue
        if target not in registry.sites or source == target:
            continue
        site = registry.sites[target]
        if new_name is not None:
            new = next((h for h in site.hosts if h.name == new_name), None)
            if new is None or new.role != host.role:
                check.report(entry.line_of("to_hosts"), who, "to_hosts",
                             f"{new_name}: not a {host.role} of site {target}")  # fmt: skip
                continue
        else:
            new = next((h for h in site.hosts if h.role == host.role and h.number == host.number), None)
        if new is None:
            have = len(site.hosts_by_role(host.role))
            check.report(entry.line_of("to"), who, "to",
                         f"site {target} has no {host.role} number {host.number} for {name} "
                         f"(it has {have}): raise its count in the registry first")  # fmt: skip
            continue
        moving.append(HostMove(name, host.role, new.name, str(host.lab_address if lab else host.address),
                               str(new.lab_address if lab else new.address), str(new.address),
                               site.subnet.prefixlen, str(site.gateway)))  # fmt: skip
    return moving


def _check_overlaps(check: Checker, moves: list[Move]) -> None:
    """Each identity (a registry name, the desk it stands for) belongs to one PC at a time.

    In overlapping windows: one PC in two moves, one new identity given twice, or a desk that a
    PC leaves while another PC becomes it. Over the whole schedule: a second PC may take an
    identity only after a move has carried the first one away from it.
    """
    for i, a in enumerate(moves):
        for b in moves[i + 1 :]:
            if not (a.start < b.end and b.start < a.end):
                continue
            shared = sorted({h.name for h in a.hosts} & {h.name for h in b.hosts})
            if shared:
                check.report(b.line, b.id, "start",
                             f"{', '.join(shared)} also move(s) in {a.id} (line {a.line}) and the windows overlap "
                             f"({a.start.isoformat()} to {a.end.isoformat()})")  # fmt: skip
            crossing = sorted(({h.name for h in a.hosts} & {h.new_name for h in b.hosts})
                              | ({h.new_name for h in a.hosts} & {h.name for h in b.hosts}))  # fmt: skip
            if crossing:
                check.report(b.line, b.id, "start",
                             f"{', '.join(crossing)} is left by one PC while another becomes it in {a.id} "
                             f"(line {a.line}) and the windows overlap: the desk must be free first")  # fmt: skip
    arrivals: dict[str, list[Move]] = {}
    for move in sorted(moves, key=lambda m: m.start):
        for h in move.hosts:
            arrivals.setdefault(h.new_name, []).append(move)
    for identity, takers in arrivals.items():
        for first, second in itertools.pairwise(takers):
            left = any(identity in {h.name for h in m.hosts} and first.end <= m.start and m.end <= second.start
                       for m in moves)  # fmt: skip
            if not left:
                check.report(second.line, second.id, "to_hosts",
                             f"{identity} is also the new identity of a PC in {first.id} (line {first.line}), "
                             "and no move between them carries that PC away: one PC per identity")  # fmt: skip


def load_schedule(path: str | Path, registry: Registry, now: dt.datetime, lab: bool = False) -> list[Move]:
    moves, problems = check_schedule(path, registry, now, lab)
    if problems:
        raise InputError(problems, what="relocation schedule")
    return moves
