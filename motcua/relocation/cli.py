"""``motcua relocation``: check the schedule, and the steps of one move that ``playbooks/relocation.yml`` runs."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from ..access import lab_home, read_inventory_source
from ..registry import Registry
from ..rosters.officials import load_roster, usernames_by_site
from ..silences import Alertmanager, default_url  # default_url reads $MOTCUA_ALERTMANAGER_URL
from ..times import TZ, local
from ..webauth import Credentials
from . import move as steps
from .schedule import SCHEDULE_NAME, check_schedule, load_schedule


def _schedule_args(args: argparse.Namespace):
    """The schedule's path, the inventory source, its registry, and now."""
    source = read_inventory_source(Path(args.inventory))
    registry = source.load()
    path = Path(args.schedule) if args.schedule else source.directory / SCHEDULE_NAME
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
    path, source, registry, now = _schedule_args(args)
    if not path.is_file():
        raise steps.MoveError(f"{path}: no relocation schedule (--schedule FILE)")
    return steps.find(load_schedule(path, registry, now, source.lab), args.move, path), source, registry, now


def _alertmanager(args: argparse.Namespace, registry: Registry, lab: bool) -> Alertmanager:
    credentials = Credentials.for_tools(lab_home() if lab else None)
    return Alertmanager(args.alertmanager or default_url(registry, lab), credentials=credentials)


def cmd_show(args: argparse.Namespace) -> int:
    move, _source, _registry, now = _one_move(args)
    state = steps.status(move, steps.store_dir(args.store), now)
    state["problems"] = steps.preflight(state)
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
    move, source, registry, _now = _one_move(args)
    am = _alertmanager(args, registry, source.lab)
    silence_id, created = steps.ensure_silence(am, registry, move, args.author or "")
    print(json.dumps({"id": silence_id, "changed": created, "until": move.end.isoformat()}))
    return 0


def cmd_backup_verify(args: argparse.Namespace) -> int:
    move, _source, _registry, _now = _one_move(args)
    if args.host not in {h.name for h in move.hosts}:
        raise steps.MoveError(f"{args.host}: not a PC of move {move.id}")
    done, changed = steps.verify_backup(steps.store_dir(args.store) / move.id / args.host)
    print(json.dumps({**done, "changed": changed}))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    move, source, registry, _now = _one_move(args)
    roster = Path(args.roster) if args.roster else source.directory / "roster.yml"
    if not roster.is_file():
        raise steps.MoveError(f"{roster}: roster not found (--roster FILE): the accounts check needs it")
    officials = usernames_by_site(load_roster(roster, registry))
    done = steps.verify_and_record(move, registry, source, officials, steps.store_dir(args.store),
                                   _alertmanager(args, registry, source.lab), args.wait, args.network_file,
                                   args.timeout)  # fmt: skip
    names = ", ".join(f"{h.name} -> {h.new_name}" for h in move.hosts)
    if done.passed:
        print(f"{move.id}: ĐÃ KIỂM TRA XONG / VERIFIED: {names}; silence(s) expired early: "
              f"{', '.join(done.silences) or 'none'}")  # fmt: skip
    else:
        print(f"{move.id}: KIỂM TRA KHÔNG ĐẠT / VERIFICATION FAILED on {', '.join(done.result['failed_hosts'])}")  # type: ignore[arg-type]
        for problem in done.result["problems"]:  # type: ignore[attr-defined]
            print(f"  {problem}")
        print(f"  giữ tắt cảnh báo đến / silence(s) kept until {move.end.astimezone(TZ):%Y-%m-%d %H:%M} (UTC+7): "
              f"{', '.join(done.silences)}; sửa lỗi rồi chạy lại / fix and run the playbook again; "
              f"phụ trách / responsible: {move.responsible}")  # fmt: skip
    print(f"report / báo cáo: {done.report['html']}")
    return 0 if done.passed else 1


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
