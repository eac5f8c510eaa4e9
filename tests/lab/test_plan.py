"""Lab planning and its refusals; none of this needs root."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml

from motcua.lab import lab as lab_module
from motcua.lab.lab import LabError, check_capacity, make_plan, read_inventory_config
from tests.conftest import ROOT

LAB_INVENTORY = ROOT / "inventory" / "lab"


def inventory(tmp_path: Path, body: str) -> Path:
    (tmp_path / "motcua.yml").write_text(body, encoding="utf-8")
    return tmp_path


def test_default_lab_plan(tmp_path):
    plan = make_plan(LAB_INVENTORY, tmp_path)
    assert [h.name for h in plan.counters] == [
        "ttpv-pc01", "ttpv-pc02", "w25747-pc01", "w25747-pc02",
        "w26732-pc01", "w26732-pc02", "w26740-pc01", "w26740-pc02",
    ]  # fmt: skip
    assert {d.name for d in plan.gear} >= {"w26740-rt01", "w26740-sw01", "ttpv-sw04"}
    assert (plan.dossier_address, plan.monitoring_address) == ("127.79.0.20", "127.79.0.10")
    assert [h.name for h in plan.servers] == ["dx-mon01", "dx-mon02"] and plan.hosts == [*plan.counters, *plan.servers]
    assert (plan.sink_address, plan.ntp_addresses) == ("127.79.0.25", ["127.79.0.11", "127.79.0.12"])
    # The lab inventory names the pull source where `lab up` starts it (counters pull, Prometheus scrapes).
    lab_vars = yaml.safe_load((LAB_INVENTORY / "group_vars" / "all.yml").read_text(encoding="utf-8"))
    assert plan.pull_source_address == lab_vars["motcua_lab_pull_source"] == "127.79.0.21"
    loopback = IPv4Network("127.0.0.0/8")
    for address in [*(h.address for h in plan.hosts), *(d.address for d in plan.gear), *plan.ntp_addresses]:
        assert IPv4Address(address) in loopback


def test_production_inventory_is_refused_as_a_lab():
    with pytest.raises(LabError, match="address_space must be 'lab'"):
        read_inventory_config(ROOT / "inventory" / "hcmc")


def test_unknown_site_is_refused(tmp_path):
    config = inventory(tmp_path, f"plugin: motcua.ops.registry\nregistry: {ROOT}/inventory/hcmc/registry\n"
                                 "address_space: lab\nsites: ['99999']\n")  # fmt: skip
    with pytest.raises(LabError, match="unknown site code"):
        make_plan(config, tmp_path)


def test_a_lab_larger_than_the_limit_is_refused(tmp_path):
    config = inventory(tmp_path, f"plugin: motcua.ops.registry\nregistry: {ROOT}/inventory/hcmc/registry\n"
                                 "address_space: lab\n")  # fmt: skip
    plan = make_plan(config, tmp_path)  # every site, all 1,464 counters
    with pytest.raises(LabError, match="the limit is 200 counter PCs per lab"):
        check_capacity(plan)


def test_a_lab_larger_than_memory_is_refused(tmp_path, monkeypatch):
    config = inventory(tmp_path, f"plugin: motcua.ops.registry\nregistry: {ROOT}/inventory/hcmc/registry\n"
                                 "address_space: lab\nsites: [ttpv]\nmax_counters: 60\n")  # fmt: skip
    plan = make_plan(config, tmp_path)
    monkeypatch.setattr(lab_module, "mem_available_mb", lambda: 2000.0)  # a 2 GB machine
    with pytest.raises(LabError, match=r"needs ~2400 MB .* limit is 1000 MB .* at most 25 counter PCs"):
        check_capacity(plan)


def test_inotify_limit_is_raised_for_big_labs_and_never_lowered(tmp_path, monkeypatch):
    sysctl = tmp_path / "max_user_instances"
    monkeypatch.setattr(lab_module, "INOTIFY_SYSCTL", sysctl)
    messages = []
    sysctl.write_text("128\n")
    lab_module.ensure_inotify(50, messages.append)
    assert int(sysctl.read_text()) == 128 + 16 * 50
    assert "128 -> 928" in messages[0]
    sysctl.write_text("100000\n")
    lab_module.ensure_inotify(50, messages.append)
    assert sysctl.read_text() == "100000\n" and len(messages) == 1
