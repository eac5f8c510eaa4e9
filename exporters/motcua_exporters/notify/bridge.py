"""motcua-notify: Alertmanager's webhooks delivered by Zalo, ZNS and SMS.

``POST /alertmanager`` takes Alertmanager's webhook (version 4). The receiver
names a person of the duty roster; the notification is queued durably (SQLite)
and answered at once, then workers deliver it on the person's first channel,
retrying transient failures with exponential backoff and moving to the next
channel on a permanent one (or when the retries are spent). What no channel
could deliver is written to ``dead-letters.jsonl``. The same receiver, group,
status and alerts within ``dedupe_window`` is delivered once: Alertmanager's
own retries, and a second Alertmanager's copy, do not page twice.

``GET /m?id=<key>`` is the full text behind a message's link; ``GET /metrics``
the bridge's own metrics (deliveries by channel and result, latency, queue
depth, dead letters, token refreshes).

On a monitoring pair (``cluster``) the bridges do not page twice for one
notification, and ``POST /heartbeat`` takes the Watchdog: a peer host that goes
silent is raised as ``MonitoringPeerSilent`` (:mod:`.cluster`). ``GET /seen?key=``
tells a peer bridge what this one does with a notification.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from ..core.exposition import CONTENT_TYPE
from ..core.runner import self_metrics
from ..core.web import Request, Response
from . import config as config_module
from .channels import (
    DELIVERED,
    PERMANENT,
    Http,
    OaChannel,
    Outcome,
    Rendered,
    SmsChannel,
    ZaloApi,
    ZaloTokens,
    ZnsChannel,
)
from .cluster import Heartbeats, Peers
from .config import NotifyConfig
from .message import Notification, page, sms_text, zalo_text, zns_params
from .store import Job, Store

log = logging.getLogger("notify")

WEBHOOKS = Counter("motcua_notify_webhooks_total", "Alertmanager webhooks received, by result.", ["result"])
DELIVERIES = Counter(
    "motcua_notify_deliveries_total",
    "Delivery attempts by channel and result (delivered, retry, failed: moved on to the next channel).",
    ["channel", "result"],
)
DEAD = Counter("motcua_notify_dead_letters_total", "Notifications no channel could deliver.", ["receiver"])
LATENCY = Histogram(
    "motcua_notify_delivery_latency_seconds",
    "From the webhook's arrival to the provider's acceptance, by channel.",
    ["channel"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
QUEUE = Gauge("motcua_notify_queue_depth", "Deliveries waiting (due or backing off).")
OLDEST = Gauge("motcua_notify_oldest_pending_age_seconds", "Age of the oldest waiting delivery (0 when none).")
REFRESHES = Gauge(
    "motcua_notify_zalo_token_refreshes", "Zalo access-token refreshes since start, by result.", ["result"]
)
LAST_DELIVERY = Gauge(
    "motcua_notify_last_delivery_timestamp_seconds", "When a channel last delivered a message.", ["channel"]
)


class NotifyBridge:
    def __init__(self, config: NotifyConfig):
        self.config = config
        self.store: Store | None = None  # opened by start(): a config check writes nothing
        self.stopping = threading.Event()
        self.wake = threading.Condition()
        self.threads: list[threading.Thread] = []
        self._configure(config)
        for channel in ("zalo", "zns", "sms"):
            for result in ("delivered", "retry", "failed"):
                DELIVERIES.labels(channel, result)
        for result in ("accepted", "duplicate", "refused"):
            WEBHOOKS.labels(result)

    @classmethod
    def from_file(cls, path: Path) -> NotifyBridge:
        return cls(config_module.load(path))

    def _configure(self, config: NotifyConfig) -> None:
        http = Http(config.timeout, config.ca_file)
        channels: dict[str, object] = {}
        self.tokens = None
        if config.zalo:
            self.tokens = ZaloTokens(config.zalo, http, config.state_dir)
            api = ZaloApi(config.zalo, self.tokens, http)
            channels["zalo"] = OaChannel(api)
            if config.zns:
                channels["zns"] = ZnsChannel(api, str(config.zns["api_url"]), str(config.zns["template_id"]))
        if config.sms:
            channels["sms"] = SmsChannel(config.sms, http)
        self.channels = channels
        cluster = config.cluster
        # The peer bridges and this host's Alertmanager: the monitoring plane's CA and credentials.
        plane = config.plane
        plane_http = Http(config.timeout, plane.ca_file, (plane.username, plane.password)) if plane else http
        self.peers = Peers(cluster, plane_http) if cluster and cluster.peers else None
        old = getattr(self, "heartbeats", None)
        if cluster and config.heartbeat:
            if old is not None and old.cluster == cluster:
                old.settings, old.http, old.external_http = config.heartbeat, plane_http, http  # keeps what was seen
            else:
                old = Heartbeats(cluster, config.heartbeat, plane_http, config.public_url, external_http=http)
            self.heartbeats: Heartbeats | None = old
        else:
            self.heartbeats = None
        self.config = config

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        try:
            self.store = Store(self.config.state_dir)
        except (OSError, sqlite3.Error) as exc:
            log.error("cannot open the queue in %s: %s", self.config.state_dir, exc)
            raise SystemExit(1) from None
        for n in range(self.config.workers):
            thread = threading.Thread(target=self._work, name=f"deliver-{n}", daemon=True)
            thread.start()
            self.threads.append(thread)
        thread = threading.Thread(target=self._watch, name="heartbeats", daemon=True)
        thread.start()
        self.threads.append(thread)
        log.info("delivering for %d receivers on %s", len(self.config.recipients), ", ".join(self.channels) or "-")

    def stop(self) -> None:
        self.stopping.set()
        with self.wake:
            self.wake.notify_all()
        for thread in self.threads:
            thread.join(timeout=self.config.timeout + 5)
        if self.store:
            self._store().close()

    def reload(self, path: Path) -> None:
        new = config_module.load(path)  # ConfigError leaves the running config alone
        if new.state_dir != self.config.state_dir:
            raise config_module.ConfigError(path, "state_dir", "cannot change while running (restart the bridge)")
        self._configure(new)

    def _store(self) -> Store:
        if self.store is None:
            raise RuntimeError("the bridge is not started")
        return self.store

    # -- HTTP -------------------------------------------------------------
    def routes(self):
        return {"/metrics": self.metrics, "/m": self.message_page, "/seen": self.seen}

    def post_routes(self):
        return {"/alertmanager": self.webhook, "/heartbeat": self.heartbeat}

    def seen(self, request: Request) -> Response:
        """For a peer bridge: what this bridge does with a notification key, and its place."""
        key = request.query.get("key", "")
        if not key or len(key) > 128:
            return Response(400, "key is required\n")
        cluster = self.config.cluster
        body = {"state": self._store().state_of(key), "position": cluster.position if cluster else 0}
        return Response(200, json.dumps(body) + "\n", "application/json")

    def heartbeat(self, request: Request) -> Response:
        if self.heartbeats is None:
            return Response(404, "no heartbeat is configured on this bridge\n")
        try:
            payload = json.loads(request.body)
            if not isinstance(payload, dict):
                raise ValueError("the body is not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            return Response(400, f"refused: {exc}\n")
        count = self.heartbeats.receive(payload)
        return Response(200, f"{count} watchdog(s)\n")

    def webhook(self, request: Request) -> Response:
        try:
            payload = json.loads(request.body)
            notification = Notification.from_payload(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            WEBHOOKS.labels("refused").inc()
            return Response(400, f"refused: {exc}\n")
        if notification.receiver not in self.config.recipients:
            WEBHOOKS.labels("refused").inc()
            log.error("receiver %r is not in the config's recipients: not delivered", notification.receiver)
            # 4xx: Alertmanager does not retry what can never succeed.
            return Response(422, f"unknown receiver {notification.receiver!r}\n")
        delay = self.peers.delay if self.peers else 0.0
        if self._store().add(notification.key, notification.receiver, payload, self.config.dedupe_window, delay=delay):
            WEBHOOKS.labels("accepted").inc()
            with self.wake:
                self.wake.notify()
            return Response(200, "queued\n")
        WEBHOOKS.labels("duplicate").inc()
        return Response(200, "already delivered or queued\n")

    def message_page(self, request: Request) -> Response:
        payload = self._store().payload(request.query.get("id", ""))
        if payload is None:
            return Response(404, "no such message (links are kept for the dedupe window's retention)\n")
        notification = Notification.from_payload(payload)
        return Response(200, page(notification, ""), "text/html; charset=utf-8")

    def metrics(self, _request: Request) -> Response:
        count, oldest = self._store().pending()
        QUEUE.set(count)
        OLDEST.set(time.time() - oldest if oldest else 0)
        if self.tokens:
            for result, value in self.tokens.refreshes.items():
                REFRESHES.labels(result).set(value)
        if self.peers:
            self.peers.export()
        return Response(200, self_metrics(), CONTENT_TYPE)

    # -- delivery ---------------------------------------------------------
    def render(self, notification: Notification) -> Rendered:
        link = f"{self.config.public_url}m?id={notification.key[:16]}"
        zns = self.config.zns
        params = zns_params(notification, link, zns.get("template_data", {}), zns.get("lengths", {})) if zns else {}  # type: ignore[arg-type]
        sms_limit = self.config.sms.max_length if self.config.sms else 160
        sms = sms_text(notification, link, sms_limit)
        return Rendered(notification.key, zalo_text(notification, link), sms, params)

    def _work(self) -> None:
        last_prune = 0.0
        while not self.stopping.is_set():
            job = self._store().take()
            if job is None:
                with self.wake:
                    self.wake.wait(timeout=0.5)
                if time.time() - last_prune > 3600:
                    last_prune = time.time()
                    self._store().prune(time.time() - max(self.config.dedupe_window, 86400))
                continue
            try:
                self.deliver(job)
            except Exception:  # a bug must not stop the worker or lose the job
                log.exception("delivery %s failed unexpectedly; retrying in a minute", job.id)
                self._store().again(job, job.channel, job.attempts, time.time() + 60, "internal error")

    def _watch(self) -> None:
        while not self.stopping.wait(2.0):
            heartbeats = self.heartbeats
            if heartbeats is not None:
                try:
                    heartbeats.check()
                except Exception:  # a bug must not stop the watch
                    log.exception("heartbeat check failed")

    def deliver(self, job: Job) -> None:
        if self.peers and job.attempts == 0 and job.channel == 0:
            peer = self.peers.settled_by(job.key)
            if peer is not None:
                log.info("%s for %s: the peer %s has it in hand; not sent again", job.key[:16], job.receiver, peer)
                self._store().delivered(job, f"peer:{peer}", f"delivered by {peer}")
                return
        recipient = self.config.recipients.get(job.receiver)
        if recipient is None:
            self._store().dead(job, [], f"receiver {job.receiver} is no longer in the config")
            DEAD.labels(job.receiver).inc()
            return
        channels: list[str] = list(recipient["channels"])  # type: ignore[arg-type]
        notification = Notification.from_payload(job.payload)
        index = min(job.channel, len(channels) - 1)
        name = channels[index]
        channel = self.channels.get(name)
        outcome = (
            channel.send(recipient, self.render(notification))  # type: ignore[attr-defined]
            if channel
            else Outcome(PERMANENT, f"{name} is not configured")
        )
        if outcome.result == DELIVERED:
            DELIVERIES.labels(name, "delivered").inc()
            LATENCY.labels(name).observe(max(0.0, time.time() - job.received))
            LAST_DELIVERY.labels(name).set(time.time())
            self._store().delivered(job, name, outcome.detail)
            log.info("%s %s to %s by %s: %s", notification.status, notification.alertname, job.receiver, name,
                     outcome.detail)  # fmt: skip
            return
        attempts = job.attempts + 1
        if outcome.result != PERMANENT and attempts < self.config.attempts:
            DELIVERIES.labels(name, "retry").inc()
            backoff = min(self.config.max_backoff, self.config.initial_backoff * 2 ** (attempts - 1))
            wait = max(backoff, outcome.retry_after or 0.0)
            log.warning("%s to %s: %s; attempt %d again in %.1f s", name, job.receiver, outcome.detail,
                        attempts + 1, wait)  # fmt: skip
            self._store().again(job, index, attempts, time.time() + wait, outcome.detail)
            return
        DELIVERIES.labels(name, "failed").inc()
        if index + 1 < len(channels):
            log.warning("%s to %s failed (%s): trying %s", name, job.receiver, outcome.detail, channels[index + 1])
            self._store().again(job, index + 1, 0, time.time(), outcome.detail)
            with self.wake:
                self.wake.notify()
            return
        log.error("%s to %s: no channel delivered (%s): dead letter", notification.alertname, job.receiver,
                  outcome.detail)  # fmt: skip
        DEAD.labels(job.receiver).inc()
        self._store().dead(job, channels, outcome.detail)
