"""The board's state of each site from given alerts (as Alertmanager reports them after silences and inhibition)."""

from __future__ import annotations

import datetime as dt

import pytest

from motcua_exporters.board import state as st
from motcua_exporters.board.data import Device, Site
from motcua_exporters.board.runbooks import render

NOW = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)


def site(code: str, counters: int = 2) -> Site:
    devices = (
        Device(f"w{code}-rt01", "router"),
        Device(f"w{code}-sw01", "switch"),
        *(Device(f"w{code}-pc{i:02d}", "counter") for i in range(1, counters + 1)),
        Device(f"w{code}-pr01", "printer"),
    )
    return Site(code, f"Phường {code}", "ward", "hcm", "dx-hcm", "steady", "", devices)


def alert(
    name: str,
    code: str,
    severity: str = "critical",
    instance: str = "",
    role: str = "counter",
    state: str = "active",
    silenced_by: tuple = (),
    inhibited_by: tuple = (),
    minutes: int = 5,
) -> dict:
    labels = {"alertname": name, "severity": severity, "site": code, "role": role, "scope": "site"}
    if instance:
        labels["instance"] = instance
    return {
        "fingerprint": f"{name}{code}{instance}",
        "labels": labels,
        "annotations": {
            "summary_vi": f"{name} vi",
            "summary_en": f"{name} en",
            "runbook_url": f"docs/runbooks/{name.lower()}.md",
        },
        "startsAt": (NOW - dt.timedelta(minutes=minutes)).isoformat(),
        "status": {"state": state, "silencedBy": list(silenced_by), "inhibitedBy": list(inhibited_by)},
    }


SITES = {c: site(c) for c in ("26740", "25747", "26732")}


def test_a_site_offline_is_one_critical_tile_and_its_counters_are_unreachable_not_down():
    raw = [
        alert("SiteOffline", "25747", instance="", role="router"),
        alert("CounterDown", "25747", "warning", "w25747-pc01", state="suppressed", inhibited_by=("x",)),
        alert("CounterDown", "25747", "warning", "w25747-pc02", state="suppressed", inhibited_by=("x",)),
    ]
    states = st.site_states(SITES, st.parse_alerts(raw))
    offline = states["25747"]
    assert offline.level == st.OFFLINE and offline.colour == st.CRITICAL
    assert [a.name for a in offline.firing] == ["SiteOffline"]  # one alert, not one per counter
    assert len(offline.inhibited) == 2
    devices = {d.name: d.level for d in st.device_states(offline)}
    assert devices["w25747-pc01"] == devices["w25747-pc02"] == "unreachable"
    assert devices["w25747-rt01"] == st.OK  # the router's alert has no instance: the site's
    assert st.counts(states) == {"ok": 2, "warning": 0, "critical": 0, "offline": 1}


def test_the_worst_active_alert_colours_the_site_and_silenced_ones_do_not():
    raw = [
        alert("PrinterStopped", "26740", "warning", "w26740-pc02", role="printer"),
        alert("CounterDown", "26740", "critical", "w26740-pc01"),
        alert("CounterDown", "26732", "critical", "w26732-pc01", state="suppressed", silenced_by=("s1",)),
        alert("Watchdog", "", "none", role="monitoring"),
    ]
    states = st.site_states(SITES, st.parse_alerts(raw))
    assert states["26740"].level == st.CRITICAL
    assert [a.name for a in states["26740"].firing] == ["CounterDown", "PrinterStopped"]  # worst first
    assert states["26732"].level == st.OK and [a.name for a in states["26732"].silenced] == ["CounterDown"]
    assert {d.name: d.level for d in st.device_states(states["26732"])}["w26732-pc01"] == "silenced"
    assert states["25747"].level == st.OK


def test_an_alert_without_a_site_label_is_placed_by_its_host_and_unknown_sites_are_ignored():
    raw = [alert("CounterDown", "", "warning", "w26732-pc02"), alert("CounterDown", "99999", "critical", "x-pc01")]
    raw[0]["labels"].pop("site")
    states = st.site_states(SITES, st.parse_alerts(raw))
    assert states["26732"].level == st.WARNING
    assert sum(len(s.firing) for s in states.values()) == 1


def test_silences_in_force_name_their_sites_and_a_relocation_is_marked():
    raw = [
        {
            "id": "a",
            "createdBy": "an.nv",
            "comment": "[motcua relocation m1] relocation 26740 -> ttpv",
            "startsAt": NOW.isoformat(),
            "endsAt": (NOW + dt.timedelta(hours=2)).isoformat(),
            "status": {"state": "active"},
            "matchers": [{"name": "instance", "value": "w26740\\-pc01|w26740\\-pc02", "isRegex": True}],
        },
        {
            "id": "b",
            "createdBy": "lan.tt",
            "comment": "thay switch",
            "startsAt": NOW.isoformat(),
            "endsAt": (NOW + dt.timedelta(hours=1)).isoformat(),
            "status": {"state": "pending"},
            "matchers": [{"name": "site", "value": "26732", "isRegex": False}],
        },
        {
            "id": "c",
            "createdBy": "x",
            "comment": "old",
            "startsAt": NOW.isoformat(),
            "endsAt": NOW.isoformat(),
            "status": {"state": "expired"},
            "matchers": [{"name": "site", "value": "25747", "isRegex": False}],
        },
    ]
    silences = st.parse_silences(raw, NOW)
    assert [s.id for s in silences] == ["b", "a"]  # the one ending first first; the expired one is history
    states = st.site_states(SITES, [], silences)
    assert states["26740"].relocating and not states["26732"].relocating
    assert [s.author for s in states["26732"].silences] == ["lan.tt"]
    assert not states["25747"].silences


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        (
            "# Tiêu đề / Title\n\nA **bold** `code` <script>\n",
            "<h2>Tiêu đề / Title</h2>\n<p>A <strong>bold</strong> <code>code</code> &lt;script&gt;</p>",
        ),
        ("1. one\n   more\n2. two\n", "<ol><li>one<br>more</li><li>two</li></ol>"),
        ("```sh\nmotcua fleet diag --hosts <x>\n```\n", "<pre><code>motcua fleet diag --hosts &lt;x&gt;</code></pre>"),
        (
            "See [site offline](site-offline.md) and [x](javascript:alert(1))\n",
            '<p>See <a href="site-offline">site offline</a> and <a href="#">x</a>)</p>',
        ),
        (
            "| a | b |\n|---|---|\n| 1 | 2 |\n",
            "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>",
        ),
    ],
)
def test_runbooks_are_rendered_and_escaped(markdown, expected):
    assert render(markdown)[1] == expected
