"""motcua-notify, the notification bridge, as its real console script against the lab's provider
stand-ins (motcua.lab.sink: Zalo OAuth, Zalo OA, ZNS, an SMS gateway) on loopback, with their faults."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from motcua.lab.procs import poll, spawn, stop, wait_for_port
from motcua.lab.sink import LAB_SMS_KEY, LAB_ZALO_APP_ID, LAB_ZALO_SECRET, ZNS_TEMPLATE
from motcua_exporters.notify.message import GSM7, Notification, sms_text, strip_marks, zalo_text

from .conftest import BIN, free_port, promtool_check

ZALO_ID = "8470000000000000002"


def call(url: str, body: object = None, method: str | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def messages(sink: str, kind: str | None = None) -> list[dict]:
    items = json.loads(call(sink + "notifications")[1])
    return [i for i in items if kind is None or i["kind"] == kind]


def fault(sink: str, channel: str, name: str, count: int = 1) -> None:
    assert call(sink + "faults", {"channel": channel, "fault": name, "count": count})[0] == 200


@pytest.fixture(scope="module")
def bridge(sink, tmp_path_factory):
    root = tmp_path_factory.mktemp("notify")
    (root / "app-secret").write_text(LAB_ZALO_SECRET + "\n")
    (root / "refresh-token").write_text("lab-refresh-0\n")
    (root / "sms-key").write_text(LAB_SMS_KEY + "\n")
    port = free_port()
    config = {
        "state_dir": str(root / "state"),
        "public_url": f"http://127.0.0.1:{port}/",
        "dedupe_window": "10m",
        "timeout": "1s",
        "workers": 2,
        "retry": {"attempts": 3, "initial": "200ms", "max": "1s"},
        "zalo": {"api_url": sink, "oauth_url": sink, "app_id": LAB_ZALO_APP_ID,
                 "app_secret_file": str(root / "app-secret"), "refresh_token_file": str(root / "refresh-token")},
        "zns": {"api_url": sink, "template_id": ZNS_TEMPLATE,
                "template_data": {"trang_thai": "status", "canh_bao": "alertname", "don_vi": "site",
                                  "chi_tiet": "link"},
                "lengths": {"chi_tiet": 100}},
        "sms": {"url": sink + "sms/send", "to_field": "to", "text_field": "text", "phone_format": "0",
                "fields": {"brandname": "DXHCM"}, "auth": {"header": "X-Api-Key", "value_file": str(root / "sms-key")},
                "success": {"field": "CodeResult", "values": ["100"], "permanent": ["99"]}},
        "recipients": {
            "duty-an.nv": {"name": "Nguyễn Văn An", "channels": ["zalo", "zns", "sms"], "zalo": ZALO_ID,
                           "phone": "0900000002"},
            "lead-urgent": {"name": "Trần Thị Lan", "channels": ["sms"], "phone": "+84900000001"},
        },
    }  # fmt: skip
    path = root / "notify.yml"
    path.write_text(json.dumps(config, ensure_ascii=False))
    log = root / "notify.log"
    proc = spawn("notify", "bridge", [str(BIN / "motcua-notify"), "--config.file", str(path),
                                      "--web.listen-address", f"127.0.0.1:{port}"], log)  # fmt: skip
    assert wait_for_port("127.0.0.1", port, 15), log.read_text()
    yield {"url": f"http://127.0.0.1:{port}/", "root": root, "log": log, "config": config, "proc": proc}
    stop([proc])


SEQ = iter(range(1, 10_000))


def payload(receiver: str = "duty-an.nv", status: str = "firing", alerts: int = 1, name: str = "DossierDown") -> dict:
    n = next(SEQ)
    return {
        "version": "4",
        "receiver": re.sub(r"([.\\+*?()|\[\]{}^$])", r"\\\1", receiver),  # as Alertmanager sends it (QuoteMeta)
        "status": status,
        "groupKey": f'{{}}:{{alertname="{name}", n="{n}"}}',
        "externalURL": "http://127.79.0.10:9093",
        "commonLabels": {"alertname": name, "severity": "critical", "site": "26740", "ward": "Phường Sài Gòn"},
        "commonAnnotations": {
            "summary_vi": "Hệ thống hồ sơ không phản hồi",
            "summary_en": "the dossier system is not answering",
            "runbook_url": "docs/runbooks/dossier-down.md",
        },
        "alerts": [
            {"status": status, "labels": {"alertname": name, "instance": f"portal-{i}"}, "annotations": {},
             "fingerprint": f"{n:08x}{i:08x}", "startsAt": "2025-07-01T08:00:00Z"}
            for i in range(alerts)
        ],
    }  # fmt: skip


def send(bridge, body: dict) -> tuple[int, str]:
    return call(bridge["url"] + "alertmanager", body)


def delivered(sink: str, kind: str, since: int, count: int = 1, timeout: float = 15.0) -> list[dict]:
    return poll(lambda: (m := messages(sink, kind)[since:]) and len(m) >= count and m, timeout, f"{count} {kind}")


def metric(bridge, needle: str) -> float:
    _status, text = call(bridge["url"] + "metrics")
    for line in text.splitlines():
        if line.startswith(needle + " "):
            return float(line.split()[-1])
    return 0.0


def test_an_alert_reaches_zalo_once_and_its_resolution_follows(sink, bridge):
    before = len(messages(sink, "zalo"))
    body = payload()
    assert send(bridge, body) == (200, "queued\n")
    (message,) = delivered(sink, "zalo", before)
    assert message["to"] == ZALO_ID
    text = message["text"]
    assert text.splitlines()[0] == "🔴 CẢNH BÁO / FIRING: DossierDown"
    assert "Hệ thống hồ sơ không phản hồi / the dossier system is not answering" in text
    assert "Hướng dẫn xử lý / Runbook: docs/runbooks/dossier-down.md" in text
    link = text.rsplit("Chi tiết / Details: ", 1)[1].strip()
    assert link.startswith(bridge["url"] + "m?id=")
    status, page = call(link)
    assert status == 200 and "Phường Sài Gòn" in page and "portal-0" in page
    # Alertmanager's retry of the same notification: answered, not delivered again.
    assert send(bridge, body) == (200, "already delivered or queued\n")
    resolved = payload()
    resolved.update(groupKey=body["groupKey"], status="resolved")
    resolved["alerts"] = [{**a, "status": "resolved"} for a in body["alerts"]]
    assert send(bridge, resolved)[0] == 200
    later = delivered(sink, "zalo", before, 2)
    assert later[1]["text"].startswith("✅ ĐÃ KHẮC PHỤC / RESOLVED: DossierDown")
    time.sleep(1)
    assert len(messages(sink, "zalo")) == before + 2
    assert metric(bridge, 'motcua_notify_webhooks_total{result="duplicate"}') >= 1
    assert metric(bridge, 'motcua_notify_zalo_token_refreshes{result="ok"}') >= 1


def test_an_expired_token_is_refreshed_and_the_new_refresh_token_kept(sink, bridge):
    state = bridge["root"] / "state" / "zalo-token.json"
    before = len(messages(sink, "zalo"))
    send(bridge, payload())  # makes sure a token exists
    delivered(sink, "zalo", before)
    first = json.loads(state.read_text())["refresh_token"]
    before += 1
    fault(sink, "zalo", "token-expired")
    send(bridge, payload())
    delivered(sink, "zalo", before)
    saved = json.loads(state.read_text())
    assert saved["refresh_token"] != first  # rotated: the stand-in accepts each refresh token once
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    assert [m["fault"] for m in messages(sink, "fault")][-1] == "token-expired"


def test_a_new_grant_in_the_vault_starts_a_new_token_chain(sink, bridge):
    """A rebuilt host, or a refresh token refused: the operator authorises the app again and puts the
    new refresh token where the bridge reads it; the bridge starts from it instead of its saved chain."""
    state = bridge["root"] / "state" / "zalo-token.json"
    granted = json.loads(call(sink + "zalo/grant", {})[1])["refresh_token"]
    (bridge["root"] / "refresh-token").write_text(granted + "\n")
    old_seed = json.loads(state.read_text())["seed"]
    before = len(messages(sink, "zalo"))
    fault(sink, "zalo", "token-expired")
    send(bridge, payload())
    delivered(sink, "zalo", before)
    assert json.loads(state.read_text())["seed"] != old_seed


def test_rate_limits_and_timeouts_are_retried_on_the_same_channel(sink, bridge):
    retries = metric(bridge, 'motcua_notify_deliveries_total{channel="zalo",result="retry"}')
    before = len(messages(sink, "zalo"))
    fault(sink, "zalo", "rate-limited", 2)
    send(bridge, payload())
    delivered(sink, "zalo", before)
    assert metric(bridge, 'motcua_notify_deliveries_total{channel="zalo",result="retry"}') == retries + 2
    sms_before = len(messages(sink, "sms"))
    fault(sink, "sms", "timeout")
    send(bridge, payload("lead-urgent"))
    (sms,) = delivered(sink, "sms", sms_before, timeout=20)
    assert sms["to"] == "0900000001"  # the gateway's format (phone_format: "0")


def test_a_person_not_following_the_oa_gets_zns_then_sms(sink, bridge):
    zns_before, sms_before = len(messages(sink, "zns")), len(messages(sink, "sms"))
    fault(sink, "zalo", "not-following")
    send(bridge, payload())
    (zns,) = delivered(sink, "zns", zns_before)
    assert zns["to"] == "84900000002" and zns["template_id"] == ZNS_TEMPLATE
    assert zns["params"]["trang_thai"] == "CẢNH BÁO" and zns["params"]["don_vi"] == "26740"
    assert zns["params"]["chi_tiet"].startswith(bridge["url"] + "m?id=")
    # Not following the OA and the template refused: SMS, one segment, without diacritics.
    fault(sink, "zalo", "not-following")
    fault(sink, "zns", "template-rejected")
    send(bridge, payload(alerts=40))
    (sms,) = delivered(sink, "sms", sms_before)
    assert len(sms["text"]) <= 160 and set(sms["text"]) <= GSM7, sms["text"]
    assert sms["text"].startswith("MOTCUA CANH BAO: DossierDown (40) 26740 - He thong ho so")


def test_what_no_channel_delivers_is_a_dead_letter_and_the_bridge_keeps_serving(sink, bridge):
    dead_file = bridge["root"] / "state" / "dead-letters.jsonl"
    lines = len(dead_file.read_text().splitlines()) if dead_file.exists() else 0
    dead = metric(bridge, 'motcua_notify_dead_letters_total{receiver="lead-urgent"}')
    fault(sink, "sms", "bad-number")  # permanent: no retry, and SMS is this person's only channel
    body = payload("lead-urgent")
    send(bridge, body)
    poll(lambda: dead_file.exists() and len(dead_file.read_text().splitlines()) > lines, 15, "a dead letter")
    record = json.loads(dead_file.read_text().splitlines()[-1])
    assert record["receiver"] == "lead-urgent" and record["tried"] == ["sms"] and "CodeResult=99" in record["detail"]
    assert record["payload"]["groupKey"] == body["groupKey"]
    assert metric(bridge, 'motcua_notify_dead_letters_total{receiver="lead-urgent"}') == dead + 1
    # HTTP 500 on every attempt of every channel: retried, then each next channel, then a dead letter.
    for channel in ("zalo", "zns", "sms"):
        fault(sink, channel, "http500", 3)
    send(bridge, payload())
    poll(lambda: len(dead_file.read_text().splitlines()) > lines + 1, 30, "the second dead letter")
    assert json.loads(dead_file.read_text().splitlines()[-1])["tried"] == ["zalo", "zns", "sms"]
    before = len(messages(sink, "zalo"))
    send(bridge, payload())
    delivered(sink, "zalo", before)
    # The sink logs the message before the bridge has its answer: the queue empties a moment later.
    poll(lambda: "motcua_notify_queue_depth 0.0" in call(bridge["url"] + "metrics")[1], 10, "an empty queue")
    status, text = call(bridge["url"] + "metrics")
    assert status == 200 and "motcua_notify_queue_depth 0.0" in text
    promtool_check(text)


def test_what_the_webhook_refuses(bridge):
    assert send(bridge, {"version": "3"})[0] == 400
    assert send(bridge, payload("duty-nobody"))[0] == 422  # Alertmanager does not retry a 4xx
    assert call(bridge["url"] + "alertmanager")[0] == 404  # GET: the webhook is POST only
    assert call(bridge["url"] + "metrics", {"x": 1})[0] == 405
    assert "receiver 'duty-nobody' is not in the config's recipients" in bridge["log"].read_text()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"channels": ["zalo", "telegram"]}, "recipients.duty-an.nv.channels[1]: unknown channel 'telegram'"),
        ({"phone": "12345"}, "recipients.duty-an.nv.phone: '12345' is not a Vietnamese number"),
        ({"zalo": "an.nv"}, "recipients.duty-an.nv.zalo: 'an.nv' is not a Zalo user id"),
        ({"channels": ["sms"], "phone": None}, "recipients.duty-an.nv.channels[0]: sms needs the person's phone"),
        ({"channels": []}, "recipients.duty-an.nv.channels: must name at least one channel"),
    ],
    ids=["unknown-channel", "phone", "zalo-id", "no-phone", "no-channel"],
)
def test_a_bad_config_is_refused_naming_file_and_key(bridge, tmp_path, change, message):
    config = json.loads(json.dumps(bridge["config"]))
    person = config["recipients"]["duty-an.nv"]
    person.update(change)
    config["recipients"]["duty-an.nv"] = {k: v for k, v in person.items() if v is not None}
    path = tmp_path / "notify.yml"
    path.write_text(json.dumps(config, ensure_ascii=False))
    result = subprocess.run([str(BIN / "motcua-notify"), "--config.file", str(path), "--check-config"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 2 and f"{path}: {message}" in result.stderr, result.stderr


def test_texts_fit_their_channels():
    body = payload(alerts=400)
    body["commonAnnotations"]["summary_vi"] = "Đường truyền của phường bị đứt " * 10
    n = Notification.from_payload(body)
    assert len(zalo_text(n, "https://mon/m?id=abc")) <= 2000
    assert zalo_text(n, "https://mon/m?id=abc").endswith("(xem đủ / see all: https://mon/m?id=abc)")
    sms = sms_text(n, "https://mon/m?id=abc")
    assert len(sms) <= 160 and sms.endswith(" https://mon/m?id=abc") and set(sms) <= GSM7
    assert strip_marks("Đặc khu Côn Đảo, phường Thủ Đức") == "Dac khu Con Dao, phuong Thu Duc"


def test_a_config_check_writes_nothing(bridge, tmp_path):
    """The role checks the config as root before the service runs: no state directory may appear."""
    config = json.loads(json.dumps(bridge["config"]))
    config["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "notify.yml"
    path.write_text(json.dumps(config, ensure_ascii=False))
    result = subprocess.run([str(BIN / "motcua-notify"), "--config.file", str(path), "--check-config"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "state").exists()
