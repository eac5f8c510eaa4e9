"""The duty roster: validation corpus, compiled Alertmanager config, routing checked by amtool."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from motcua.monitoring.alertmanager import bridge_recipients, compile_alertmanager
from motcua.monitoring.rules import inhibit_rules
from motcua.rosters import duty
from motcua.validation import InputError
from tests.conftest import CORPUS, ROOT

LAB_ROSTER = ROOT / "inventory" / "lab" / "duty.yml"
TEMPLATES = ROOT / "roles" / "monitoring_alertmanager" / "files" / "motcua.tmpl"
BAD = sorted((CORPUS / "duty").glob("*.yml"))
SETTINGS = {
    "smtp": {"smarthost": "127.79.0.25:25", "from": "am@lab.motcua.invalid", "require_tls": False},
    "telegram": {"api_url": "http://127.79.0.25", "bot_token": "0:test"},
    "webhooks": [{"name": "board", "url": "http://127.79.0.25/webhook/board"}],
    "bridge": {"url": "http://127.79.0.10:9096/alertmanager"},
    "heartbeat": {"urls": ["http://127.79.0.10:9096/heartbeat", "http://127.79.0.13:9096/heartbeat"]},
}


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_rosters_are_refused_with_file_line_and_shift(path, lab_registry):
    expect = path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect: ")
    roster, problems = duty.check_duty_roster(path, lab_registry)
    assert roster is None
    text = "\n".join(str(p) for p in problems)
    assert expect in text
    assert all(str(p).startswith(str(path)) for p in problems)


def test_corpus_covers_every_kind_of_mistake():
    names = {p.stem for p in BAD}
    for kind in ("unknown-site", "overlapping-shifts", "uncovered-opening-hours", "uncovered-system-night"):
        assert kind in names


def test_cli_reports_a_bad_roster_and_exits_1():
    path = CORPUS / "duty" / "overlapping-shifts.yml"
    result = subprocess.run(
        [str(Path(ROOT / ".venv/bin/motcua")), "duty", str(path), "--sites", "ttpv,26740,25747,26732"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "overlapping-shifts.yml:16: roster shift 2: field hours: overlaps shift 1 (line 15" in result.stderr


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, lab_registry):
    roster = duty.load_duty_roster(LAB_ROSTER, lab_registry)
    tmp = tmp_path_factory.mktemp("am")
    (tmp / "motcua.tmpl").write_text(TEMPLATES.read_text(encoding="utf-8"), encoding="utf-8")
    config = compile_alertmanager(roster, {**SETTINGS, "templates_glob": str(tmp / "*.tmpl")})
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return roster, config, path


def test_amtool_accepts_the_compiled_config(compiled):
    _, _, path = compiled
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(inhibit_rules())} inhibit rules" in result.stdout and len(inhibit_rules()) == 8


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        # A steady ward: the people whose shifts cover it; outside the window, the lead.
        (
            ["alertname=CounterDown", "site=26740", "phase=steady", "scope=site"],
            "board,duty-dung.hv,duty-an.nv,duty-lan.tt",
        ),
        # The city centre in hypercare: its person and a copy to the lead, always.
        (["alertname=SiteOffline", "site=ttpv", "phase=hypercare", "scope=site"], "board,duty-chi.pm,duty-lan.tt"),
        # Wards of the Bình Dương and Vũng Tàu teams.
        (
            ["alertname=PrinterStopped", "site=25747", "phase=steady", "scope=site"],
            "board,duty-dung.hv,duty-lan.tt,duty-lan.tt",
        ),
        # The dossier system: the day and night shifts, and the lead for a critical alert (urgently: SMS first).
        (
            ["alertname=DossierSystemDown", "scope=system", "severity=critical"],
            "board,duty-an.nv,duty-binh.lt,duty-binh.lt,urgent-lan.tt",
        ),
        (["alertname=EscalateToLead", "site=26740", "phase=steady"], "board,urgent-lan.tt"),
        # The Watchdog (always firing): the bridges' dead man's switch only, never a person or the board.
        (["alertname=Watchdog", "origin=dx-mon02", "scope=system", "severity=none"], "heartbeat"),
        # A warning about the monitoring itself: the system shifts; the lead only outside the window.
        (
            ["alertname=ExporterDown", "scope=system", "severity=warning"],
            "board,duty-an.nv,duty-binh.lt,duty-binh.lt,duty-lan.tt",
        ),
    ],
)
def test_amtool_routes(compiled, labels, receivers):
    _, _, path = compiled
    result = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={path}", f"--verify.receivers={receivers}", *labels],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"{labels}: {result.stdout}{result.stderr}"


def test_who_is_on_duty_when(compiled):
    roster, _, _ = compiled
    at = datetime.fromisoformat
    assert [p.id for p in roster.on_duty("26740", at("2025-07-02T09:00"))] == ["dung.hv"]
    assert [p.id for p in roster.on_duty("26740", at("2025-07-09T09:00"))] == ["an.nv"]
    assert [p.id for p in roster.on_duty("26740", at("2025-07-09T20:00"))] == []  # closed: nobody for the ward
    assert [p.id for p in roster.on_duty(None, at("2025-07-09T20:00"))] == ["binh.lt"]  # the system: the night shift
    assert [p.id for p in roster.on_duty(None, at("2025-07-10T06:59"))] == ["binh.lt"]
    assert [p.id for p in roster.on_duty(None, at("2025-07-10T07:00"))] == ["an.nv"]


def test_shifts_become_time_intervals_overnight_split_at_midnight(compiled):
    roster, config, _ = compiled
    intervals = {i["name"]: i["time_intervals"] for i in config["time_intervals"]}
    night = next(s for s in roster.shifts if s.person.id == "binh.lt" and s.hours == "19:00-07:00")
    assert intervals[night.name] == [
        {
            "times": [{"start_time": "19:00", "end_time": "24:00"}],
            "days_of_month": ["1:14"],
            "months": ["7"],
            "years": ["2025"],
            "location": "Asia/Ho_Chi_Minh",
        },
        {
            "times": [{"start_time": "00:00", "end_time": "07:00"}],
            "days_of_month": ["2:15"],
            "months": ["7"],
            "years": ["2025"],
            "location": "Asia/Ho_Chi_Minh",
        },
    ]
    assert intervals[duty.WINDOW_INTERVAL][0]["days_of_month"] == ["1:14"]


def test_the_watchdog_goes_to_every_bridge_resolved_too(compiled):
    _, config, _ = compiled
    receivers = {r["name"]: r for r in config["receivers"]}
    hooks = receivers["heartbeat"]["webhook_configs"]
    assert [h["url"] for h in hooks] == SETTINGS["heartbeat"]["urls"] and all(h["send_resolved"] for h in hooks)
    route = config["route"]["routes"][0]
    assert (route["receiver"], route["group_by"], route["repeat_interval"]) == ("heartbeat", ["origin"], "1m")
    assert "continue" not in route


def test_receivers_use_each_persons_contacts(compiled):
    _, config, _ = compiled
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["duty-chi.pm"]["email_configs"][0]["to"] == "chi.pm@lab.motcua.invalid"
    assert "telegram_configs" not in receivers["duty-chi.pm"]  # nobody in the lab uses Telegram
    assert "email_configs" not in receivers["duty-dung.hv"]  # no e-mail
    bridge = [{"url": "http://127.79.0.10:9096/alertmanager", "send_resolved": True, "max_alerts": 0}]
    assert receivers["duty-dung.hv"]["webhook_configs"] == bridge
    assert receivers["urgent-lan.tt"]["webhook_configs"] == bridge  # the lead's critical alerts: SMS first
    assert receivers["board"]["webhook_configs"][0]["url"].startswith("http://127.79.0.25/")


def test_the_bridge_serves_each_person_in_their_order_and_the_lead_urgently(compiled):
    roster, _, _ = compiled
    recipients = bridge_recipients(roster)
    assert recipients["duty-chi.pm"] == {"name": "Phạm Minh Chi", "channels": ["zns", "sms"], "phone": "0900000004"}
    assert recipients["duty-an.nv"]["channels"] == ["zalo", "zns", "sms"]  # the default: what the contacts allow
    assert recipients["duty-binh.lt"]["channels"] == ["zalo"]
    assert recipients["urgent-lan.tt"]["channels"] == ["sms", "zalo", "zns"]


def test_telegram_stays_an_option(lab_registry, tmp_path):
    """Blocked in Vietnam since June 2025, Telegram is still compiled for a roster that asks for it."""
    text = LAB_ROSTER.read_text(encoding="utf-8").replace(
        'phone: "+84900000005"', 'phone: "+84900000005", telegram_chat_id: 1005'
    )
    (tmp_path / "duty.yml").write_text(text, encoding="utf-8")
    roster = duty.load_duty_roster(tmp_path / "duty.yml", lab_registry)
    receivers = {r["name"]: r for r in compile_alertmanager(roster, SETTINGS)["receivers"]}
    assert receivers["duty-dung.hv"]["telegram_configs"][0]["chat_id"] == 1005


def test_a_roster_for_every_site_of_the_city(production_registry, tmp_path):
    """The lab roster's scopes by team cover all 172 sites of the registry."""
    roster = duty.load_duty_roster(LAB_ROSTER, production_registry)
    covered = set().union(*(s.scope.sites for s in roster.shifts))
    assert covered == set(production_registry.sites)


