"""The lab's counters' layer (motcua.lab.image): its packages are exactly what the counter roles install.

The layer stands in for the DX Centre's golden image of a counter PC. A package the roles install that the
layer lacks would make every fresh lab counter install it again (slow, but green); one the layer holds that no
role installs would let a role that forgot it pass in the lab and fail on a real PC. Both directions are
checked here by evaluating each apt task's package list with Ansible's own templating, the role defaults and
vars and the lab's group variables. That a role installs a package the layer lost is the lab's test
(tests/integration/test_counters.py, the check-mode drift).
"""

from __future__ import annotations

import re
from pathlib import Path

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from motcua.lab import image
from tests.conftest import ROOT

# The playbooks that run on the counters; the roles they use (and the roles those include) are the counters'.
COUNTER_PLAYBOOKS = ("playbooks/counters.yml", "playbooks/certificates.yml", "playbooks/counter_pull.yml")
APT = ("ansible.builtin.apt", "apt")


def counter_roles() -> list[str]:
    known = {path.name for path in (ROOT / "roles").iterdir() if (path / "tasks").is_dir()}
    pattern = re.compile(r"(?:\brole|\bname):\s*([a-z_]+)\s*$", re.M)
    found: set[str] = set()
    todo = [ROOT / name for name in COUNTER_PLAYBOOKS]
    while todo:
        text = todo.pop().read_text(encoding="utf-8")
        for name in set(pattern.findall(text)) & known - found:
            found.add(name)
            todo.extend(sorted((ROOT / "roles" / name / "tasks").glob("*.yml")))
    return sorted(found)


def apt_tasks(tasks: object):
    """Every apt task in a task list, blocks included."""
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        for key in ("block", "rescue", "always"):
            yield from apt_tasks(task.get(key))
        for module in APT:
            if isinstance(task.get(module), dict):
                yield task[module]


def installed_by_roles() -> dict[str, set[str]]:
    """{package: the roles whose apt tasks install it}, with the lab's settings for the counters."""
    loader = DataLoader()
    roles = counter_roles()

    def load(path: Path) -> dict[str, object]:
        return (loader.load_from_file(str(path), trusted_as_template=True) or {}) if path.is_file() else {}

    # Ansible's precedence: role defaults, then the inventory's group variables, then role vars.
    variables: dict[str, object] = {}
    for role in roles:
        variables |= load(ROOT / "roles" / role / "defaults" / "main.yml")
    for name in ("all", "counters"):
        variables |= load(ROOT / "inventory" / "lab" / "group_vars" / f"{name}.yml")
    for role in roles:
        variables |= load(ROOT / "roles" / role / "vars" / "main.yml")
    # What the roles are given at run time: the counter exporter's instance (counter_monitoring includes
    # motcua_exporter with it) and the lab counters' certificates, a signing one and a TLS one (inventory/lab).
    variables |= {
        "motcua_exporter_instances": [{"name": "counter"}],
        "_ward_certificates_mine": [{"type": "signing", "status": "installed"}, {"type": "tls", "status": "installed"}],
    }
    templar = Templar(loader=loader, variables=variables)
    packages: dict[str, set[str]] = {}
    for role in roles:
        for path in sorted((ROOT / "roles" / role / "tasks").glob("*.yml")):
            tasks = loader.load_from_file(str(path), trusted_as_template=True)
            for args in apt_tasks(tasks):
                if args.get("state", "present") != "present":
                    continue
                names = templar.template(args["name"])
                for package in [names] if isinstance(names, str) else names:
                    packages.setdefault(str(package), set()).add(role)
    return packages


def test_the_counter_roles_are_found():
    roles = counter_roles()
    assert {"counter_base", "counter_peripherals", "counter_token", "counter_kiosk", "counter_monitoring",
            "motcua_exporter", "ward_certificates"} <= set(roles), roles  # fmt: skip
    assert not {"monitoring_prometheus", "monitoring_alertmanager"} & set(roles)


def test_the_layer_holds_exactly_what_the_counter_roles_install():
    by_roles = installed_by_roles()
    missing = {package: sorted(roles) for package, roles in by_roles.items() if package not in image.COUNTER_PACKAGES}
    assert not missing, f"installed by the roles, not in motcua.lab.image.COUNTER_PACKAGES: {missing}"
    extra = sorted(set(image.COUNTER_PACKAGES) - set(by_roles))
    assert not extra, f"in the counters' layer, installed by no counter role: {extra}"


def test_the_layer_key_follows_its_base_and_packages(tmp_path, monkeypatch):
    base = tmp_path / "images" / "bookworm-1" / "rootfs"
    first = image.layer_path(tmp_path, base)
    assert first.name == "upper" and first.parent.parent == tmp_path / "layers"
    assert image.layer_path(tmp_path, base) == first
    assert image.layer_path(tmp_path, tmp_path / "images" / "bookworm-2" / "rootfs") != first
    monkeypatch.setattr(image, "COUNTER_PACKAGES", (*image.COUNTER_PACKAGES, "vim-tiny"))
    assert image.layer_path(tmp_path, base) != first


def test_enabled_links_are_every_unit_link_but_masks(tmp_path):
    system = tmp_path / "etc/systemd/system"
    for folder, unit in (("multi-user.target.wants", "cups.service"), ("sockets.target.wants", "cups.socket"),
                         ("sysinit.target.requires", "x.service")):  # fmt: skip
        (system / folder).mkdir(parents=True, exist_ok=True)
        (system / folder / unit).symlink_to(f"/lib/systemd/system/{unit}")
    # An alias enables too: with chronyd.service left, `systemctl is-enabled chrony` said enabled, Ansible
    # enabled nothing, and chrony did not start when the lab restarted a counter.
    (system / "chronyd.service").symlink_to("/lib/systemd/system/chrony.service")
    (system / "apt-daily.timer").symlink_to("/dev/null")  # the image's masks stay
    (system / "multi-user.target.wants" / "notes.txt").write_text("not a link\n")
    assert image._enabled_links(tmp_path) == {
        "etc/systemd/system/multi-user.target.wants/cups.service",
        "etc/systemd/system/sockets.target.wants/cups.socket",
        "etc/systemd/system/sysinit.target.requires/x.service",
        "etc/systemd/system/chronyd.service",
    }
