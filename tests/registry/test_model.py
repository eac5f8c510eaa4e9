"""The production registry as the rest of the project sees it."""

from __future__ import annotations

import csv
from collections import Counter
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from motcua.registry import RegistryError, load_registry
from motcua.validation import Problem, text_problem
from tests.conftest import PRODUCTION_REGISTRY, ROOT

SHARED_WARDS = ROOT.parent / "shared" / "data" / "wards.csv"


def official_wards() -> list[dict[str, str]]:
    with (PRODUCTION_REGISTRY / "wards.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_all_168_wards_and_4_centres(production_registry):
    wards = production_registry.ward_sites
    assert len(wards) == 168
    assert {s.code for s in wards} == {row["code"] for row in official_wards()}
    assert sorted(s.code for s in production_registry.centre_sites) == ["kvbd", "kvhcm", "kvvt", "ttpv"]
    assert Counter(s.ward_type for s in wards) == {"phuong": 113, "xa": 54, "dac_khu": 1}
    assert Counter(s.region for s in wards) == {"hcm": 102, "bd": 36, "vt": 30}


def test_ward_names_come_from_the_official_list(production_registry):
    for row in official_wards():
        assert production_registry.site(row["code"]).name == row["name"]


def test_city_centre(production_registry):
    centre = production_registry.site("ttpv")
    assert centre.kind == "city_centre"
    assert "43 Nguyễn Văn Bá" in centre.street_address
    assert centre.region == "hcm"
    assert centre.phase == "hypercare"
    assert {s.kind for s in production_registry.centre_sites} == {"city_centre", "regional_centre"}
    assert {s.region for s in production_registry.centre_sites if s.kind == "regional_centre"} == {"hcm", "bd", "vt"}


def test_ip_plan_is_deterministic_and_readable(production_registry):
    site = production_registry.site(26740)  # Phường Sài Gòn, net 77
    assert site.subnet == IPv4Network("10.79.77.0/24")
    hosts = {h.name: h for h in site.hosts}
    assert hosts["w26740-rt01"].address == IPv4Address("10.79.77.1")
    assert hosts["w26740-sw01"].address == IPv4Address("10.79.77.3")
    assert hosts["w26740-pc03"].address == IPv4Address("10.79.77.23")
    assert hosts["w26740-pr01"].address == IPv4Address("10.79.77.221")
    assert hosts["w26740-sc02"].address == IPv4Address("10.79.77.238")
    assert site.monitoring_address(production_registry.plan) == IPv4Address("10.79.77.9")
    again = load_registry(PRODUCTION_REGISTRY)
    assert [(h.name, h.address) for h in again.hosts()] == [(h.name, h.address) for h in production_registry.hosts()]


def test_every_address_unique_and_inside_its_site(production_registry):
    plan = production_registry.plan
    seen: set[IPv4Address] = set()
    subnets = []
    for site in production_registry.sites.values():
        assert site.subnet.subnet_of(plan.supernet)
        assert not site.subnet.overlaps(production_registry.dx_subnet)
        subnets.append(site.subnet)
        for host in site.hosts:
            assert host.address in site.subnet
            assert host.address not in seen
            seen.add(host.address)
    assert len(set(subnets)) == len(subnets)
    assert 2_400 <= len(seen) <= 3_000  # "about 2,500 hosts" in production


def test_lab_addresses_are_loopback_with_the_same_offsets(production_registry):
    loopback = IPv4Network("127.0.0.0/8")
    for host in production_registry.hosts():
        assert host.lab_address in loopback
        assert int(host.lab_address) & 0xFFFF == int(host.address) & 0xFFFF
    dx = production_registry.dx_hosts
    assert [(h.name, str(h.lab_address)) for h in dx] == [
        ("dx-mon01", "127.79.0.10"),
        ("dx-mon02", "127.79.0.13"),
        ("dx-ntp01", "127.79.0.11"),
        ("dx-ntp02", "127.79.0.12"),
    ]


def test_subset_for_the_lab(production_registry):
    lab = production_registry.subset(["ttpv", "26740"], max_counters=2)
    assert list(lab.sites) == ["ttpv", "26740"]
    assert [h.name for h in lab.site("26740").hosts if h.role == "counter"] == ["w26740-pc01", "w26740-pc02"]
    assert lab.site("ttpv").counters == 2
    assert production_registry.site("ttpv").counters == 60  # the original is untouched
    with pytest.raises(KeyError, match="99999"):
        production_registry.subset(["99999"])


def test_repository_copy_of_wards_matches_the_reference():
    if not SHARED_WARDS.exists():
        pytest.skip(f"{SHARED_WARDS} is not beside this checkout")
    assert (PRODUCTION_REGISTRY / "wards.csv").read_bytes() == SHARED_WARDS.read_bytes()


def test_registry_error_lists_every_problem(tmp_path: Path):
    with pytest.raises(RegistryError) as info:
        load_registry(tmp_path / "nowhere")
    assert "registry directory not found" in str(info.value)
    problem = Problem("sites.yml", 12, "26740", "counters", "250 is outside 1..200")
    assert str(problem) == "sites.yml:12: site 26740: field counters: 250 is outside 1..200"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Phường Sài Gòn", None),
        ("Đặc khu Côn Đảo", None),
        ("Bà Rịa - Vũng Tàu", None),
        ("43 Nguyễn Văn Bá, phường Thủ Đức", None),
        ("XÃ£ BÃ¬nh ChÃ¡nh", "mis-encoded"),
        ("Phu\u031b\u0300o\u031bng", "NFC"),
        ("Ph\ufffdng", "U+FFFD"),
        ("Quầy\x07", "control"),
    ],
)
def test_text_problem(text: str, expected: str | None):
    problem = text_problem(text)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem


def test_every_official_name_passes_the_text_checks():
    assert [row["name"] for row in official_wards() if text_problem(row["name"])] == []


def test_the_pull_rings_of_the_registry(production_registry):
    """pull.yml: the canary ring's sites by name, every other site in the last ring; the inventory's lab
    subset keeps each site's ring."""
    plan = production_registry.pull
    assert plan is not None and plan.rings == ("canary", "all")
    assert (plan.interval, plan.randomized_delay) == (1800, 600)
    canary = {code for code, site in production_registry.sites.items() if site.ring == "canary"}
    assert canary == {"26740", "25747", "26732"}
    assert {site.ring for site in production_registry.sites.values()} == {"canary", "all"}
    assert production_registry.subset(["ttpv", "26740"]).site("26740").ring == "canary"