def test_load_raises_with_every_problem(lab_registry):
    with pytest.raises(InputError) as info:
        duty.load_duty_roster(CORPUS / "duty" / "unknown-site.yml", lab_registry)
    assert "duty roster is invalid" in str(info.value)


def test_who_refuses_an_unknown_site_and_reads_a_time_with_an_offset(capsys):
    from motcua.cli import main

    args = ["duty", str(LAB_ROSTER), "--sites", "ttpv,26740,25747,26732"]
    assert main([*args, "--who", "99999"]) == 2
    assert "motcua duty: --who 99999: not a site of the registry" in capsys.readouterr().err
    # 01:00 UTC is 08:00 in the city: the day shift of the week of 7 July.
    assert main([*args, "--who", "26740", "--at", "2025-07-09T01:00:00+00:00"]) == 0
    assert capsys.readouterr().out.startswith("Nguyễn Văn An (an.nv)")
    with pytest.raises(SystemExit):
        main([*args, "--who", "26740", "--at", "tomorrow morning"])
    assert "'tomorrow morning' is not a date and time" in capsys.readouterr().err


def test_a_roster_moved_to_another_window_keeps_its_shape_and_loads(lab_registry, tmp_path):
    from datetime import date

    text = LAB_ROSTER.read_text(encoding="utf-8")
    out = duty.moved(text, date(2026, 12, 6))
    assert "2025-07" not in out and 'window: {start: "2026-12-06", end: "2026-12-19"}' in out
    assert "2026-12-13..2026-12-19" in out  # a shift's range moved by the same days (2025-07-08..14)
    assert [line.split("#")[1] for line in out.splitlines() if "#" in line] == [
        line.split("#")[1] for line in text.splitlines() if "#" in line
    ]  # comments kept
    path = tmp_path / "duty.yml"
    path.write_text(out, encoding="utf-8")
    roster = duty.load_duty_roster(path, lab_registry)
    assert roster.on_duty("26740", datetime(2026, 12, 6, 9, 0))  # local time
    assert duty.moved("no dates here\n", date(2026, 1, 1)) == "no dates here\n"
