"""``motcua silence``: Alertmanager silences scoped to exact hosts or sites for an exact window.

For planned work during the launch window (a counter moved, a switch replaced):
the people on duty silence exactly what will be down, for exactly as long, with
who did it and why, through Alertmanager's API (v2). Everything is checked
against the registry before the API is called; a silence can be listed and
expired early when the work is done.

Hosts are matched on the ``instance`` label and sites on the ``site`` label,
which every alert of motcua's rules carries (motcua.monitoring.rules).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .inventory import read_inventory_source
from .registry import Registry
from .times import TZ, local, window_problem

MAX_WINDOW = dt.timedelta(days=14)  # the launch window; longer work is a change, not a silence
ALERTMANAGER_PORT = 9093


class SilenceError(Exception):
    """Bad input or an Alertmanager that refused: printed as is, exit 2."""


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime


def parse_time(value: str, field: str) -> dt.datetime:
    """ISO 8601; without an offset, Vietnam's time (UTC+7)."""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise SilenceError(f"{field}: {value!r} is not a date and time (e.g. 2026-12-10T18:00+07:00)") from None
    return local(when)


def parse_duration(value: str) -> dt.timedelta:
    match = re.fullmatch(r"(\d+)([mhd])", value.strip())
    if not match:
        raise SilenceError(f"--for: {value!r} is not a duration (e.g. 90m, 4h, 2d)")
    amount, unit = int(match.group(1)), match.group(2)
    return {"m": dt.timedelta(minutes=amount), "h": dt.timedelta(hours=amount), "d": dt.timedelta(days=amount)}[unit]


def check_window(start: dt.datetime, end: dt.datetime, now: dt.datetime) -> Window:
    problem = window_problem(start, end, now, MAX_WINDOW)
    if problem:
        raise SilenceError(f"window: {problem}")
    return Window(max(start, now), end)


def matchers(registry: Registry, hosts: list[str], sites: list[str]) -> list[dict[str, object]]:
    """The silence's matchers: exactly these hosts, or exactly these sites (unknown ones refused)."""
    if bool(hosts) == bool(sites):
        raise SilenceError("choose what to silence: --hosts NAME[,NAME] or --sites CODE[,CODE] (not both)")
    if hosts:
        known = {h.name for h in registry.hosts()}
        unknown = sorted(set(hosts) - known)
        if unknown:
            raise SilenceError(f"--hosts: not in the registry: {', '.join(unknown)}")
        label, values = "instance", sorted(set(hosts))
    else:
        unknown = sorted(set(sites) - set(registry.sites))
        if unknown:
            raise SilenceError(f"--sites: unknown site(s): {', '.join(unknown)}")
        label, values = "site", sorted(set(sites))
    if len(values) == 1:
        return [{"name": label, "value": values[0], "isRegex": False, "isEqual": True}]
    return [{"name": label, "value": "|".join(re.escape(v) for v in values), "isRegex": True, "isEqual": True}]


def default_url(registry: Registry, lab: bool) -> str:
    if os.environ.get("MOTCUA_ALERTMANAGER_URL"):
        return os.environ["MOTCUA_ALERTMANAGER_URL"].rstrip("/")
    mon = next((h for h in registry.dx_hosts if h.name.endswith("mon01")), None)
    if mon is None:
        raise SilenceError("no monitoring host (mon01) in the registry: give --alertmanager URL")
    return f"http://{mon.lab_address if lab else mon.address}:{ALERTMANAGER_PORT}"


class Alertmanager:
    def __init__(self, url: str, timeout: float = 10.0):
        if not url.startswith(("http://", "https://")):
            raise SilenceError(f"--alertmanager: {url!r} is not an http(s) URL")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: object | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310 - http(s) only (__init__)
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            raise SilenceError(f"{self.url}: {method} {path}: HTTP {exc.code}: {exc.read().decode()[:300]}") from None
        except OSError as exc:
            raise SilenceError(f"{self.url}: {method} {path}: {exc}") from None
        return json.loads(text) if text.strip() else None

    def create(self, match: list[dict], window: Window, author: str, comment: str) -> str:
        body = {
            "matchers": match,
            "startsAt": window.start.astimezone(dt.UTC).isoformat(),
            "endsAt": window.end.astimezone(dt.UTC).isoformat(),
            "createdBy": author,
            "comment": comment,
        }
        return str(self._call("POST", "/api/v2/silences", body)["silenceID"])  # type: ignore[index]

    def silences(self) -> list[dict]:
        return list(self._call("GET", "/api/v2/silences") or [])  # type: ignore[arg-type]

    def expire(self, silence_id: str) -> None:
        if not re.fullmatch(r"[0-9a-fA-F-]{8,64}", silence_id):
            raise SilenceError(f"{silence_id!r} is not a silence ID")
        self._call("DELETE", f"/api/v2/silence/{silence_id}")


def silence(am: Alertmanager, match: list[dict], window: Window, author: str, comment: str) -> str:
    """Create one silence; who and why are required."""
    if not author.strip():
        raise SilenceError("--author: who sets the silence is required")
    if not comment.strip():
        raise SilenceError("--comment: why (the work, the ticket) is required")
    return am.create(match, window, author.strip(), comment.strip())


def _describe(s: dict) -> str:
    parts = [f"{m['name']}{'=~' if m.get('isRegex') else '='}{m['value']}" for m in s.get("matchers", [])]
    return ", ".join(parts)


def _setup(args: argparse.Namespace) -> tuple[Registry, Alertmanager]:
    source = read_inventory_source(Path(args.inventory))
    registry = source.load()
    return registry, Alertmanager(args.alertmanager or default_url(registry, source.lab))


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def cmd_add(args: argparse.Namespace) -> int:
    registry, am = _setup(args)
    now = dt.datetime.now(TZ) if args.now is None else parse_time(args.now, "--now")
    match = matchers(registry, _split(args.hosts), _split(args.sites))
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
            "--alertmanager", help="Alertmanager URL (default: $MOTCUA_ALERTMANAGER_URL, else mon01's :9093)"
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
