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

import argparse
import datetime as dt
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .registry import Registry
from .silences import MAX_WINDOW  # a move's window is one silence's
from .times import TZ, local, window_problem
from .validation import Checker, Field, InputError, LineDict, Problem, load_yaml

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
    label = str(path)
    problems: list[Problem] = []
    rows: list[tuple[int, object]] = []
    doc = load_yaml(path, label, problems)
    if doc is not None:
        schedule = Checker(label, problems, kind="schedule")
        top = schedule.mapping(doc, 1, "", "")
        if top is not None:
            schedule.fields(top, "", "", {"moves": Field("list", required=True)})
            moves = top.get("moves")
            if isinstance(moves, list):
                rows = [(moves.line_of(i), item) for i, item in enumerate(moves)]  # type: ignore[attr-defined]
    check = Checker(label, problems, kind="move")
    hosts_by_name = {h.name: h for h in registry.hosts()}
    out: list[Move] = []
    seen_ids: dict[str, int] = {}
    for line, raw in rows:
        entry = check.mapping(raw, line, f"line {line}", "")
        if entry is None:
            continue
        assert isinstance(entry, LineDict)
        who = str(entry.get("id") or f"line {line}")
        before = len(problems)
        values = check.fields(entry, who, "", MOVE_SPEC)
        move_id = str(values.get("id", ""))
        if move_id and not _ID.match(move_id):
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
        names: list[str] = []
        if ("hosts" in entry) == ("site" in entry):
            check.report(line, who, "hosts", "give either hosts: [NAME, ...] or site: CODE (one of them)")
        elif "hosts" in values:
            raw_hosts = values["hosts"]
            if not raw_hosts or not all(isinstance(h, str) for h in raw_hosts):  # type: ignore[union-attr]
                check.report(entry.line_of("hosts"), who, "hosts", "must be a non-empty list of host names")
            else:
                names = list(raw_hosts)  # type: ignore[arg-type]
                dupes = sorted({n for n in names if names.count(n) > 1})
                if dupes:
                    check.report(entry.line_of("hosts"), who, "hosts", f"listed twice: {', '.join(dupes)}")
        elif "site" in values:
            code = str(values["site"])
            if code not in registry.sites:
                check.report(entry.line_of("site"), who, "site", f"unknown site {code!r}: not in the site registry")
            else:
                names = [h.name for h in registry.sites[code].hosts if h.role in MOVABLE_ROLES]
                if source and code != source:
                    check.report(entry.line_of("site"), who, "site", f"site {code} is not the from site ({source})")
        start = _when(values["start"], check, entry.line_of("start"), who, "start") if "start" in values else None
        end = _when(values["end"], check, entry.line_of("end"), who, "end") if "end" in values else None
        problem = window_problem(start, end, now, MAX_WINDOW) if start and end else None
        if problem:
            check.report(entry.line_of("end"), who, "end", problem)
        wanted: list[str | None] = [None] * len(names)
        if "to_hosts" in values:
            given = values["to_hosts"]
            if not isinstance(given, list) or not all(isinstance(h, str) for h in given) or len(given) != len(names):
                check.report(entry.line_of("to_hosts"), who, "to_hosts",
                             f"must list one new host name per moving PC ({len(names)})")  # fmt: skip
            elif len(set(given)) != len(given):
                check.report(entry.line_of("to_hosts"), who, "to_hosts", "a new host name is given twice")
            else:
                wanted = list(given)
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
            if new_name is not None:
                new = next((h for h in registry.sites[target].hosts if h.name == new_name), None)
                if new is None or new.role != host.role:
                    check.report(entry.line_of("to_hosts"), who, "to_hosts",
                                 f"{new_name}: not a {host.role} of site {target}")  # fmt: skip
                    continue
            else:
                new = next((h for h in registry.sites[target].hosts
                            if h.role == host.role and h.number == host.number), None)  # fmt: skip
            if new is None:
                have = len(registry.sites[target].hosts_by_role(host.role))
                check.report(entry.line_of("to"), who, "to",
                             f"site {target} has no {host.role} number {host.number} for {name} "
                             f"(it has {have}): raise its count in the registry first")  # fmt: skip
                continue
            moving.append(HostMove(name, host.role, new.name, str(host.lab_address if lab else host.address),
                                   str(new.lab_address if lab else new.address), str(new.address),
                                   registry.sites[target].subnet.prefixlen,
                                   str(registry.sites[target].gateway)))  # fmt: skip
        if len(problems) == before and start and end:
            out.append(Move(move_id, source, target, start, end, str(values["responsible"]), tuple(moving), line))
    # One host, two moves at once.
    for i, a in enumerate(out):
        for b in out[i + 1 :]:
            if not (a.start < b.end and b.start < a.end):
                continue
            shared = sorted({h.name for h in a.hosts} & {h.name for h in b.hosts})
            if shared:
                check.report(b.line, b.id, "start",
                             f"{', '.join(shared)} also move(s) in {a.id} (line {a.line}) and the windows overlap "
                             f"({a.start.isoformat()} to {a.end.isoformat()})")  # fmt: skip
            taken = sorted({h.new_name for h in a.hosts} & {h.new_name for h in b.hosts})
            if taken:
                check.report(b.line, b.id, "to_hosts",
                             f"{', '.join(taken)} is also the new identity of a PC in {a.id} (line {a.line}) "
                             "in an overlapping window")  # fmt: skip
    if problems:
        return [], sorted(problems)
    return out, []


