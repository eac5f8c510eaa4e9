"""motcua-notify on a monitoring pair: two real bridges that must not page twice, and the dead man's
switch raising MonitoringPeerSilent in a real Alertmanager (Debian's), on loopback."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace

import pytest

from motcua.lab.procs import poll, spawn, stop, wait_for_port
from motcua.lab.sink import LAB_SMS_KEY

from .conftest import BIN, free_port
from .test_notify import call, messages, payload

PHONE = "0900000002"


def start_bridge(root, name: str, port: int, settings: dict, *args: str) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    (root / "sms-key").write_text(LAB_SMS_KEY + "\n")
    config = {
        "state_dir": str(root / "state"),
        "public_url": f"http://127.0.0.1:{port}/",
        "timeout": "1s",
        "retry": {"attempts": 2, "initial": "200ms", "max": "1s"},
        "recipients": {"duty-an.nv": {"name": "Nguyễn Văn An", "channels": ["sms"], "phone": PHONE}},
        **settings,
    }
    path = root / "notify.yml"
    path.write_text(json.dumps(config, ensure_ascii=False))
    log = root / "notify.log"
    proc = spawn(f"notify-{name}", "bridge", [str(BIN / "motcua-notify"), "--config.file", str(path),
                                              "--web.listen-address", f"127.0.0.1:{port}", *args], log)  # fmt: skip
    assert wait_for_port("127.0.0.1", port, 15), log.read_text()
    return {"url": f"http://127.0.0.1:{port}/", "proc": proc, "log": log, "config": config, "path": path}


def sms_settings(sink: str, root) -> dict:
    return {"sms": {"url": sink + "sms/send", "to_field": "to", "text_field": "text", "phone_format": "0",
                    "auth": {"header": "X-Api-Key", "value_file": str(root / "sms-key")},
                    "success": {"field": "CodeResult", "values": ["100"], "permanent": ["99"]}}}  # fmt: skip


@pytest.fixture(scope="module")
def pair(sink, tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    ports = {"dx-mon01": free_port(), "dx-mon02": free_port()}
    bridges = {}
    for name, port in ports.items():
        peers = {other: f"http://127.0.0.1:{p}/" for other, p in ports.items() if other != name}
        settings = {**sms_settings(sink, root / name), "cluster": {"name": name, "peers": peers, "wait": "2s"}}
        bridges[name] = start_bridge(root / name, name, port, settings)
    yield bridges
    stop([b["proc"] for b in bridges.values()])


def sms_to(sink: str, since: int) -> list[dict]:
    return [m for m in messages(sink, "sms")[since:] if m["to"] == PHONE]


def settle(sink: str, since: int, count: int) -> list[dict]:
    """Wait for ``count`` SMS, then long enough for a second bridge's copy to show if there were one."""
    poll(lambda: len(sms_to(sink, since)) >= count, 20, f"{count} SMS")
    time.sleep(4)
    return sms_to(sink, since)


def test_both_bridges_given_the_same_notification_page_once(sink, pair):
    """Both Alertmanagers sent it (their gossip lagged): the first bridge delivers, the second asks it and does not."""
    since = len(messages(sink, "sms"))
    body = payload()
    for name in ("dx-mon02", "dx-mon01"):
        assert call(pair[name]["url"] + "alertmanager", body)[0] == 200
    assert len(settle(sink, since, 1)) == 1
    _status, text = call(pair["dx-mon02"]["url"] + "metrics")
    assert 'motcua_notify_peer_checks{outcome="delivered-by-peer"} 1.0' in text, text


