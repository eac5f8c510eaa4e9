"""Alert rules: promtool checks, promtool unit tests for every alert, annotations, inhibition."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from motcua.monitoring import rules
from tests.conftest import ROOT

CASES = Path(__file__).with_name("rules_cases.yml")
# The alerts judged over hours or against yesterday: evaluated every 5 minutes.
HOURS_CASES = Path(__file__).with_name("rules_cases_hours.yml")


def write_rules(registry, path: Path, annotations: bool = True, **kwargs) -> dict:
    groups = rules.rule_groups(registry, **kwargs)
    if not annotations:
        for group in groups["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
    path.write_text(yaml.safe_dump(groups, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return groups


def test_promtool_checks_the_rules_of_every_site(production_registry, tmp_path):
    groups = write_rules(production_registry, tmp_path / "rules.yml")
    result = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    info = [r for r in groups["groups"][0]["rules"] if r["record"] == "motcua_site_info"]
    assert len(info) == len(production_registry.sites) == 172  # 168 wards and units + 4 centres
    assert {r["labels"]["site"] for r in info} == set(production_registry.sites)
    # Every site's opening hours (the registry's; all the default today) and a rule for each kind of hours.
    assert {r["labels"]["opening_hours"] for r in info} == {"monday-friday 07:30-17:00, saturday 07:30-11:30"}
    opening = [r["record"] for r in groups["groups"][2]["rules"] if "record" in r]
    assert opening == ["motcua_site_open", "motcua_site_open_hour"]  # in the alerts' group, ahead of them


def test_promtool_unit_tests_pass(lab_registry, tmp_path):
    write_rules(lab_registry, tmp_path / "rules.yml", annotations=False)
    shutil.copy(CASES, tmp_path / "cases.yml")
    shutil.copy(HOURS_CASES, tmp_path / "hours.yml")
    result = subprocess.run(["promtool", "test", "rules", "cases.yml", "hours.yml"], cwd=tmp_path, capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr


def test_every_alert_has_a_firing_unit_test_with_the_labels_routing_needs():
    tests = [t for path in (CASES, HOURS_CASES) for t in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]]
    firing: dict[str, list[dict]] = {}
    for test in tests:
        for check in test.get("alert_rule_test", []):
            for expected in check.get("exp_alerts") or []:
                firing.setdefault(check["alertname"], []).append(expected["exp_labels"])
    assert sorted(firing) == sorted(rules.alert_names())
    by_name = {a.name: a for a in rules.ALERTS}
    for name, label_sets in firing.items():
        for labels in label_sets:
            assert labels["severity"] == by_name[name].severity
            assert labels["scope"] == by_name[name].scope, name
            if by_name[name].scope == rules.SCOPE_SITE:
                # Routing needs site and phase; inhibition needs site and role.
                assert {"site", "phase", "role"} <= set(labels), name


def test_one_failed_probe_never_pages_at_the_lab_pace(lab_registry, tmp_path):
    """The lab's fast pace keeps the rule: a single failed probe stays below `for`."""
    lab_vars = yaml.safe_load((ROOT / "inventory/lab/group_vars/monitoring.yml").read_text())
    write_rules(
        lab_registry, tmp_path / "rules.yml", annotations=False, durations=lab_vars["monitoring_prometheus_alert_for"]
    )
    series = (
        'motcua_dossier_probe_success{job="dossier", instance="dx-centre", target="portal", scope="system",'
        ' role="dossier"}'
    )
    interval = lab_vars["monitoring_prometheus_evaluation_interval"]
    cases = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": interval,
        "tests": [
            {
                "interval": interval,
                "input_series": [{"series": series, "values": "1 1 0 1 1 1 1 1 1 1"}],
                "alert_rule_test": [
                    {"eval_time": f"{i * 2}s", "alertname": "DossierSystemDown", "exp_alerts": []} for i in range(10)
                ],
            }
        ],
    }
    (tmp_path / "cases.yml").write_text(yaml.safe_dump(cases))
    result = subprocess.run(["promtool", "test", "rules", "cases.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]


def test_annotations_vietnamese_and_english_with_a_runbook(lab_registry):
    groups = rules.rule_groups(lab_registry, runbook_base="https://runbooks.example/motcua/")
    (group,) = [g for g in groups["groups"] if g["name"] == "motcua_alerts"]
    alerts = [r for r in group["rules"] if "alert" in r]
    slugs = set()
    for rule in alerts:
        notes = rule["annotations"]
        assert notes["summary_vi"] and notes["summary_en"] and notes["summary_vi"] != notes["summary_en"]
        assert re.search(r"[ạảãàáâậầấẩẫăắằặẳẵđếềệểễêọỏõòóôộồốổỗơớờợởỡụủũùúưựừứửữịỉĩìíỵỷỹỳý]", notes["summary_vi"]), (
            rule["alert"]
        )
        assert notes["summary"] == f"{notes['summary_vi']} / {notes['summary_en']}"
        assert notes["runbook_url"].startswith("https://runbooks.example/motcua/") and notes["runbook_url"].endswith(
            ".md"
        )
        slugs.add(notes["runbook_url"])
    assert len(slugs) == len(alerts)  # one runbook per alert


def test_unknown_pace_class_is_refused(lab_registry):
    try:
        rules.rule_groups(lab_registry, durations={"quick": "1s"})
    except ValueError as exc:
        assert "unknown alert pace(s): quick" in str(exc)
    else:
        raise AssertionError("an unknown pace class was accepted")


def test_inhibition_follows_the_topology():
    inhibit = {tuple(r["source_matchers"]): r for r in rules.inhibit_rules() if "role=~" in r["target_matchers"][0]}
    site = inhibit[('alertname="SiteOffline"',)]
    hidden = set(re.search(r'role=~"(.*)"', site["target_matchers"][0]).group(1).split("|"))
    # Everything behind the router of the site: gear, PCs, peripherals, tokens, exporters, the site's link.
    assert hidden == {"switch", "counter", "kiosk", "printer", "scanner", "token", "exporter", "site-link"}
    assert site["equal"] == ["site"]
    counter = inhibit[('alertname="CounterDown"',)]
    assert counter["equal"] == ["site", "instance"] and "token" in counter["target_matchers"][0]
    # Every alert that an inhibition hides carries the role it is matched on.
    roles = {a.role for a in rules.ALERTS}
    assert hidden - {"kiosk"} <= roles | {"counter"}


def test_dossier_thresholds_override_the_defaults_and_bad_ones_are_refused(lab_registry):
    groups = rules.rule_groups(lab_registry, dossier_thresholds={"overdue": 25, "on_time_target": 0.9})
    exprs = {r["alert"]: r["expr"] for g in groups["groups"] for r in g["rules"] if "alert" in r}
    assert ">= 25 and on (instance)" in exprs["DossiersOverdue"]
    assert "< 0.9 and on (site)" in exprs["DossiersOnTimeRateLow"]
    assert "offset 1h >= 3)" in exprs["DossiersOverdueGrowing"]  # the others keep their defaults
    assert not any("DOSSIER_" in expr for expr in exprs.values())
    for bad, message in (({"overdew": 3}, "unknown dossier threshold(s): overdew"),
                         ({"overdue": "ten"}, "dossier threshold overdue: a number of 0 or more")):  # fmt: skip
        try:
            rules.rule_groups(lab_registry, dossier_thresholds=bad)
        except ValueError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_each_site_is_open_by_its_own_hours(lab_registry, tmp_path):
    """motcua_site_open and motcua_site_open_hour follow each site's hours, in Vietnam's time, by promtool:
    the registry's default for most, a site's own (here the lab's setting for 26732: every day, all day, so
    open a whole hour at any hour, the first after midnight too)."""
    write_rules(lab_registry, tmp_path / "rules.yml", annotations=False,
                opening_hours={"26732": {"monday-sunday": "00:00-24:00"}})  # fmt: skip
    # t=0 is Thursday 07:00 in Vietnam. An hour of each kind: (eval time, sites open, sites open an hour).
    default = {"ttpv", "26740", "25747"}
    moments = [
        ("20m", {"26732"}, {"26732"}),  # Thursday 07:20: before the default's 07:30
        ("40m", default | {"26732"}, {"26732"}),  # 07:40: open, not for an hour yet
        ("1h40m", default | {"26732"}, default | {"26732"}),  # 08:40
        ("10h", {"26732"}, {"26732"}),  # 17:00: the default's closing
        ("17h30m", {"26732"}, {"26732"}),  # Friday 00:30: open since Thursday, past midnight
        ("52h", default | {"26732"}, default | {"26732"}),  # Saturday 11:00
        ("53h", {"26732"}, {"26732"}),  # Saturday 12:00: the default's 11:30 closing
        ("75h", {"26732"}, {"26732"}),  # Sunday 10:00
    ]
    tests = [{
        "interval": "5m",
        "input_series": [],
        "promql_expr_test": [
            {"expr": f"sort(count by (site) ({record}))", "eval_time": at,
             "exp_samples": [{"labels": f'{{site="{code}"}}', "value": 1} for code in sorted(sites)]}
            for at, open_now, open_hour in moments
            for record, sites in (("motcua_site_open", open_now), ("motcua_site_open_hour", open_hour))
        ],
    }]  # fmt: skip
    (tmp_path / "cases.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "5m",
                                                        "tests": tests}))  # fmt: skip
    result = subprocess.run(["promtool", "test", "rules", "cases.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr
    info = {r["labels"]["site"]: r["labels"]["opening_hours"] for r in rules.site_info_rules(lab_registry)
            if r["record"] == "motcua_site_info"}  # fmt: skip
    assert info["26732"] == "monday-friday 07:30-17:00, saturday 07:30-11:30"  # without the setting: the registry's


def test_intake_is_judged_across_midnight_at_a_site_open_all_night(lab_registry, tmp_path):
    """DossierIntakeStopped at a site open around the clock (the lab's 26732), in the first hour after
    midnight, when the exporter's count for today starts again from 0: by promtool, an hour of nothing
    across midnight is nothing (yesterday's same hour, across its own midnight, held 11)."""
    write_rules(lab_registry, tmp_path / "rules.yml", annotations=False,
                opening_hours={"26732": {"monday-sunday": "00:00-24:00"}})  # fmt: skip
    labels = next(r["labels"] for r in rules.site_info_rules(lab_registry)
                  if r["record"] == "motcua_site_info" and r["labels"]["site"] == "26732")  # fmt: skip
    series = 'motcua_dossiers_received{job="dossier", instance="dx-centre", site="26732", window="today"}'
    # t=0 Thursday 07:00. One dossier every 5 minutes until Friday 23:00 (t=40h), the count starting again
    # at each midnight (t=17h, t=41h); nothing after 23:00 on Friday.
    received = "0+1x203 0+1x276 276x10 0x30"
    fired = {k: labels[k] for k in ("site", "ward", "region", "phase", "team")}
    fired |= {"job": "dossier", "instance": "dx-centre", "window": "today", "role": "dossiers", "scope": "site",
              "severity": "warning"}  # fmt: skip
    tests = [{
        "interval": "5m",
        "input_series": [
            {"series": 'motcua_dossier_records_up{job="dossier", instance="dx-centre"}', "values": "1x520"},
            {"series": series, "values": received},
        ],
        "alert_rule_test": [
            # Friday 23:55: the last hour (22:55-23:55) held a dossier at 23:00
            {"eval_time": "40h55m", "alertname": "DossierIntakeStopped", "exp_alerts": []},
            # Saturday 00:30: nothing since 23:00 on either side of midnight; Friday 00:30 held 11 in its hour
            {"eval_time": "41h30m", "alertname": "DossierIntakeStopped", "exp_alerts": [{"exp_labels": fired}]},
        ],
    }]  # fmt: skip
    (tmp_path / "cases.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "5m",
                                                        "tests": tests}, allow_unicode=True))  # fmt: skip
    result = subprocess.run(["promtool", "test", "rules", "cases.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"99999": {"monday": "07:30-17:00"}}, "opening hours of site 99999: not a site of this inventory"),
        ({"26740": {"mon": "07:30-17:00"}}, "'mon': write a weekday or a range like monday-friday"),
        ({"26740": {"monday": "17:00-07:30"}}, "within one day"),
        ({"26740": {}}, "names no day"),
        ({"26740": "07:30-17:00"}, "a mapping of weekdays to hours"),
    ],
)
def test_bad_opening_hours_setting_is_refused(lab_registry, hours, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        rules.rule_groups(lab_registry, opening_hours=hours)
