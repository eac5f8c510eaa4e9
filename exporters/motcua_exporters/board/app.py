"""motcua-board: the duty board's web service (docs/board.md).

Config (``/etc/motcua/board.yml``, written by the monitoring_board role)::

    data_file: /etc/motcua/board/data.yml        # sites, devices, shifts (rendered from the registry); or the same
                                                 # inline as data: (the controller's check before the host changes)
    runbook_dir: /usr/share/motcua/runbooks      # docs/runbooks/*.md, served as HTML
    prometheus: [https://mon01:9090/, https://mon02:9090/]
    alertmanager: [https://mon01:9093/, https://mon02:9093/]
    plane: {ca_file: /etc/motcua/web/ca.pem, username: monitoring, password_file: /etc/motcua/board/monitoring.password}
    refresh: 15s                                 # one read of the pair; the pages refresh as often
    timeout: 5s                                  # each call to a member
    viewers: [viewer]                            # basic-auth users who may look
    silencers: [operator]                        # ... and who may also silence (they see everything)

Who a user is comes from the server's basic auth (``--web.config.file``, the plane's scheme): a user in neither
list, or a request without credentials, is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import importlib.resources
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ..core.config import load_yaml
from ..core.silences import MAX_WINDOW, matcher, silence_body
from ..core.web import Request, Response
from ..notify.channels import Http
from ..notify.config import PlaneSettings, read_plane
from . import state as st
from .data import BoardData, load_data, parse_data
from .runbooks import Runbooks
from .sources import Feed, Pair, Snapshot

HTML = "text/html; charset=utf-8"
# The go-live phases a tile marks (steady, the usual one, is left unmarked).
PHASE_MARKS = {"pre-production": "P", "cut-over": "C", "hypercare": "H"}
DURATIONS = {"30m": 30, "1h": 60, "2h": 120, "4h": 240, "8h": 480, "1d": 1440, "3d": 4320}


@dataclass
class BoardConfig:
    file: Path
    data: BoardData
    runbooks: Runbooks
    prometheus: list[str]
    alertmanager: list[str]
    plane: PlaneSettings | None
    refresh: float
    timeout: float
    viewers: frozenset[str]
    silencers: frozenset[str]


def _urls(root, key: str) -> list[str]:
    urls = root.list(key)
    if not urls or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls):
        raise root.error(key, "must be a list of http(s) URLs (the monitoring pair's members)")
    return urls


def load_config(path: str | Path) -> BoardConfig:
    root = load_yaml(path)
    if root.has("data") == root.has("data_file"):
        raise root.error("data_file", "give data_file (the data file's path) or data (its content), not both")
    data = parse_data(root.section("data")) if root.has("data") else load_data(root.path("data_file", must_exist=True))
    runbook_dir = root.path("runbook_dir", None, must_exist=True)
    config = BoardConfig(
        Path(path),
        data,
        Runbooks(runbook_dir),
        _urls(root, "prometheus"),
        _urls(root, "alertmanager"),
        read_plane(root),
        root.duration("refresh", 15.0, minimum=2.0),
        root.duration("timeout", 5.0, minimum=0.5),
        frozenset(map(str, root.list("viewers", []))),
        frozenset(map(str, root.list("silencers", []))),
    )
    if not config.viewers and not config.silencers:
        raise root.error("viewers", "no viewer and no silencer: nobody could open the board")
    root.done()
    return config


def _templates() -> jinja2.Environment:
    folder = importlib.resources.files(__package__) / "templates"

    def load(name: str) -> str | None:
        item = folder / name
        return item.read_text(encoding="utf-8") if item.is_file() else None

    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env


def _local(when: dt.datetime | None, zone) -> str:
    return when.astimezone(zone).strftime("%d/%m %H:%M") if when else ""


class Board:
    """The service: a feed of the pair and the pages. Runs under motcua_exporters.core.runner like the exporters."""

    def __init__(self, config: BoardConfig, now=None):
        self.config = config
        self.env = _templates()
        self.env.filters["local"] = lambda when: _local(when, self.config.data.zone)
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.secret = os.urandom(32)  # the forms' anti-forgery tokens; new at each start
        self.feed = self._feed(config)

    @staticmethod
    def _feed(config: BoardConfig) -> Feed:
        plane = config.plane
        http = Http(
            config.timeout, plane.ca_file if plane else None, (plane.username, plane.password) if plane else None
        )
        return Feed(Pair(config.prometheus, http), Pair(config.alertmanager, http), config.refresh)

    @classmethod
    def from_file(cls, path: Path) -> Board:
        return cls(load_config(path))

    def start(self) -> None:
        self.feed.start()

    def stop(self) -> None:
        self.feed.stop()

    def reload(self, path: Path) -> None:
        config = load_config(path)
        self.feed.stop()
        feed = self._feed(config)
        feed._snapshot = self.feed.current()
        self.config, self.feed = config, feed
        feed.start()

    def routes(self):
        return {
            "/": self.city,
            "/alerts": self.alerts,
            "/duty": self.duty,
            "/site/": self.site,
            "/runbook/": self.runbook,
        }

    def post_routes(self):
        return {"/silence": self.silence}

    # ---------------------------------------------------------------- helpers
    def _role(self, request: Request) -> str:
        if request.user and request.user in self.config.silencers:
            return "silencer"
        if request.user and request.user in self.config.viewers:
            return "viewer"
        return ""

    def _refused(self) -> Response:
        return self._error(403, "Tài khoản này không được xem bảng trực", "This account may not open the duty board")

    def _error(self, status: int, vi: str, en: str) -> Response:
        page = self.env.get_template("error.html").render(
            **{**self._common(), "refresh": 0}, status=status, vi=vi, en=en
        )
        return Response(status, page, HTML)

    def token(self, user: str) -> str:
        return hmac.new(self.secret, user.encode(), hashlib.sha256).hexdigest()

    def _common(self, request: Request | None = None, snap: Snapshot | None = None) -> dict:
        now = self.now()
        snap = snap or self.feed.current()
        return {
            "now": now,
            "snap": snap,
            "user": request.user if request else "",
            "refresh": int(self.config.refresh),
            "role": self._role(request) if request else "",
            "zone": self.config.data.zone,
            "stale_am": not snap.alertmanager.ok,
            "stale_prom": not snap.prometheus.ok,
            "host": lambda url: urllib.parse.urlsplit(url).netloc,
            "at": lambda ts: (
                dt.datetime.fromtimestamp(ts, dt.UTC).astimezone(self.config.data.zone).strftime("%d/%m %H:%M:%S")
                if ts
                else "chưa bao giờ / never"
            ),
        }

    def _page(self, request: Request, template: str, **values) -> Response:
        if not self._role(request):
            return self._refused()
        partial = request.query.get("partial") == "1"
        body = self.env.get_template(template).render(
            partial=partial, **self._common(request, values.pop("snap", None)), **values
        )
        return Response(200, body, HTML, {"Cache-Control": "no-store"})

    def system(self, snap: Snapshot) -> dict:
        """The dossier system's state across the top: up, latency, days left on its certificate."""
        up = snap.system.get("dossier_up", [])
        seconds = snap.system.get("dossier_seconds", [])
        days = snap.system.get("dossier_cert_days", [])
        return {
            "known": bool(up),
            "up": bool(up) and all(v == 1 for _, v in up),
            "seconds": max((v for _, v in seconds), default=None),
            "cert_days": min((v for _, v in days), default=None),
            "alerts": [a for a in snap.alerts if a.labels.get("scope") == "system" and a.state == st.ACTIVE and a.rank],
        }

    # ---------------------------------------------------------------- pages
    def city(self, request: Request) -> Response:
        snap = self.feed.current()
        states = st.site_states(self.config.data.sites, snap.alerts, snap.silences)
        regions = [(rid, name, [states[s.code] for s in sites]) for rid, name, sites in self.config.data.by_region()]
        return self._page(
            request,
            "city.html",
            snap=snap,
            regions=regions,
            counts=st.counts(states),
            system=self.system(snap),
            readiness=snap.readiness,
            level_text=st.LEVEL_TEXT,
            phase_marks=PHASE_MARKS,
        )

    def site(self, request: Request) -> Response:
        if not self._role(request):
            return self._refused()
        code = urllib.parse.unquote(request.path[len("/site/") :]).strip("/")
        site = self.config.data.sites.get(code)
        if site is None:
            return self._error(
                404, f"Không có đơn vị mã “{code}” trong danh sách", f"There is no site with code “{code}”"
            )
        snap = self.feed.current()
        state = st.site_states({code: site}, snap.alerts, snap.silences)[code]
        now = self.now().astimezone(self.config.data.zone)
        on_now, on_next = self.config.data.on_duty(code, now)
        return self._page(
            request,
            "site.html",
            snap=snap,
            site=site,
            state=state,
            devices=st.device_states(state),
            on_now=on_now,
            on_next=on_next,
            lead=self.config.data.lead,
            readiness=snap.readiness.get(code, ""),
            dossiers=snap.dossiers.get(code, {}) if snap.prometheus.ok else {},
            pull=snap.pull if snap.prometheus.ok else {},
            level_text=st.LEVEL_TEXT,
            token=self.token(request.user),
            durations=DURATIONS,
        )

    def alerts(self, request: Request) -> Response:
        snap = self.feed.current()
        region, team, severity = (request.query.get(k, "") for k in ("region", "team", "severity"))
        sites = self.config.data.sites
        shown = []
        for alert in snap.alerts:
            if alert.state != st.ACTIVE or not alert.rank:
                continue
            site = sites.get(alert.site)
            if region and (site is None or site.region != region):
                continue
            if team and (site is None or site.team != team):
                continue
            if severity and alert.severity != severity:
                continue
            shown.append((alert, site))
        teams = sorted({s.team for s in sites.values()})
        return self._page(
            request,
            "alerts.html",
            snap=snap,
            shown=shown,
            regions=self.config.data.regions,
            teams=teams,
            region=region,
            team=team,
            severity=severity,
            silenced=[a for a in snap.alerts if a.state == st.SILENCED],
        )

    def duty(self, request: Request) -> Response:
        now = self.now().astimezone(self.config.data.zone)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        days = []
        for offset in (0, 1):
            start = today + dt.timedelta(days=offset)
            days.append((start, self.config.data.spans_between(start, start + dt.timedelta(days=1))))
        return self._page(request, "duty.html", days=days, local_now=now, sites=self.config.data.sites)

    def runbook(self, request: Request) -> Response:
        if not self._role(request):
            return self._refused()
        slug = request.path[len("/runbook/") :].strip("/")
        page = self.config.runbooks.get(slug)
        if page is None:
            return self._error(404, f"Không có hướng dẫn xử lý “{slug}”", f"There is no runbook “{slug}”")
        title, body = page
        return self._page(request, "runbook.html", title=title, body=jinja2.utils.markupsafe.Markup(body))

    # ---------------------------------------------------------------- acknowledge = silence
    def silence(self, request: Request) -> Response:
        """A silencer silences one alert's host (or one site) for a chosen time, with a required comment; the
        pair's cluster shares it. The author is the logged-in user."""
        if self._role(request) != "silencer":
            return self._error(
                403, "Tài khoản này chỉ được xem, không được tắt cảnh báo", "This account may look but not silence"
            )
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(request.body.decode("utf-8", "replace")).items()}
        if not hmac.compare_digest(form.get("token", ""), self.token(request.user)):
            return self._error(
                403,
                "Biểu mẫu đã hết hạn: mở lại trang rồi thử lại",
                "The form has expired: open the page again and retry",
            )
        code = form.get("site", "")
        site = self.config.data.sites.get(code)
        if site is None:
            return self._error(404, f"Không có đơn vị mã “{code}”", f"There is no site with code “{code}”")
        host = form.get("host", "")
        if host and host not in {d.name for d in site.devices}:
            return self._error(400, f"“{host}” không thuộc đơn vị {code}", f"“{host}” is not a device of site {code}")
        comment = form.get("comment", "").strip()
        if not comment:
            return self._error(400, "Cần ghi lý do (bắt buộc)", "A comment (why) is required")
        now = self.now()
        try:
            if form.get("until"):
                end = dt.datetime.fromisoformat(form["until"])
                end = end.replace(tzinfo=self.config.data.zone) if end.tzinfo is None else end
            else:
                end = now + dt.timedelta(minutes=DURATIONS[form.get("for", "")])
        except (KeyError, ValueError):
            return self._error(400, "Thời hạn không hợp lệ", "The duration or end time is not valid")
        if end <= now:
            return self._error(400, "Thời điểm kết thúc đã qua", "The end time is in the past")
        if end - now > MAX_WINDOW:
            return self._error(400, "Tối đa 14 ngày", "At most 14 days (the launch window)")
        match = matcher("instance", [host]) if host else matcher("site", [code])
        body = silence_body(match, now, end, request.user, f"{comment} [duty board]")
        reply, errors = self.feed.alertmanager.post("api/v2/silences", json.dumps(body).encode())
        if reply is None or not 200 <= reply.status < 300:
            detail = "; ".join(errors) or (f"HTTP {reply.status}: {str(reply.body)[:200]}" if reply else "")
            return self._error(502, f"Alertmanager không nhận: {detail}", f"Alertmanager refused it: {detail}")
        self.feed.read()  # the page after the redirect shows the new silence
        return Response(303, "", HTML, {"Location": f"/site/{urllib.parse.quote(code)}?silenced=1"})
