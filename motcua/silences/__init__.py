"""Alertmanager silences scoped to exact hosts or sites for an exact window (``motcua silence``).

For planned work during the launch window (a counter moved, a switch replaced):
the people on duty silence exactly what will be down, for exactly as long, with
who did it and why, through Alertmanager's API (v2). Everything is checked
against the registry before the API is called; a silence can be listed and
expired early when the work is done.

Hosts are matched on the ``instance`` label and sites on the ``site`` label,
which every alert of motcua's rules carries (motcua.monitoring.rules).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

from motcua_exporters.core.silences import MAX_WINDOW, matcher, silence_body

from ..errors import ToolError
from ..registry import Registry
from ..times import local, window_problem
from ..webauth import Credentials, open_url

ALERTMANAGER_PORT = 9093


class SilenceError(ToolError):
    """Bad input, or an Alertmanager that refused."""


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
    return matcher(label, values)


def default_url(registry: Registry, lab: bool) -> str:
    """$MOTCUA_ALERTMANAGER_URL, else every monitoring host's Alertmanager, comma-separated (the pair's
    cluster shares silences: the first that answers takes it). HTTPS: the plane is locked (motcua_web)."""
    if os.environ.get("MOTCUA_ALERTMANAGER_URL"):
        return os.environ["MOTCUA_ALERTMANAGER_URL"].rstrip("/")
    hosts = [h for h in registry.dx_hosts if h.role == "monitoring"]
    if not hosts:
        raise SilenceError("no monitoring host in the registry: give --alertmanager URL")
    return ",".join(f"https://{h.lab_address if lab else h.address}:{ALERTMANAGER_PORT}" for h in hosts)


class Alertmanager:
    """One Alertmanager, or the monitoring pair's (URLs comma-separated): a call goes to the first
    that answers. The cluster gossips silences, so any member holds what another took."""

    def __init__(self, url: str, timeout: float = 10.0, credentials: Credentials | None = None):
        urls = [u.strip().rstrip("/") for u in url.split(",") if u.strip()]
        for one in urls or [url]:
            if not one.startswith(("http://", "https://")):
                raise SilenceError(f"--alertmanager: {one!r} is not an http(s) URL")
        self.urls = urls
        self.url = urls[0]
        self.timeout = timeout
        self.credentials = credentials

    def _call(self, method: str, path: str, body: object | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        unreachable = []
        for url in self.urls:
            request = urllib.request.Request(url + path, data=data, method=method, headers=headers)  # noqa: S310
            try:
                with open_url(request, self.credentials, self.timeout) as resp:
                    text = resp.read().decode()
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    raise SilenceError(
                        f"{url}: {method} {path}: HTTP 401: the Alertmanager asks for credentials "
                        + ("that were refused" if self.credentials else "and none were given")
                        + " (MOTCUA_WEB_USER, MOTCUA_WEB_PASSWORD_FILE, MOTCUA_WEB_CA_FILE; docs/monitoring.md)"
                    ) from None
                raise SilenceError(f"{url}: {method} {path}: HTTP {exc.code}: {exc.read().decode()[:300]}") from None
            except OSError as exc:
                unreachable.append(f"{url}: {method} {path}: {exc}")
                continue
            self.url = url
            return json.loads(text) if text.strip() else None
        raise SilenceError("; ".join(unreachable))

    def create(self, match: list[dict], window: Window, author: str, comment: str) -> str:
        try:
            body = silence_body(match, window.start, window.end, author, comment)
        except ValueError as exc:
            raise SilenceError(f"--{exc}") from None
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
