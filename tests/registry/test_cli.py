"""`motcua validate|summary|inventory` as an operator runs them."""

from __future__ import annotations

import json
import shutil
import subprocess

import yaml

from motcua.cli import main
from tests.conftest import PRODUCTION_REGISTRY, ROOT


def test_validate_ok(capsys):
    assert main(["validate", "--registry", str(PRODUCTION_REGISTRY)]) == 0
    assert "OK: 168 wards, 4 centres" in capsys.readouterr().out


def test_validate_reports_every_problem_and_fails(base_registry, capsys):
    sites = base_registry / "sites.yml"
    text = sites.read_text(encoding="utf-8")
    text = text.replace("{code: 26740, net: 12, counters: 12}", "{code: 26740, net: 12, counters: 999}")
    text = text.replace("{code: 25747, net: 10}", "{code: 25747, net: 12}")
    sites.write_text(text, encoding="utf-8")
    before = sites.read_bytes()
    assert main(["validate", "--registry", str(base_registry)]) == 1
    err = capsys.readouterr().err
    assert "INVALID, 2 problems" in err
    assert "sites.yml:33: site 26740: field counters: 999 is outside 1..200" in err
    assert "site 26740: field net: 10.79.12.0/24 overlaps site 25747" in err
    assert sites.read_bytes() == before  # validation never writes


def test_validate_json(base_registry, capsys):
    (base_registry / "teams.yml").unlink()
    assert main(["validate", "--registry", str(base_registry), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["problems"][0]["file"].endswith("teams.yml")
    assert report["problems"][0]["message"] == "file not found"


def test_summary(capsys):
    assert (
        main(["summary", "--registry", str(PRODUCTION_REGISTRY), "--address-space", "lab", "--sites", "ttpv,26740"])
        == 0
    )
    out = capsys.readouterr().out
    assert "sites: 2  (1 wards, 1 centres)" in out
    assert "127.79.77.0/24" in out


def test_summary_unknown_site(capsys):
    assert main(["summary", "--registry", str(PRODUCTION_REGISTRY), "--sites", "99999"]) == 2
    assert "unknown site code(s): 99999" in capsys.readouterr().err


def test_inventory_host(capsys):
    assert main(["inventory", "--registry", str(PRODUCTION_REGISTRY), "--host", "w26740-pc03"]) == 0
    hostvars = json.loads(capsys.readouterr().out)
    assert hostvars["ansible_host"] == "10.79.77.23"
    assert hostvars["motcua_ward_name"] == "Phường Sài Gòn"


def test_netgear_render_writes_each_device_once(tmp_path, capsys):
    out = tmp_path / "intent"
    argv = ["netgear", "render", "-i", "inventory/lab", "--sites", "26740", "--dir", str(out), "--json", "-q"]
    assert main(argv) == 0
    written = json.loads(capsys.readouterr().out)
    assert sorted(written) == ["w26740-rt01", "w26740-sw01"]
    config = out / "w26740-sw01.cfg"
    assert written["w26740-sw01"] == {"file": str(config)}
    text = config.read_text()
    assert text.startswith("hostname w26740-sw01\nbanner login ^C\n") and " ip address 127.79.77.3 " in text
    assert "vlan 10\n name COUNTERS\n" in (out / "w26740-rt01.cfg").read_text()
    mtime = config.stat().st_mtime_ns
    assert main(argv) == 0  # unchanged text is not rewritten
    assert config.stat().st_mtime_ns == mtime
    assert main(["netgear", "render", "--sites", "99999", "--dir", str(out)]) == 2
    assert "unknown site(s): 99999" in capsys.readouterr().err


def test_accept_wards_records_a_changed_official_list(base_registry, capsys):
    """A decision adds a unit: validate refuses the new wards.csv until accept-wards records it
    with a note; the previous record goes into the history and the file stays yamllint-clean."""
    wards = base_registry / "wards.csv"
    record = base_registry / "wards.official.yml"
    wards.write_text(wards.read_text(encoding="utf-8") + "26999,Phường Mới,phuong,TP Hồ Chí Minh\n", encoding="utf-8")
    sites = base_registry / "sites.yml"
    sites.write_text(sites.read_text(encoding="utf-8") + "  - {code: 26999, net: 14}\n", encoding="utf-8")
    assert main(["validate", "--registry", str(base_registry)]) == 1
    err = capsys.readouterr().err
    assert "wards.csv" in err and "added 26999" in err and "accept-wards" in err

    before = record.read_bytes()
    assert main(["accept-wards", "--registry", str(base_registry), "--note", "  "]) == 2
    assert "--note" in capsys.readouterr().err
    assert record.read_bytes() == before

    assert main(["accept-wards", "--registry", str(base_registry), "--note", "Nghị quyết 9999/NQ-TEST"]) == 0
    assert "now 5 units" in capsys.readouterr().out
    assert main(["validate", "--registry", str(base_registry)]) == 0
    accepted = yaml.safe_load(record.read_text(encoding="utf-8"))
    assert accepted["count"] == 5 and accepted["codes"][-1] == "26999"
    assert accepted["note"] == "Nghị quyết 9999/NQ-TEST"
    assert [h["count"] for h in accepted["history"]] == [4]
    lint = subprocess.run(
        ["yamllint", "--strict", "-c", str(ROOT / ".yamllint"), str(record)], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout


def test_the_readme_example_of_a_refused_registry_is_true(tmp_path, capsys):
    """README.md shows `motcua validate` refusing two edits of the production registry: a
    misspelt key at Phường Sài Gòn and Bến Thành given Sài Gòn's subnet. The same edits give
    the same messages."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ motcua validate\n", 1)[1].split("```", 1)[0].strip().splitlines()
    registry = tmp_path / "registry"
    shutil.copytree(PRODUCTION_REGISTRY, registry)
    sites = registry / "sites.yml"
    text = sites.read_text(encoding="utf-8")
    for old, new in (("{code: 26740, net: 77}", "{code: 26740, net: 77, conters: 12}"),
                     ("{code: 26743, net: 78}", "{code: 26743, net: 77}")):  # fmt: skip
        assert old in text
        text = text.replace(old, new)
    sites.write_text(text, encoding="utf-8")
    assert main(["validate", "--registry", str(registry)]) == 1
    said = capsys.readouterr()
    lines = (said.out + said.err).strip().splitlines()
    assert lines[0].endswith(block[0].split(": ", 1)[1])  # INVALID, 2 problems:
    assert [line.split("sites.yml", 1)[1] for line in lines[1:]] == [b.split("sites.yml", 1)[1] for b in block[1:]]
