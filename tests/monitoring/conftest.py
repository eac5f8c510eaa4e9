"""Shared by the monitoring tests: the lab's sites from the production registry."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT

LAB_SITES = yaml.safe_load((ROOT / "inventory" / "lab" / "motcua.yml").read_text())["sites"]


@pytest.fixture(scope="session")
def lab_registry(production_registry):
    return production_registry.subset([str(s) for s in LAB_SITES])
