"""Ansible inventory built from the registry.

The inventory plugin (motcua.ops.registry, in collections/) and
``motcua inventory`` both call :func:`build_inventory`, so the groups and
variables are defined once, here.

Groups::

    all
    ├── sites ── wards / centres ── site_<code>   (hosts of one site, site vars)
    ├── region_hcm / region_bd / region_vt         (children: site groups)
    ├── phase_pre_production / _cut_over / _hypercare / _steady
    ├── team_<team id>                             (children: site groups)
    ├── counters, kiosks                           (hosts by role)
    ├── network_gear ── routers / switches         (network_cli connection vars)
    ├── peripherals ── printers / scanners
    └── dx_centre ── monitoring
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..registry import Host, Registry, Site
from ..registry.model import ADDRESS_SPACES, PHASES, REGIONS, ROLES
from .gear import device_intent

GEAR_ROLES = ("router", "switch")

# Variables every network device needs for cisco.ios over network_cli.
NETWORK_GEAR_VARS = {
    "ansible_connection": "ansible.netcommon.network_cli",
    "ansible_network_os": "cisco.ios.ios",
    "ansible_become_method": "enable",
}
ROLE_PARENTS = {
    "routers": "network_gear",
    "switches": "network_gear",
    "printers": "peripherals",
    "scanners": "peripherals",
}


@dataclass
class Group:
    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    vars: dict[str, object] = field(default_factory=dict)


@dataclass
class Inventory:
    groups: dict[str, Group]
    hostvars: dict[str, dict[str, object]]

    def group(self, name: str) -> Group:
        if name not in self.groups:
            self.groups[name] = Group(name)
        return self.groups[name]

    def as_ansible_json(self) -> dict[str, object]:
        """The JSON shape of ``ansible-inventory --list`` / a script inventory."""
        out: dict[str, object] = {"_meta": {"hostvars": self.hostvars}}
        for group in self.groups.values():
            entry: dict[str, object] = {}
            if group.hosts:
                entry["hosts"] = list(group.hosts)
            if group.children:
                entry["children"] = list(group.children)
            if group.vars:
                entry["vars"] = dict(group.vars)
            out[group.name] = entry
        return out


def phase_group(phase: str) -> str:
    return "phase_" + phase.replace("-", "_")


def team_group(team: str) -> str:
    return "team_" + team.replace("-", "_")


def site_vars(registry: Registry, site: Site, lab: bool) -> dict[str, object]:
    subnet = site.lab_subnet if lab else site.subnet
    gateway = registry.plan.to_lab(site.gateway) if lab else site.gateway
    monitoring = site.monitoring_address(registry.plan)
    return {
        "motcua_site_code": site.code,
        "motcua_site_name": site.name,
        "motcua_site_kind": site.kind,
        "motcua_site_ward_type": site.ward_type,
        "motcua_site_region": site.region,
        "motcua_site_region_name": site.region_name,
        "motcua_site_phase": site.phase,
        "motcua_site_team": site.team,
        "motcua_site_pull_ring": site.ring or None,  # pull.yml's roll-out ring (docs/pull.md); None: push only
        "motcua_site_subnet": str(subnet),
        "motcua_site_gateway": str(gateway),
        "motcua_site_monitoring_address": str(registry.plan.to_lab(monitoring) if lab else monitoring),
        "motcua_site_vlans": dict(site.vlans),
        "motcua_site_counters": site.counters,
        "motcua_site_street_address": site.street_address,
        "motcua_site_contacts": [
            {"name": c.name, "role": c.role, "phone": c.phone, "email": c.email} for c in site.contacts
        ],
    }


def host_vars(host: Host, site_name: str, lab: bool) -> dict[str, object]:
    return {
        "ansible_host": str(host.lab_address if lab else host.address),
        "motcua_site": host.site,
        "motcua_ward_name": site_name,
        "motcua_role": host.role,
        "motcua_number": host.number,
        "motcua_address": str(host.address),
    }


def build_inventory(registry: Registry, address_space: str = "production") -> Inventory:
    if address_space not in ADDRESS_SPACES:
        raise ValueError(f"address_space must be one of {', '.join(ADDRESS_SPACES)}, got {address_space!r}")
    lab = address_space == "lab"
    inv = Inventory(groups={}, hostvars={})
    dx_subnet = registry.plan.to_lab_network(registry.dx_subnet) if lab else registry.dx_subnet
    inv.group("all").vars.update(
        {
            "motcua_address_space": address_space,
            "motcua_registry_dir": str(registry.path.resolve()),
            "motcua_ntp_servers": [
                str(h.lab_address if lab else h.address) for h in registry.dx_hosts if h.role == "ntp"
            ],
            "motcua_dx_centre_subnet": str(dx_subnet),
            "motcua_supernet": str(
                registry.plan.to_lab_network(registry.plan.supernet) if lab else registry.plan.supernet
            ),
            # pull.yml (docs/pull.md): seconds between a counter's pulls, the random delay, the rings in order.
            "motcua_pull_interval": registry.pull.interval if registry.pull else None,
            "motcua_pull_randomized_delay": registry.pull.randomized_delay if registry.pull else None,
            "motcua_pull_rings": list(registry.pull.rings) if registry.pull else [],
        }
    )
    top = inv.group("all").children
    for name in ("sites", "network_gear", "peripherals", "dx_centre"):
        inv.group(name)
        top.append(name)
    inv.group("sites").children.extend(["wards", "centres"])
    inv.group("wards")
    inv.group("centres")  # present (maybe empty) whatever subset of sites is chosen
    for region in REGIONS:
        top.append(f"region_{region}")
        inv.group(f"region_{region}")
    for phase in PHASES:
        top.append(phase_group(phase))
        inv.group(phase_group(phase))
    for team in registry.teams:
        top.append(team_group(team))
        inv.group(team_group(team))
    for _suffix, role_group in ROLES.values():
        parent = ROLE_PARENTS.get(role_group)
        (inv.group(parent).children if parent else top).append(role_group)
        inv.group(role_group)
    inv.group("network_gear").vars.update(NETWORK_GEAR_VARS)

    for host in registry.dx_hosts:
        if host.role not in inv.groups:
            inv.group("dx_centre").children.append(host.role)
        inv.group(host.role).hosts.append(host.name)
        inv.hostvars[host.name] = host_vars(host, registry.dx_centre_name, lab)

    for site in registry.sites.values():
        group = inv.group(site.group)
        group.vars.update(site_vars(registry, site, lab))
        inv.group("wards" if site.kind == "ward" else "centres").children.append(site.group)
        inv.group(f"region_{site.region}").children.append(site.group)
        inv.group(phase_group(site.phase)).children.append(site.group)
        inv.group(team_group(site.team)).children.append(site.group)
        for host in site.hosts:
            group.hosts.append(host.name)
            inv.group(host.group).hosts.append(host.name)
            inv.hostvars[host.name] = host_vars(host, site.name, lab)
            if host.role in GEAR_ROLES:
                inv.hostvars[host.name]["motcua_netgear"] = device_intent(registry, host, lab)
    return inv
