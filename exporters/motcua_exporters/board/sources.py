"""The board's live data: one read of the Prometheus and Alertmanager pair per refresh, shared by every viewer.

A read is a constant number of calls whatever the number of sites and viewers (:data:`QUERIES` to Prometheus,
two to Alertmanager). Each side is asked of the pair's members in order and the first that answers is used; the
snapshot says which one, and when neither answers, it keeps the last data it had, marked stale with its time:
the pages say so and never show it as current.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from ..notify.channels import Http, Outcome, Reply
from .state import Alert, Silence, parse_alerts, parse_silences

log = logging.getLogger("board")

# Prometheus instant queries of one read: name -> PromQL.
QUERIES = {
    "dossier_up": 'motcua_dossier_probe_success{job="dossier"}',
    "dossier_seconds": 'motcua_dossier_probe_duration_seconds{job="dossier"}',
    "dossier_cert_days": '(motcua_dossier_probe_tls_not_after_timestamp_seconds{job="dossier"} - time()) / 86400',
    "readiness": "motcua_readiness_site_verdict == 1",
    # The dossier indicators per site (Decision 766, docs/kpis.md): both hosts' exporters read the same records.
    "dossiers_received": 'max by (site) (motcua_dossiers_received{job="dossier", window="today"})',
    "dossiers_finished": 'max by (site, verdict) (motcua_dossiers_finished{job="dossier", window="today"})',
    "dossiers_open": 'max by (site, state) (motcua_dossiers_open{job="dossier"})',
    # Each counter's pulled configuration (docs/pull.md): its last pull, the commit it runs, and whether that is
    # behind its ring's at the pull source (the recording rule of motcua.monitoring.rules.PULL_BEHIND).
    "pull_ok": 'max by (instance) (motcua_pull_last_run_success{job="node"})',
    "pull_commit": 'max by (instance, ring, commit) (motcua_pull_applied_commit_info{job="node"})',
    "pull_behind": "max by (instance) (instance:motcua_pull_commit:behind)",
}
DOSSIER_QUERIES = ("dossiers_received", "dossiers_finished", "dossiers_open")


@dataclass
class Side:
    """What one side (Prometheus or Alertmanager) gave at the last read."""

    source: str = ""  # the member that answered
    taken: float = 0.0  # when (Unix time); 0: never
    error: str = ""  # why the last read failed ("" when it worked)
    tried: int = 0  # calls made at the last read

    @property
    def ok(self) -> bool:
        return not self.error and self.taken > 0


@dataclass
class Snapshot:
    alerts: list[Alert] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)
    system: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)
    readiness: dict[str, str] = field(default_factory=dict)  # site -> green | amber | red
    # site -> received, on_time, late, unjudged (finished today), not_due, overdue, paused (open now)
    dossiers: dict[str, dict[str, float]] = field(default_factory=dict)
    # counter -> its pulled configuration: commit, ring, ok (its last pull succeeded), behind (its ring moved on)
    pull: dict[str, dict[str, Any]] = field(default_factory=dict)
    alertmanager: Side = field(default_factory=Side)
    prometheus: Side = field(default_factory=Side)
    read_at: float = 0.0


class Pair:
    """Members of one side of the monitoring pair (base URLs, each ending in /), asked in order."""

    def __init__(self, urls: list[str], http: Http):
        self.urls = [u if u.endswith("/") else u + "/" for u in urls]
        self.http = http

    def get(self, path: str, member: str | None = None) -> tuple[Any, str, list[str], int]:
        """(the parsed reply, the member that answered, the errors of those that did not, calls made).
        ``member`` is tried first (the one that answered the read's first call, so one read is one member's)."""
        reply, url, errors, calls = self._first("GET", path, {"Accept": "application/json"}, None, member, True)
        return (reply.body if reply is not None else None), url, errors, calls

    def post(self, path: str, body: bytes) -> tuple[Reply | None, list[str]]:
        """The first member's answer, whatever its status (the caller reads a refusal), and the errors of
        those that could not be reached."""
        reply, _url, errors, _calls = self._first("POST", path, {"Content-Type": "application/json"}, body)
        return reply, errors

    def _first(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
        member: str | None = None,
        success_only: bool = False,
    ) -> tuple[Reply | None, str, list[str], int]:
        """The members in order (``member`` first) until one answers (with a 2xx status if
        ``success_only``): (its reply or None, its URL, the others' errors, calls made)."""
        order = sorted(self.urls, key=lambda u: u != member) if member else self.urls
        errors, calls = [], 0
        for url in order:
            calls += 1
            reply = self.http.call(method, url + path, headers, body)
            if isinstance(reply, Outcome):
                errors.append(reply.detail)
                continue
            if success_only and not 200 <= reply.status < 300:
                errors.append(f"{urllib.parse.urlsplit(url).netloc}: HTTP {reply.status}")
                continue
            return reply, url, errors, calls
        return None, "", errors, calls


def _vector(body: Any) -> list[tuple[dict[str, str], float]] | None:
    if not isinstance(body, dict) or body.get("status") != "success":
        return None
    data = body.get("data") or {}
    if data.get("resultType") != "vector":
        return None
    out = []
    for item in data.get("result") or []:
        try:
            out.append(({str(k): str(v) for k, v in item["metric"].items()}, float(item["value"][1])))
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    return out


class Feed:
    """Reads the pair every ``interval`` seconds in a thread of its own; pages take :meth:`current`."""

    def __init__(self, prometheus: Pair, alertmanager: Pair, interval: float):
        self.prometheus = prometheus
        self.alertmanager = alertmanager
        self.interval = interval
        self._snapshot = Snapshot()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def read(self, now: float | None = None) -> Snapshot:
        """One read of both sides; a side that fails keeps its last data, marked with the error."""
        now = time.time() if now is None else now
        last = self.current()
        snap = Snapshot(last.alerts, last.silences, last.system, last.readiness, last.dossiers, last.pull, read_at=now)
        am = Side(last.alertmanager.source, last.alertmanager.taken)
        body, member, errors, calls = self.alertmanager.get("api/v2/alerts")
        am.tried = calls
        if body is not None and isinstance(body, list):
            silences, member2, errors2, calls2 = self.alertmanager.get("api/v2/silences", member)
            am.tried += calls2
            if isinstance(silences, list):
                snap.alerts = parse_alerts(body)
                snap.silences = parse_silences(silences, dt.datetime.fromtimestamp(now, dt.UTC))
                am.source, am.taken = member2 or member, now
            else:
                am.error = "; ".join(errors2) or "silences: not a list"
        else:
            am.error = "; ".join(errors) or "alerts: not a list"
        snap.alertmanager = am
        prom = Side(last.prometheus.source, last.prometheus.taken)
        results: dict[str, list] = {}
        member = None
        for name, query in QUERIES.items():
            body, answered, errs, calls = self.prometheus.get(
                "api/v1/query?" + urllib.parse.urlencode({"query": query}), member
            )
            prom.tried += calls
            vector = _vector(body)
            if vector is None:
                prom.error = "; ".join(errs) or f"{name}: not a vector"
                break
            member = answered
            results[name] = vector
        if not prom.error:
            snap.system = {k: v for k, v in results.items() if k.startswith("dossier_")}
            snap.readiness = {m.get("site", ""): m.get("verdict", "") for m, _ in results["readiness"]}
            dossiers: dict[str, dict[str, float]] = {}
            for name in DOSSIER_QUERIES:
                for labels, value in results[name]:
                    key = labels.get("verdict") or labels.get("state") or "received"
                    dossiers.setdefault(labels.get("site", ""), {})[key] = value
            snap.dossiers = dossiers
            pull: dict[str, dict[str, Any]] = {}
            for labels, value in results["pull_ok"]:
                pull.setdefault(labels.get("instance", ""), {})["ok"] = value == 1
            for labels, _ in results["pull_commit"]:
                pull.setdefault(labels.get("instance", ""), {}).update(commit=labels.get("commit", ""),
                                                                       ring=labels.get("ring", ""))  # fmt: skip
            for labels, _ in results["pull_behind"]:
                pull.setdefault(labels.get("instance", ""), {})["behind"] = True
            snap.pull = pull
            prom.source, prom.taken = member or "", now
        snap.prometheus = prom
        for side, name in ((am, "alertmanager"), (prom, "prometheus")):
            if side.error:
                log.warning("board: %s: no member answered: %s", name, side.error)
        with self._lock:
            self._snapshot = snap
        return snap

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="board-feed", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.read()
            except Exception:
                log.exception("board: a read of the pair failed")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
