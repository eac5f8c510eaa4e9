"""Grafana dashboards: the committed JSON is what the code writes, and its structure is sound.

(Grafana is not installable here; tests/integration/test_monitoring.py runs
every expression against the lab's Prometheus.)
"""

from __future__ import annotations

import json
import re

import pytest

from motcua.monitoring import dashboards
from tests.conftest import ROOT

FILES = ROOT / "roles" / "monitoring_dashboards" / "files"


def test_committed_dashboards_are_what_the_code_writes():
    rendered = dashboards.render()
    assert sorted(p.name for p in FILES.glob("*.json")) == sorted(rendered)
    for name, text in rendered.items():
        assert (FILES / name).read_text(encoding="utf-8") == text, f"{name}: run `motcua dashboards {FILES}`"


@pytest.mark.parametrize("name", sorted(dashboards.DASHBOARDS))
def test_dashboard_structure(name):
    board = json.loads(dashboards.render()[f"motcua-{name}.json"])
    assert board["schemaVersion"] == dashboards.SCHEMA_VERSION and board["uid"].startswith("motcua-")
    assert " / " in board["title"]  # Vietnamese / English
    variables = {v["name"] for v in board["templating"]["list"]}
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        assert panel["type"] in ("stat", "table", "timeseries")
        assert " / " in panel["title"] or panel["title"] == "Router"
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24
        mine = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        assert panel["datasource"]["uid"] == "${datasource}"
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
        for target in panel["targets"]:
            used = set(re.findall(r"\$(\w+)", target["expr"]))
            assert used <= variables | {"__range", "__rate_interval", "__interval"}, used
    if name == "ward":
        assert "site" in variables