def test_a_copy_that_reaches_the_first_bridge_late_is_not_sent_again(sink, pair):
    """dx-mon02 delivered it (dx-mon01's Alertmanager was down); dx-mon01's late copy asks and stays quiet."""
    since = len(messages(sink, "sms"))
    body = payload()
    assert call(pair["dx-mon02"]["url"] + "alertmanager", body)[0] == 200
    poll(lambda: sms_to(sink, since), 20, "the SMS from dx-mon02")
    assert call(pair["dx-mon01"]["url"] + "alertmanager", body)[0] == 200
    assert len(settle(sink, since, 1)) == 1
    key = Notification_key(body)
    for name in pair:
        status, text = call(pair[name]["url"] + "seen?key=" + urllib.parse.quote(key))
        assert status == 200 and json.loads(text)["state"] == "delivered", (name, text)


def Notification_key(body: dict) -> str:  # noqa: N802 - mirrors the bridge's own name
    from motcua_exporters.notify.message import Notification

    return Notification.from_payload(body).key


def test_a_bridge_whose_peer_is_down_delivers(sink, tmp_path):
    """The peer does not answer: in doubt the bridge delivers (a duplicate is better than nothing)."""
    port = free_port()
    nobody = f"http://127.0.0.1:{free_port()}/"
    cluster = {"name": "dx-mon02", "wait": "200ms", "peers": {"dx-mon01": nobody}}
    settings = {**sms_settings(sink, tmp_path), "cluster": cluster}
    bridge = start_bridge(tmp_path, "alone", port, settings)
    try:
        since = len(messages(sink, "sms"))
        assert call(bridge["url"] + "alertmanager", payload())[0] == 200
        assert len(settle(sink, since, 1)) == 1
        assert "not asked about" in bridge["log"].read_text()
    finally:
        stop([bridge["proc"]])


# ---------------------------------------------------------------- the dead man's switch
@pytest.fixture
def alertmanager(tmp_path):
    """Debian's Alertmanager on loopback, alone (no cluster), routing nothing anywhere."""
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    argv = ["prometheus-alertmanager", f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]  # fmt: skip
    proc = spawn("alertmanager", "alertmanager", argv, tmp_path / "alertmanager.log")
    assert wait_for_port("127.0.0.1", port, 20), (tmp_path / "alertmanager.log").read_text()
    yield f"http://127.0.0.1:{port}/"
    stop([proc])


def watchdog(origin: str, status: str = "firing") -> dict:
    return {"version": "4", "receiver": "heartbeat", "status": status, "groupKey": f'{{}}:{{origin="{origin}"}}',
            "alerts": [{"status": status, "labels": {"alertname": "Watchdog", "origin": origin}}]}  # fmt: skip


def silent_alerts(alertmanager: str) -> list[dict]:
    query = urllib.parse.quote('alertname="MonitoringPeerSilent"')
    _status, text = call(alertmanager + "api/v2/alerts?active=true&filter=" + query)
    return json.loads(text)