def load_schedule(path: str | Path, registry: Registry, now: dt.datetime, lab: bool = False) -> list[Move]:
    moves, problems = check_schedule(path, registry, now, lab)
    if problems:
        raise InputError(problems, what="relocation schedule")
    return moves


# ---------------------------------------------------------------- CLI


def _schedule_args(args: argparse.Namespace):
    """The schedule's path, the inventory source, its registry, and now."""
    from .inventory import read_inventory_source

    source = read_inventory_source(Path(args.inventory))
    registry = source.load()
    path = Path(args.schedule) if args.schedule else source.config_file.parent / SCHEDULE_NAME
    now = dt.datetime.now(TZ) if args.now is None else dt.datetime.fromisoformat(args.now)
    return path, source, registry, local(now)


def cmd_check(args: argparse.Namespace) -> int:
    path, source, registry, now = _schedule_args(args)
    lab = source.lab
    if not path.is_file():
        print(f"{path}: no relocation schedule (--schedule FILE)", file=sys.stderr)
        return 2
    moves, problems = check_schedule(path, registry, now, lab)
    if problems:
        print(f"{path}: INVALID, {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([m.as_dict() for m in moves], ensure_ascii=False, indent=1))
        return 0
    hosts = sum(len(m.hosts) for m in moves)
    print(f"{path}: OK: {len(moves)} move(s), {hosts} PC(s)")
    for m in sorted(moves, key=lambda m: m.start):
        state = "open / đang diễn ra" if m.is_open(now) else "upcoming / sắp tới"
        start, end = m.start.astimezone(TZ), m.end.astimezone(TZ)
        print(f"  {m.id}: {m.source} -> {m.target}, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} (UTC+7), "
              f"{state}; responsible / phụ trách: {m.responsible}")  # fmt: skip
        for h in m.hosts:
            print(f"    {h.name} ({h.address}) -> {h.new_name} ({h.new_address})")
    return 0


def _one_move(args: argparse.Namespace):
    from . import relocate

    path, source, registry, now = _schedule_args(args)
    if not path.is_file():
        raise relocate.MoveError(f"{path}: no relocation schedule (--schedule FILE)")
    return relocate.find(load_schedule(path, registry, now, source.lab), args.move, path), source, registry, now


def _alertmanager(args: argparse.Namespace, registry: Registry, lab: bool):
    from .silences import Alertmanager, default_url  # default_url reads $MOTCUA_ALERTMANAGER_URL

    return Alertmanager(args.alertmanager or default_url(registry, lab))


def cmd_show(args: argparse.Namespace) -> int:
    from . import relocate

    move, _source, _registry, now = _one_move(args)
    state = relocate.status(move, relocate.store_dir(args.store), now)
    state["problems"] = relocate.preflight(state)
    if args.json:
        print(json.dumps(state, ensure_ascii=False, indent=1))
        return 0
    print(f"{move.id}: {move.source} -> {move.target}, {'open' if state['open'] else 'not open'}"
          f"{', completed' if state['completed'] else ''}")  # fmt: skip
    for h in state["hosts"]:  # type: ignore[attr-defined]
        backup = h["backup"]
        print(
            f"  {h['name']} -> {h['new_name']}: answers at {h['at']}; backup: "
            + (f"{backup['files']} files, {backup['bytes']} bytes, verified" if backup else "none")
        )
    for problem in state["problems"]:  # type: ignore[attr-defined]
        print(f"  PROBLEM: {problem}", file=sys.stderr)
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    from . import relocate

    move, source, registry, _now = _one_move(args)
    am = _alertmanager(args, registry, source.lab)
    silence_id, created = relocate.ensure_silence(am, registry, move, args.author or "")
    print(json.dumps({"id": silence_id, "changed": created, "until": move.end.isoformat()}))
    return 0


def cmd_backup_verify(args: argparse.Namespace) -> int:
    from . import relocate

    move, _source, _registry, _now = _one_move(args)
    if args.host not in {h.name for h in move.hosts}:
        raise relocate.MoveError(f"{args.host}: not a PC of move {move.id}")
    done, changed = relocate.verify_backup(relocate.store_dir(args.store) / move.id / args.host)
    print(json.dumps({**done, "changed": changed}))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from . import relocate
    from .readiness.report import write_report
    from .roster import load_roster, usernames_by_site

    move, source, registry, _now = _one_move(args)
    roster = Path(args.roster) if args.roster else source.config_file.parent / "roster.yml"
    if not roster.is_file():
        raise relocate.MoveError(f"{roster}: roster not found (--roster FILE): the accounts check needs it")
    officials = usernames_by_site(load_roster(roster, registry))
    store = relocate.store_dir(args.store)
    site = relocate.verify_move(move, registry, source, officials, store, args.wait, args.network_file,
                                args.timeout)  # fmt: skip
    passed = not any(r.status == "fail" for r in site.results)
    now = time.time()
    created = dt.datetime.fromtimestamp(now, TZ).isoformat(timespec="seconds")
    written = write_report(store / move.id / "verification", [site], created, now, f"relocation {move.id}")
    am = _alertmanager(args, registry, source.lab)
    if passed:
        silences = relocate.expire_silences(am, move)
    else:
        silences = [str(s["id"]) for s in relocate.move_silences(am, move)]
    result = relocate.record_result(store, move, site, silences, passed)
    names = ", ".join(f"{h.name} -> {h.new_name}" for h in move.hosts)
    if passed:
        print(f"{move.id}: ĐÃ KIỂM TRA XONG / VERIFIED: {names}; silence(s) expired early: "
              f"{', '.join(silences) or 'none'}")  # fmt: skip
    else:
        print(f"{move.id}: KIỂM TRA KHÔNG ĐẠT / VERIFICATION FAILED on {', '.join(result['failed_hosts'])}")
        for problem in result["problems"]:
            print(f"  {problem}")
        print(f"  giữ tắt cảnh báo đến / silence(s) kept until {move.end.astimezone(TZ):%Y-%m-%d %H:%M} (UTC+7): "
              f"{', '.join(silences)}; sửa lỗi rồi chạy lại / fix and run the playbook again; "
              f"phụ trách / responsible: {move.responsible}")  # fmt: skip
    print(f"report / báo cáo: {written['html']}")
    return 0 if passed else 1


def _move_args(p, store: bool = True) -> None:
    p.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
    p.add_argument("--schedule", help=f"the schedule (default: {SCHEDULE_NAME} beside the inventory's motcua.yml)")
    p.add_argument("--move", required=True, help="the move's id in the schedule")
    p.add_argument("--now", help=argparse.SUPPRESS)
    if store:
        p.add_argument("--store", help="the central store of moves (default: $MOTCUA_RELOCATION_STORE or ./relocation)")


def add_parser(sub) -> None:
    p = sub.add_parser("relocation", help="the relocation schedule: which PCs move where and when")
    rel_sub = p.add_subparsers(dest="relocation_command", required=True)
    text = "check the schedule against the registry and list its moves (exit 1 and every problem if invalid)"
    q = rel_sub.add_parser("check", help=text, description=text)
    q.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
    q.add_argument("--schedule", help=f"the schedule (default: {SCHEDULE_NAME} beside the inventory's motcua.yml)")
    q.add_argument("--json", action="store_true", help="the moves with each PC's new name and address")
    q.add_argument("--now", help=argparse.SUPPRESS)  # tests: judge the windows at another time
    q.set_defaults(func=cmd_check)

    text = "one move's state: where each PC answers, its backup, whether the move is done (read only)"
    q = rel_sub.add_parser("show", help=text, description=text)
    _move_args(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_show)
    text = "the move's Alertmanager silence (old and new names, the move's window): created or reused"
    q = rel_sub.add_parser("silence", help=text, description=text)
    _move_args(q, store=False)
    q.add_argument("--alertmanager", help="Alertmanager URL (default: $MOTCUA_ALERTMANAGER_URL or the registry's)")
    q.add_argument("--author", help="who sets it (default: the move's responsible person)")
    q.set_defaults(func=cmd_silence)
    text = "unpack a PC's fetched backup in the store and re-read every file against its SHA-256 manifest"
    q = rel_sub.add_parser("backup-verify", help=text, description=text)
    _move_args(q)
    q.add_argument("--host", required=True, help="the PC's name before the move")
    q.set_defaults(func=cmd_backup_verify)
    text = (
        "check the moved PCs at the new site; expire the move's silence if every check passes, "
        "else keep it and report (exit 1)"
    )
    q = rel_sub.add_parser("verify", help=text, description=text)
    _move_args(q)
    q.add_argument("--alertmanager", help="Alertmanager URL (default: $MOTCUA_ALERTMANAGER_URL or the registry's)")
    q.add_argument("--roster", help="officials' roster (default: roster.yml beside the inventory's motcua.yml)")
    q.add_argument("--wait", type=float, default=120.0, help="seconds to retry failing checks (default: 120)")
    q.add_argument("--timeout", type=float, default=30.0, help="seconds per connection (default: 30)")
    q.add_argument(
        "--network-file",
        default="/etc/network/interfaces.d/motcua",
        help="where the PCs' staged address is (default: /etc/network/interfaces.d/motcua)",
    )
    q.set_defaults(func=cmd_verify)
