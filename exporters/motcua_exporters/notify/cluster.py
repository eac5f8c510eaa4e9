"""The monitoring pair, seen from the bridge: peers that must not page twice, and the dead man's switch.

**No double delivery.** Each monitoring host runs Alertmanager and the bridge; the two
Alertmanagers form a cluster, so normally only one of them sends a group's notification
(to its own bridge). When their gossip lags, both may send. The bridges settle it the
way Alertmanager's cluster does: by place. The bridges' names, sorted, give each a place;
the first delivers at once, each later one waits ``place × wait`` and then asks the
others (``GET /seen?key=``) whether they hold the same notification. What a peer holds
decides: a peer that delivered it (or could not) settles it for both; a peer at an
earlier place that has it queued or is sending it settles it too. An unreachable peer
settles nothing: when in doubt the bridge delivers (a duplicate message is better than
none).

**Dead man's switch.** Every Prometheus fires ``Watchdog`` all the time, labelled with
its own host (``origin``); Alertmanager sends it to every bridge's ``POST /heartbeat``
at a short repeat interval. A peer whose Watchdog has not arrived for ``timeout``, or
arrives resolved (its Prometheus stopped sending it), is silent: the bridge raises
``MonitoringPeerSilent`` in its own host's Alertmanager, which routes it by the duty
roster (critical, city-wide: an SMS to the lead first), and resolves it when the
Watchdog comes back. This host's own Watchdog is forwarded to an external heartbeat
service when one is configured, so that something outside the DX Centre notices when
both hosts are gone.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from datetime import UTC, datetime

from prometheus_client import Gauge

from .channels import Http, Outcome, Reply
from .config import ClusterSettings, HeartbeatSettings

log = logging.getLogger("notify.cluster")

WATCHDOG = "Watchdog"
PEER_SILENT = "MonitoringPeerSilent"
SETTLING = ("delivered", "dead")  # a peer's state that settles a notification whatever its place
HOLDING = ("waiting", "delivering")  # settles it only when the peer's place is earlier

HEARTBEAT_SEEN = Gauge(
    "motcua_notify_heartbeat_last_timestamp_seconds",
    "When a monitoring host's Watchdog last arrived (firing), by origin.",
    ["origin"],
)
PEER_SILENT_GAUGE = Gauge(
    "motcua_notify_peer_silent",
    "1 while a peer monitoring host's Watchdog is missing (the dead man's switch).",
    ["peer"],
)
EXTERNAL_PINGS = Gauge(
    "motcua_notify_external_heartbeats", "Pings to the external heartbeat service since start, by result.", ["result"]
)
PEER_CHECKS = Gauge(
    "motcua_notify_peer_checks", "Notifications checked with the peer bridges since start, by outcome.", ["outcome"]
)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Peers:
    """Asks the peer bridges whether one of them has a notification in hand."""

    def __init__(self, settings: ClusterSettings, http: Http):
        self.settings = settings
        self.http = http
        self.outcomes = {"delivered-by-peer": 0, "deliver": 0, "peer-unreachable": 0}

    @property
    def delay(self) -> float:
        return self.settings.position * self.settings.wait

    def settled_by(self, key: str) -> str | None:
        """The peer that has this notification in hand, or None: this bridge delivers it."""
        mine = self.settings.position
        for name, base in sorted(self.settings.peers.items()):
            reply = self.http.call("GET", f"{base}seen?key={urllib.parse.quote(key)}", {}, None)
            if isinstance(reply, Outcome) or not isinstance(reply, Reply) or reply.status != 200:
                self.outcomes["peer-unreachable"] += 1
                detail = reply.detail if isinstance(reply, Outcome) else f"HTTP {getattr(reply, 'status', '?')}"
                log.warning("peer %s not asked about %s (%s): delivering", name, key[:16], detail)
                continue
            body = reply.body if isinstance(reply.body, dict) else {}
            state, place = str(body.get("state", "none")), body.get("position")
            earlier = isinstance(place, int) and place < mine
            if state in SETTLING or (state in HOLDING and earlier):
                self.outcomes["delivered-by-peer"] += 1
                return name
        self.outcomes["deliver"] += 1
        return None

    def export(self) -> None:
        for outcome, value in self.outcomes.items():
            PEER_CHECKS.labels(outcome).set(value)


class Heartbeats:
    """The dead man's switch: the peers' Watchdogs watched, MonitoringPeerSilent raised and resolved."""

    RESEND = 30.0  # a raised alert is sent again this often (Alertmanager resolves it after endsAt)

    def __init__(
        self, cluster: ClusterSettings, settings: HeartbeatSettings, http: Http, public_url: str,
        external_http: Http | None = None,
    ):  # fmt: skip
        self.cluster = cluster
        self.settings = settings
        self.http = http  # this host's Alertmanager (the monitoring plane)
        self.external_http = external_http or http  # the external heartbeat service (a public provider)
        self.public_url = public_url
        self.lock = threading.Lock()
        started = time.time()
        # A peer is given one timeout from the bridge's start before it can be silent.
        self.seen: dict[str, float] = {peer: started for peer in cluster.peers}
        self.resolved: dict[str, bool] = dict.fromkeys(cluster.peers, False)
        self.silent: dict[str, float] = {}  # peer -> when it went silent
        self.sent: dict[str, float] = {}  # peer -> when MonitoringPeerSilent was last sent
        self.pings = {"ok": 0, "failed": 0}
        for peer in cluster.peers:
            PEER_SILENT_GAUGE.labels(peer).set(0)

    def receive(self, payload: dict) -> int:
        """Alertmanager's webhook of the Watchdog route: how many Watchdogs it carried."""
        count, own = 0, False
        now = time.time()
        for alert in payload.get("alerts") or []:
            labels = alert.get("labels") or {} if isinstance(alert, dict) else {}
            if labels.get("alertname") != WATCHDOG or not labels.get("origin"):
                continue
            count += 1
            origin, status = str(labels["origin"]), str(alert.get("status", payload.get("status", "")))
            if origin == self.cluster.name:
                own = own or status == "firing"
                if status == "firing":
                    HEARTBEAT_SEEN.labels(origin).set(now)
                continue
            if origin not in self.seen:
                log.warning("Watchdog from %s, which is not a peer of %s: ignored", origin, self.cluster.name)
                continue
            with self.lock:
                if status == "firing":
                    self.seen[origin] = now
                    self.resolved[origin] = False
                    HEARTBEAT_SEEN.labels(origin).set(now)
                else:  # resolved: its Prometheus stopped sending it
                    self.resolved[origin] = True
        if own and self.settings.external_url:
            threading.Thread(target=self.ping, name="heartbeat-ping", daemon=True).start()
        if count:
            self.check()
        return count

    def ping(self) -> None:
        """This host's Watchdog arrived: tell the external heartbeat service (it pages when pings stop)."""
        body = None
        if self.settings.external_method == "POST":
            body = json.dumps({"host": self.cluster.name, "time": _iso(time.time())}).encode()
        reply = self.external_http.call(self.settings.external_method, self.settings.external_url,
                               {"Content-Type": "application/json"} if body else {}, body)  # fmt: skip
        ok = isinstance(reply, Reply) and 200 <= reply.status < 300
        with self.lock:
            self.pings["ok" if ok else "failed"] += 1
            for result, value in self.pings.items():
                EXTERNAL_PINGS.labels(result).set(value)
        if not ok:
            log.warning("external heartbeat %s not taken: %s", self.settings.external_url,
                        reply.detail if isinstance(reply, Outcome) else f"HTTP {reply.status}")  # fmt: skip

    def check(self, now: float | None = None) -> None:
        """Raise, re-send or resolve MonitoringPeerSilent for each peer (called every few seconds)."""
        now = time.time() if now is None else now
        with self.lock:
            todo = []
            for peer, seen in self.seen.items():
                silent = self.resolved[peer] or now - seen > self.settings.timeout
                if silent and peer not in self.silent:
                    self.silent[peer] = now
                    log.error("peer %s silent: its Watchdog last arrived %.0f s ago", peer, now - seen)
                if silent and now - self.sent.get(peer, 0.0) >= self.RESEND:
                    self.sent[peer] = now
                    todo.append((peer, seen, True))
                elif not silent and peer in self.silent:
                    log.warning("peer %s back: its Watchdog arrives again", peer)
                    del self.silent[peer]
                    self.sent.pop(peer, None)
                    todo.append((peer, seen, False))
                PEER_SILENT_GAUGE.labels(peer).set(1 if silent else 0)
        for peer, seen, firing in todo:
            self.raise_alert(peer, seen, firing, now)

    def raise_alert(self, peer: str, seen: float, firing: bool, now: float) -> bool:
        since = self.silent.get(peer, now)
        me = self.cluster.name
        alert = {
            "labels": {
                "alertname": PEER_SILENT,
                "severity": "critical",
                "scope": "system",
                "role": "monitoring",
                "peer": peer,
                "reporter": self.cluster.name,
            },
            "annotations": {
                "summary_vi": f"Mất tín hiệu từ máy giám sát {peer}: không còn dự phòng nếu {me} hỏng",
                "summary_en": f"Monitoring host {peer} is silent: nothing backs up {me} if it fails",
                "summary": f"Mất tín hiệu từ máy giám sát {peer} / Monitoring host {peer} is silent",
                "last_heartbeat": _iso(seen),
                "runbook_url": self.settings.runbook_url,
            },
            "startsAt": _iso(since),
            # Alertmanager resolves it by itself if this bridge stops re-sending it.
            "endsAt": _iso(now + 4 * self.RESEND) if firing else _iso(now),
            "generatorURL": f"{self.public_url}metrics",
        }
        url = f"{self.settings.alertmanager}api/v2/alerts"
        body = json.dumps([alert], ensure_ascii=False).encode()
        reply = self.http.call("POST", url, {"Content-Type": "application/json"}, body)
        if isinstance(reply, Reply) and 200 <= reply.status < 300:
            log.info("%s %s for %s in %s", PEER_SILENT, "raised" if firing else "resolved", peer, url)
            return True
        detail = reply.detail if isinstance(reply, Outcome) else f"HTTP {reply.status} {str(reply.body)[:200]}"
        log.error("%s for %s not taken by %s: %s (again in %.0f s)", PEER_SILENT, peer, url, detail, self.RESEND)
        if not firing:  # the resolution is sent again until Alertmanager takes it
            with self.lock:
                self.silent.setdefault(peer, since)
        return False