def test_a_peer_whose_watchdog_stops_is_raised_in_alertmanager_and_resolved_when_it_is_back(
    sink,
    alertmanager,
    tmp_path,
):
    port = free_port()
    settings = {
        **sms_settings(sink, tmp_path),
        "cluster": {"name": "dx-mon01", "peers": {"dx-mon02": f"http://127.0.0.1:{free_port()}/"}},
        "heartbeat": {"timeout": "3s", "alertmanager": alertmanager,
                      "runbook_url": "docs/runbooks/monitoring-peer-silent.md",
                      "external": {"url": sink + "webhook/heartbeat"}},
    }  # fmt: skip
    bridge = start_bridge(tmp_path, "dms", port, settings)
    try:
        assert call(bridge["url"] + "heartbeat", watchdog("dx-mon02")) == (200, "1 watchdog(s)\n")
        assert silent_alerts(alertmanager) == []
        # Nothing more arrives from dx-mon02: after the timeout, the alert is in Alertmanager.
        (alert,) = poll(lambda: silent_alerts(alertmanager), 15, "MonitoringPeerSilent")
        labels = alert["labels"]
        assert (labels["peer"], labels["reporter"], labels["severity"], labels["scope"]) == (
            "dx-mon02", "dx-mon01", "critical", "system")  # fmt: skip
        assert alert["annotations"]["summary_vi"].startswith("Mất tín hiệu từ máy giám sát dx-mon02")
        assert alert["annotations"]["runbook_url"] == "docs/runbooks/monitoring-peer-silent.md"
        _status, text = call(bridge["url"] + "metrics")
        assert 'motcua_notify_peer_silent{peer="dx-mon02"} 1.0' in text
        # Its Watchdog is back: resolved at once.
        call(bridge["url"] + "heartbeat", watchdog("dx-mon02"))
        poll(lambda: not silent_alerts(alertmanager), 10, "MonitoringPeerSilent resolved")
        # A resolved Watchdog (its Prometheus stopped sending it) is silence without waiting for the timeout.
        call(bridge["url"] + "heartbeat", watchdog("dx-mon02", "resolved"))
        poll(lambda: silent_alerts(alertmanager), 5, "MonitoringPeerSilent raised on a resolved Watchdog")
        # This host's own Watchdog goes on to the external heartbeat service.
        before = len(messages(sink, "webhook"))
        call(bridge["url"] + "heartbeat", watchdog("dx-mon01"))
        (ping,) = poll(lambda: messages(sink, "webhook")[before:], 10, "the external heartbeat")
        assert ping["receiver"] == "heartbeat" and ping["payload"]["host"] == "dx-mon01", ping
        # Not the Watchdog route's payload, or a stranger's Watchdog: nothing changes, nothing breaks.
        assert call(bridge["url"] + "heartbeat", watchdog("dx-mon09")) == (200, "1 watchdog(s)\n")
        assert call(bridge["url"] + "heartbeat", {"alerts": "x"})[0] == 200
        assert call(bridge["url"] + "heartbeat", None, method="POST")[0] == 400
    finally:
        stop([bridge["proc"]])


