"""``motcua silence add|list|expire``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from ..access import lab_home, names, read_inventory_source
from ..registry import Registry
from ..times import TZ
from ..webauth import Credentials
from . import Alertmanager, SilenceError, check_window, default_url, matchers, parse_duration, parse_time, silence


def _describe(s: dict) -> str:
    parts = [f"{m['name']}{'=~' if m.get('isRegex') else '='}{m['value']}" for m in s.get("matchers", [])]
    return ", ".join(parts)


def _setup(args: argparse.Namespace) -> tuple[Registry, Alertmanager]:
    source = read_inventory_source(Path(args.inventory))
    registry = source.load()
    credentials = Credentials.for_tools(lab_home() if source.lab else None)
    return registry, Alertmanager(args.alertmanager or default_url(registry, source.lab), credentials=credentials)


def cmd_add(args: argparse.Namespace) -> int:
    registry, am = _setup(args)
    now = dt.datetime.now(TZ) if args.now is None else parse_time(args.now, "--now")
    match = matchers(registry, names(args.hosts) or [], names(args.sites) or [])
    start = parse_time(args.start, "--start") if args.start else now
    if bool(args.end) == bool(args.duration):
        raise SilenceError("give the end of the window: --end TIME or --for DURATION (one of them)")
    end = parse_time(args.end, "--end") if args.end else start + parse_duration(args.duration)
    window = check_window(start, end, now)
    silence_id = silence(am, match, window, args.author or "", args.comment or "")
    if args.json:
        print(json.dumps({"id": silence_id, "matchers": match, "startsAt": window.start.isoformat(),
                          "endsAt": window.end.isoformat()}, ensure_ascii=False))  # fmt: skip
    else:
        print(f"silenced / đã tắt cảnh báo: {_describe({'matchers': match})}")
        start, end = window.start.astimezone(TZ), window.end.astimezone(TZ)
        print(f"  from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} (UTC+7), by {args.author.strip()}: "
              f"{args.comment.strip()}")  # fmt: skip
        print(f"  id: {silence_id}  (expire early: motcua silence expire {silence_id})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _registry, am = _setup(args)
    rows = [s for s in am.silences() if args.all or s.get("status", {}).get("state") in ("active", "pending")]
    rows.sort(key=lambda s: s.get("endsAt", ""))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    if not rows:
        print("no active silence / không có cảnh báo nào đang bị tắt")
    for s in rows:
        end = dt.datetime.fromisoformat(s["endsAt"].replace("Z", "+00:00")).astimezone(TZ)
        print(f"{s['id']}  {s.get('status', {}).get('state', '?'):<8} until {end:%Y-%m-%d %H:%M}  "
              f"{_describe(s)}  by {s.get('createdBy', '')}: {s.get('comment', '')}")  # fmt: skip
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    _registry, am = _setup(args)
    for silence_id in args.ids:
        am.expire(silence_id)
        print(f"expired / đã bật lại cảnh báo: {silence_id}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("silence", help="Alertmanager silences for exact hosts or sites and an exact window")
    silence_sub = p.add_subparsers(dest="silence_command", required=True)
    for name, func, text in (
        ("add", cmd_add, "silence the alerts of some hosts or sites for a window, saying who and why"),
        ("list", cmd_list, "the active and pending silences"),
        ("expire", cmd_expire, "end silences now (the work is done)"),
    ):
        q = silence_sub.add_parser(name, help=text, description=text)
        q.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
        q.add_argument(
            "--alertmanager",
            help="Alertmanager URL, or several comma-separated (default: $MOTCUA_ALERTMANAGER_URL, else every "
            "monitoring host's :9093, the first that answers)",
        )
        q.set_defaults(func=func)
        if name == "add":
            q.add_argument("--hosts", help="comma-separated host names (the alerts' instance label)")
            q.add_argument("--sites", help="comma-separated site codes (every alert of those sites)")
            q.add_argument("--start", help="start, ISO 8601 (default: now; no offset means UTC+7)")
            q.add_argument("--end", help="end, ISO 8601")
            q.add_argument("--for", dest="duration", help="or the length: 90m, 4h, 2d (at most 14 days)")
            q.add_argument("--author", required=True, help="who sets it (name, team)")
            q.add_argument("--comment", required=True, help="why: the work and its ticket")
            q.add_argument("--json", action="store_true")
            q.add_argument("--now", help=argparse.SUPPRESS)  # tests: judge the window at another time
        if name == "list":
            q.add_argument("--all", action="store_true", help="also the expired ones")
            q.add_argument("--json", action="store_true")
        if name == "expire":
            q.add_argument("ids", nargs="+", help="silence IDs (from add or list)")
