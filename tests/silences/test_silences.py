"""`motcua silence` against a real Alertmanager (Debian's, on loopback, started and stopped here)."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from motcua.cli import main
from motcua.silences import SilenceError, check_window
from motcua.times import TZ
from tests.conftest import ALERTMANAGER_URL as URL
from tests.conftest import alertmanager_api as api


def cli(*args: str) -> int:
    return main(["silence", *args, "-i", "inventory/lab", "--alertmanager", URL])


def test_a_silence_covers_exactly_the_hosts_for_the_window_and_can_be_expired(alertmanager, capsys):
    start = dt.datetime.now(TZ).replace(microsecond=0)
    code = cli("add", "--hosts", "w26740-pc01,w26740-pc02", "--for", "2h", "--author", "Trực ca DX / on duty",
               "--comment", "chuyển quầy / counters moved, ticket 1234", "--json")  # fmt: skip
    assert code == 0
    created = json.loads(capsys.readouterr().out)
    assert created["matchers"] == [{"name": "instance", "value": "w26740\\-pc01|w26740\\-pc02", "isRegex": True,
                                    "isEqual": True}]  # fmt: skip
    stored = api("GET", f"/api/v2/silence/{created['id']}")
    assert stored["createdBy"] == "Trực ca DX / on duty" and stored["status"]["state"] == "active"
    ends = dt.datetime.fromisoformat(stored["endsAt"].replace("Z", "+00:00"))
    assert abs((ends - start).total_seconds() - 7200) < 60
    # An alert of a silenced host is suppressed; the same alert of another host is not.
    alerts = [{"labels": {"alertname": "CounterDown", "instance": host, "site": "26740"}}
              for host in ("w26740-pc01", "w26740-pc03")]  # fmt: skip
    api("POST", "/api/v2/alerts", alerts)
    deadline = time.monotonic() + 10
    while True:
        states = {a["labels"]["instance"]: a["status"] for a in api("GET", "/api/v2/alerts")}
        if len(states) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert states["w26740-pc01"]["state"] == "suppressed" and states["w26740-pc01"]["silencedBy"] == [created["id"]]
    assert states["w26740-pc03"]["state"] == "active"
    assert cli("list") == 0
    listed = capsys.readouterr().out
    assert created["id"] in listed and "chuyển quầy / counters moved, ticket 1234" in listed
    assert cli("expire", created["id"]) == 0
    assert f"expired / đã bật lại cảnh báo: {created['id']}" in capsys.readouterr().out
    assert api("GET", f"/api/v2/silence/{created['id']}")["status"]["state"] == "expired"
    assert cli("list") == 0 and created["id"] not in capsys.readouterr().out


def test_a_site_silence_for_a_later_window(alertmanager, capsys):
    start = (dt.datetime.now(TZ) + dt.timedelta(days=1)).replace(microsecond=0)
    end = start + dt.timedelta(hours=4)
    assert cli("add", "--sites", "26740", "--start", start.isoformat(), "--end", end.isoformat(),
               "--author", "DX", "--comment", "thay switch / switch replaced", "--json") == 0  # fmt: skip
    created = json.loads(capsys.readouterr().out)
    stored = api("GET", f"/api/v2/silence/{created['id']}")
    assert stored["matchers"][0]["name"] == "site" and stored["matchers"][0]["value"] == "26740"
    assert stored["status"]["state"] == "pending"
    api("DELETE", f"/api/v2/silence/{created['id']}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hosts", "w26740-pc99", "--for", "1h"], "--hosts: not in the registry: w26740-pc99"),
        (["--sites", "99999", "--for", "1h"], "--sites: unknown site(s): 99999"),
        (["--for", "1h"], "choose what to silence"),
        (["--hosts", "w26740-pc01", "--sites", "26740", "--for", "1h"], "choose what to silence"),
        (["--hosts", "w26740-pc01"], "give the end of the window"),
        (["--hosts", "w26740-pc01", "--for", "soon"], "--for: 'soon' is not a duration"),
        (["--hosts", "w26740-pc01", "--for", "15d"], "longer than 14 days"),
        (["--hosts", "w26740-pc01", "--start", "2026-13-01T08:00", "--for", "1h"], "is not a date and time"),
        (["--hosts", "w26740-pc01", "--start", "2020-01-01T08:00", "--end", "2020-01-01T10:00"], "is in the past"),
        (["--hosts", "w26740-pc01", "--start", "2030-01-01T10:00", "--end", "2030-01-01T08:00"], "is not after"),
        (["--hosts", "w26740-pc01", "--for", "1h", "--comment", " "], "--comment: why"),
    ],
)
def test_bad_input_is_refused_before_the_api(args, message, capsys):
    # No Alertmanager is needed: nothing reaches one (the URL below has no listener).
    argv = ["silence", "add", *args, "-i", "inventory/lab", "--alertmanager", "http://127.81.0.3:9"]
    if "--author" not in args:
        argv += ["--author", "DX"]
    if "--comment" not in args:
        argv += ["--comment", "work"]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_alertmanager_is_named():
    with pytest.raises(SystemExit):
        main(["silence", "add", "--hosts", "w26740-pc01", "--for", "1h"])  # --author and --comment are required
    now = dt.datetime.now(TZ)
    with pytest.raises(SilenceError, match="is in the past"):
        check_window(now - dt.timedelta(hours=2), now - dt.timedelta(hours=1), now)
    assert main(["silence", "list", "-i", "inventory/lab", "--alertmanager", "http://127.81.0.3:9"]) == 2
