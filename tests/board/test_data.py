"""The board's data file and config: bad input is refused naming the file and the field, before the board serves."""

from __future__ import annotations

import pytest
import yaml

from motcua_exporters.board.app import load_config
from motcua_exporters.board.data import load_data
from motcua_exporters.core.config import ConfigError

GOOD = {
    "timezone": "Asia/Ho_Chi_Minh",
    "regions": [{"id": "hcm", "name": "TP Hồ Chí Minh"}],
    "lead": "lan",
    "sites": [
        {
            "code": "26740",
            "name": "Phường Sài Gòn",
            "kind": "ward",
            "region": "hcm",
            "team": "dx-hcm",
            "phase": "live",
            "devices": [{"name": "w26740-pc01", "role": "counter"}],
        }
    ],
    "people": {"lan": {"name": "Trần Thị Lan", "phone": "0900000001"}},
    "shifts": [{"person": "lan", "scope": ["26740"], "start": "2025-07-01T07:00", "end": "2025-07-01T18:00"}],
}


def broken(change) -> dict:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["sites"].append(dict(d["sites"][0])), "sites[1].code: site 26740 is listed twice"),
        (lambda d: d["sites"][0].update(region="xx"), "sites[0].region: site 26740: region 'xx' is not in regions"),
        (lambda d: d["sites"][0]["devices"][0].update(role="toaster"), "sites[0].devices[0].role: must be one of"),
        (lambda d: d["shifts"][0].update(scope=["99999"]), "shifts[0].scope: unknown site(s): 99999"),
        (lambda d: d["shifts"][0].update(person="nobody"), "shifts[0].person: 'nobody' is not in people"),
        (lambda d: d["shifts"][0].update(end="2025-07-01T06:00"), "shifts[0].end: must be after start"),
        (lambda d: d["shifts"][0].update(start="1/7/2025 07:00"), "shifts[0].start: not a date and time"),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone: unknown time zone"),
        (lambda d: d.update(lead="x"), "lead: 'x' is not in people"),
        (lambda d: d.update(sites=[]), "sites: no site"),
        (lambda d: d.update(colour="red"), "colour: unknown key"),
    ],
)
def test_a_bad_data_file_is_refused_naming_the_field(tmp_path, change, where):
    path = tmp_path / "data.yml"
    path.write_text(yaml.safe_dump(broken(change)), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_data(path)
    assert str(caught.value).startswith(f"{path}: ") and where in str(caught.value)


def test_the_good_data_file_knows_who_is_on_duty_and_next(tmp_path):
    path = tmp_path / "data.yml"
    path.write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    data = load_data(path)
    shift = data.spans[0]
    now, nxt = data.on_duty("26740", shift.start)
    assert [s.person.name for s in now] == ["Trần Thị Lan"] and not nxt
    now, nxt = data.on_duty("26740", shift.start.replace(hour=6))
    assert not now and nxt == [shift]
    assert data.on_duty(None, shift.start) == ([], [])  # nobody covers the dossier system here
    assert data.lead.name == "Trần Thị Lan"


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"prometheus": ["mon01:9090"]}, "prometheus: must be a list of http(s) URLs"),
        ({"viewers": [], "silencers": []}, "viewers: no viewer and no silencer"),
        ({"refresh": "1s"}, "refresh: must be at least 2s"),
        ({"runbook_dir": "/nonexistent"}, "runbook_dir: no such file"),
        ({"data": GOOD}, "data_file: give data_file (the data file's path) or data (its content), not both"),
        ({"data": {**GOOD, "sites": []}, "data_file": None}, "data.sites: no site"),
    ],
)
def test_a_bad_config_is_refused_naming_the_key(tmp_path, config, where):
    (tmp_path / "data.yml").write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    base = {
        "data_file": str(tmp_path / "data.yml"),
        "prometheus": ["https://127.0.0.1:9090/"],
        "alertmanager": ["https://127.0.0.1:9093/"],
        "viewers": ["viewer"],
        "silencers": ["operator"],
    }
    merged = {k: v for k, v in {**base, **config}.items() if v is not None}  # None: the key left out
    (tmp_path / "board.yml").write_text(yaml.safe_dump(merged))
    with pytest.raises(ConfigError, match=where.replace("(", r"\(").replace(")", r"\)")):
        load_config(tmp_path / "board.yml")
