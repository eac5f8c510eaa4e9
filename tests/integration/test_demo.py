"""`make demo` as a newcomer runs it, and the plays that wait for hosts, under both strategies.

The session fixture `demo` (tests/conftest.py) runs motcua/lab/demo.py's steps, the
ones `make demo` runs, in the same order, on the tests' lab just brought up and with an
empty fact cache, as on a fresh clone: that first run is what failed for a newcomer
(mitogen's wait_for_connection when no cached fact holds the hosts' interpreter).
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from motcua.lab import demo as lab_demo
from tests.conftest import LAB_HOME, ROOT, ansible_env, recap, run

pytestmark = pytest.mark.lab
COUNTERS = ["ttpv-pc01", "ttpv-pc02", "w25747-pc01", "w25747-pc02", "w26732-pc01", "w26732-pc02", "w26740-pc01",
            "w26740-pc02"]  # fmt: skip


def test_make_demo_runs_the_demo_steps():
    recipe = re.search(r"^demo: venv\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe and recipe.group(1).strip() == "motcua lab demo"


def test_every_step_passes_in_order_on_hosts_just_started(demo):
    assert list(demo) == [step.name for step in lab_demo.steps()]
    assert all(r.returncode == 0 for r in demo.values())
    smoke = demo["smoke"].output
    assert {h: r["failed"] for h, r in recap_of(smoke).items() if h in COUNTERS} == dict.fromkeys(COUNTERS, 0)
    assert len(re.findall(r"systemd (running|degraded)", said(smoke))) == len(COUNTERS)
    assert "C1111-8P IOS" in smoke and "WS-C2960X" in smoke  # every router and switch identified itself
    assert "All 8 counters provisioned." in demo["counters"].output
    assert "refused" not in demo["cert-import"].output or " 0 refused" in demo["cert-import"].output
    listed = run(["motcua", "certs", "list", "-i", "inventory/lab", "--json"])
    statuses = {f"{c['site']}/{c['id']}": c["status"] for c in json.loads(listed.stdout)}
    wards = ("25747/signing", "26732/signing", "26740/signing", "26740/counter-tls")
    assert {key: statuses[key] for key in wards} == dict.fromkeys(wards, "installed")
    indicators = said(demo["dossiers"].output)  # each lab ward's and the city's week, from the stand-in's API
    assert "toàn thành phố / city" in indicators and all(f" {code} " in f" {indicators} " for code in ("26740", "ttpv"))
    readiness = demo["readiness"].output
    assert "3 site(s): 3 green, 0 amber, 0 red" in said(readiness), readiness[-3000:]
    assert (LAB_HOME / "demo" / "04-counters.log").read_text(encoding="utf-8") == demo["counters"].output
    # Pull mode: published to every ring (the first commit), the counters set up, 26740's pulled it.
    assert "for 8 counters: ring canary, all names it" in demo["pull-publish"].output
    assert {h: r["failed"] for h, r in recap_of(demo["pull-setup"].output).items()} == dict.fromkeys(COUNTERS, 0)
    assert "pull-now: 2 ok, 0 failed" in demo["pull-now"].output
    rows = {line.split()[0]: line for line in demo["pull-status"].output.splitlines() if line.startswith("  w26740-")}
    assert set(rows) == {"w26740-pc01", "w26740-pc02"} and all("current" in row for row in rows.values()), rows


def said(output: str) -> str:
    """The output with whitespace collapsed (the YAML callback wraps long messages)."""
    return " ".join(output.split())


def recap_of(output: str) -> dict[str, dict[str, int]]:
    return recap(subprocess.CompletedProcess([], 0, output, ""))


def fresh_facts(tmp_path) -> dict[str, str]:
    """An empty fact cache, as on a fresh clone: no host's interpreter is known yet."""
    cache = tmp_path / "facts"
    cache.mkdir()
    return {"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache)}


@pytest.mark.parametrize("strategy", ["motcua.ops.mitogen_linear", "linear"])
def test_waiting_for_hosts_and_resetting_connections_with_no_cached_facts(demo, tmp_path, strategy):
    # Under mitogen this failed every time: a reset that has to discover the interpreter again
    # closed the worker's broker under the new connection ("Broker that has already exitted").
    result = run(["ansible-playbook", "-i", "inventory/lab", "tests/fixtures/reconnect.yml"], timeout=600,
                 ANSIBLE_STRATEGY=strategy, **fresh_facts(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    assert {h: (r["ok"], r["failed"]) for h, r in recap(result).items()} == dict.fromkeys(COUNTERS, (3, 0))


def test_a_counter_that_starts_while_it_is_waited_for(demo, lab, tmp_path):
    lab.stop_host("w26732-pc02")
    try:
        play = subprocess.Popen(
            ["ansible-playbook", "-i", "inventory/lab", "tests/fixtures/reconnect.yml", "--limit", "site_26732"],
            cwd=ROOT, env=ansible_env(**fresh_facts(tmp_path)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        time.sleep(8)  # the play is waiting for the stopped PC, refused by a closed port
        assert play.poll() is None, play.stdout.read() if play.stdout else ""
        lab.up()
        output, _ = play.communicate(timeout=300)
    finally:
        lab.up()
    assert play.returncode == 0, output[-4000:]
    assert {h: r["failed"] for h, r in recap_of(output).items()} == {"w26732-pc01": 0, "w26732-pc02": 0}


def test_the_smoke_play_under_the_linear_strategy(demo, tmp_path):
    result = run(["ansible-playbook", "-i", "inventory/lab", "playbooks/lab_smoke.yml"], timeout=600,
                 ANSIBLE_STRATEGY="linear", **fresh_facts(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in recap(result).values())
    assert len(re.findall(r"systemd (running|degraded)", said(result.stdout))) == len(COUNTERS)


def test_a_counters_run_under_the_linear_strategy_changes_nothing(demo):
    # One counter is enough to compare the strategies (plain linear costs the most per host).
    result = run(["ansible-playbook", "-i", "inventory/lab", "playbooks/counters.yml", "--limit", "w26740-pc01"],
                 timeout=900, ANSIBLE_STRATEGY="linear")  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    counters = {h: r["changed"] for h, r in recap(result).items() if h != "localhost"}
    assert counters == {"w26740-pc01": 0}
