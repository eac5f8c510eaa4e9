"""Every role documents each of its defaults in meta/argument_specs.yml, and nothing else.

Ansible validates role input against argument_specs before any task runs: a
default missing from it is an input nobody checks (prometheus-community's CI
fails on the same drift).
"""

from __future__ import annotations

import pytest
import yaml

from ..conftest import ROOT

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "defaults" / "main.yml").exists())


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_match_defaults(role):
    path = ROOT / "roles" / role
    defaults = set(yaml.safe_load((path / "defaults" / "main.yml").read_text()) or {})
    entry_points = yaml.safe_load((path / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    # Every entry point (main, or tasks_from ones such as counter_relocation's) has its tasks file.
    assert all((path / "tasks" / f"{name}.yml").is_file() for name in entry_points), f"{role}: {list(entry_points)}"
    specs = {option for entry in entry_points.values() for option in entry.get("options", {})}
    assert sorted(defaults - set(specs)) == [], f"{role}: defaults without an argument spec"
    assert sorted(set(specs) - defaults) == [], f"{role}: argument specs without a default"
    assert all(name.startswith(f"{role}_") for name in specs), f"{role}: variables must carry the role's prefix"


def test_the_counters_wrapper_and_the_fleet_tool_name_the_same_remediations():
    """motcua fleet exec asks for actions the counter's motcua-support knows and its sudoers allows."""
    import re

    import yaml

    from motcua.fleet.tools import REMEDIES

    wrapper = (ROOT / "roles" / "counter_remote_support" / "files" / "motcua-support").read_text()
    actions = re.findall(r"^    ([a-z][a-z-]+)\)$", wrapper, re.M)
    listed = re.search(r'--list\)\n\s+echo "([^"]+)"', wrapper)
    allowed = yaml.safe_load((ROOT / "roles" / "counter_remote_support" / "vars" / "main.yml").read_text())
    assert sorted(actions) == sorted(REMEDIES) == sorted(allowed["_counter_remote_support_remedies"])
    assert listed and sorted(listed.group(1).split()) == sorted(REMEDIES)