NO_PEERS = {"name": "dx-mon01", "peers": {}}
AM = "http://127.0.0.1:9093/"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"heartbeat": {"alertmanager": AM}}, "heartbeat: the heartbeat watches the peers named in cluster"),
        ({"cluster": {**NO_PEERS, "peers": {"dx-mon01": AM}}}, "cluster.peers.dx-mon01: must be another host's name"),
        ({"cluster": {**NO_PEERS, "peers": {"dx-mon02": "mon02:9096"}}}, "cluster.peers.dx-mon02: must be the peer"),
        ({"cluster": {**NO_PEERS, "wait": "soon"}}, "cluster.wait"),
        ({"cluster": NO_PEERS, "heartbeat": {"alertmanager": AM, "external": {"url": "ftp://x/"}}},
         "heartbeat.external.url: must be an http(s) URL"),
    ],
    ids=["heartbeat-without-cluster", "peer-is-self", "peer-url", "wait", "external-url"],
)  # fmt: skip
def test_a_bad_pair_config_is_refused_naming_the_key(sink, tmp_path, change, message):
    config = {"public_url": "http://127.0.0.1:1/", "state_dir": str(tmp_path / "state"), **sms_settings(sink, tmp_path),
              "recipients": {"duty-an.nv": {"name": "An", "channels": ["sms"], "phone": PHONE}}, **change}  # fmt: skip
    (tmp_path / "sms-key").write_text("k\n")
    path = tmp_path / "notify.yml"
    path.write_text(json.dumps(config))
    result = subprocess.run([str(BIN / "motcua-notify"), "--config.file", str(path), "--check-config"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 2 and f"{path}: {message}" in result.stderr, result.stderr


# ---------------------------------------------------------------- the locked plane
USERS = {"monitoring": "monitoring-" + "m" * 16, "operator": "operator-" + "o" * 16}


def locked_call(url: str, body: object | None, credentials) -> tuple[int, str]:
    from motcua.webauth import open_url

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with open_url(request, credentials, 10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except urllib.error.URLError as exc:
        return 0, str(exc.reason)


def test_a_locked_pair_settles_and_raises_with_the_monitoring_users_credentials(sink, tmp_path):
    """TLS from a CA and bcrypt basic auth everywhere (the bridges' and a real Alertmanager's web config, as
    motcua_web writes it): the bridges ask each other and raise MonitoringPeerSilent with the monitoring
    user's credentials; a request without them gets 401."""
    from motcua.lab import ca
    from motcua.webauth import Credentials, web_config

    ca.ensure_lab_ca(tmp_path / "ca", "127.0.0.1")
    ca.issue_web_certificates(tmp_path / "ca", tmp_path / "web", {"plane": "127.0.0.1"})
    web = tmp_path / "web" / "web-config.yml"
    tls = {"cert_file": str(tmp_path / "web" / "plane.crt"), "key_file": str(tmp_path / "web" / "plane.key")}
    web.write_text(json.dumps(web_config(USERS, "plane", tls)))
    (tmp_path / "web" / "monitoring.password").write_text(USERS["monitoring"] + "\n")
    plane = {"ca_file": str(tmp_path / "ca" / "ca.pem"), "username": "monitoring",
             "password_file": str(tmp_path / "web" / "monitoring.password")}  # fmt: skip
    operator = Credentials("operator", USERS["operator"], tmp_path / "ca" / "ca.pem")

    am_port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    argv = ["prometheus-alertmanager", f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
            f"--web.config.file={web}"]  # fmt: skip
    procs = [spawn("alertmanager", "alertmanager", argv, tmp_path / "alertmanager.log")]
    try:
        assert wait_for_port("127.0.0.1", am_port, 20), (tmp_path / "alertmanager.log").read_text()
        alertmanager = f"https://127.0.0.1:{am_port}/"
        status, reason = locked_call(alertmanager + "api/v2/status", None, None)
        assert status == 0 and "CERTIFICATE_VERIFY_FAILED" in reason  # the system's CAs do not know the plane's
        assert locked_call(alertmanager + "api/v2/status", None, replace(operator, password="wrong"))[0] == 401  # noqa: S106
        assert locked_call(alertmanager + "api/v2/status", None, operator)[0] == 200  # Go's bcrypt takes our hash
        ports = {"dx-mon01": free_port(), "dx-mon02": free_port()}
        bridges = {}
        for name, port in ports.items():
            peers = {other: f"https://127.0.0.1:{p}/" for other, p in ports.items() if other != name}
            settings = {**sms_settings(sink, tmp_path / name), "plane": plane,
                        "cluster": {"name": name, "peers": peers, "wait": "2s"},
                        "heartbeat": {"timeout": "3s", "alertmanager": alertmanager}}  # fmt: skip
            bridges[name] = start_bridge(tmp_path / name, name, port, settings, "--web.config.file", str(web))
            procs.append(bridges[name]["proc"])
            bridges[name]["url"] = f"https://127.0.0.1:{port}/"
        nobody = Credentials("operator", "not-the-password", tmp_path / "ca" / "ca.pem")
        assert locked_call(bridges["dx-mon01"]["url"] + "alertmanager", payload(), nobody)[0] == 401
        since = len(messages(sink, "sms"))
        body = payload()
        for name in ("dx-mon02", "dx-mon01"):
            assert locked_call(bridges[name]["url"] + "alertmanager", body, operator)[0] == 200
        assert len(settle(sink, since, 1)) == 1
        text = locked_call(bridges["dx-mon02"]["url"] + "metrics", None, operator)[1]
        assert 'motcua_notify_peer_checks{outcome="delivered-by-peer"} 1.0' in text, text
        # No Watchdog arrives: each bridge raises its peer as silent in the locked Alertmanager.
        query = urllib.parse.quote('alertname="MonitoringPeerSilent"')

        def raised():
            status, text = locked_call(alertmanager + "api/v2/alerts?active=true&filter=" + query, None, operator)
            return status == 200 and {a["labels"]["peer"] for a in json.loads(text)} == set(ports)

        poll(raised, 20, "MonitoringPeerSilent for both peers")
    finally:
        stop(procs)
