"""The site registry: what the files say, after defaults and validation.

Objects here are immutable and fully resolved: every site has its subnet,
its gear counts and every host with its production and lab address. Code
that needs the registry (inventory plugin, validator, exporters' target
lists, alert routing, reports) imports :func:`load_registry` and reads these
objects; nothing else parses the registry files.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from ..errors import ToolError

# Former provinces merged into the city on 1 July 2025, as spelled in wards.csv.
REGIONS: dict[str, str] = {
    "hcm": "TP Hồ Chí Minh",
    "bd": "Bình Dương",
    "vt": "Bà Rịa - Vũng Tàu",
}
REGION_BY_PROVINCE = {name: code for code, name in REGIONS.items()}

WARD_TYPES: dict[str, str] = {"phuong": "Phường", "xa": "Xã", "dac_khu": "Đặc khu"}

PHASES = ("pre-production", "cut-over", "hypercare", "steady")

# Every host has a production address and a lab twin on loopback (network.yml lab_supernet).
ADDRESS_SPACES = ("production", "lab")

SITE_KINDS = ("ward", "city_centre", "regional_centre")

# role -> (host-name suffix, inventory group). Order is the order hosts are listed.
ROLES: dict[str, tuple[str, str]] = {
    "router": ("rt", "routers"),
    "switch": ("sw", "switches"),
    "kiosk": ("ki", "kiosks"),
    "counter": ("pc", "counters"),
    "printer": ("pr", "printers"),
    "scanner": ("sc", "scanners"),
}
# Gear keys in the registry (plural, as people count them) -> role.
GEAR_ROLES: dict[str, str] = {
    "routers": "router",
    "switches": "switch",
    "kiosks": "kiosk",
    "printers": "printer",
    "scanners": "scanner",
}
# A site's topology: every device reaches the DX Centre through its switch and
# the site's router(s). Monitoring derives its inhibition from this.
PARENT_ROLE: dict[str, str] = {
    "switch": "router",
    "kiosk": "switch",
    "counter": "switch",
    "printer": "switch",
    "scanner": "switch",
}
COUNTERS_MIN, COUNTERS_MAX = 1, 200
# Devices patched to an access switch port, and the VLAN (a key of the plan's
# vlans) their port carries. Counters are patched first, then the others in
# this order, filling sw01's ports before sw02's.
ACCESS_VLAN: dict[str, str] = {
    "counter": "counters",
    "printer": "peripherals",
    "scanner": "peripherals",
    "kiosk": "peripherals",
}
# VLANs every site's gear carries (network.yml must define them).
GEAR_VLANS = ("counters", "peripherals", "wifi", "management")


class UnknownSiteError(ToolError, KeyError):
    """Site codes that the registry does not have (a KeyError too: a lookup that failed)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Host:
    """One addressable device of a site (or of the DX Centre)."""

    name: str
    site: str
    role: str
    number: int
    address: IPv4Address
    lab_address: IPv4Address

    @property
    def group(self) -> str:
        return ROLES[self.role][1] if self.role in ROLES else self.role


@dataclass(frozen=True)
class NetworkPlan:
    """Supernet, per-site prefix and the fixed offsets inside each site subnet."""

    supernet: IPv4Network
    site_prefix: int
    lab_supernet: IPv4Network
    ranges: dict[str, tuple[int, int]]  # role -> (first offset, last offset)
    monitoring_offset: int
    vlans: dict[str, int]
    access_ports: int = 24  # access ports per switch: GigabitEthernet1/0/1..N

    def site_subnet(self, net: int) -> IPv4Network:
        """The ``net``-th /site_prefix block of the supernet."""
        size = 2 ** (32 - self.site_prefix)
        base = int(self.supernet.network_address) + net * size
        return IPv4Network((base, self.site_prefix))

    @property
    def site_count(self) -> int:
        return 2 ** (self.site_prefix - self.supernet.prefixlen)

    def to_lab(self, address: IPv4Address) -> IPv4Address:
        """Map a production address onto loopback, keeping its offset in the supernet."""
        offset = int(address) - int(self.supernet.network_address)
        return IPv4Address(int(self.lab_supernet.network_address) + offset)

    def to_lab_network(self, network: IPv4Network) -> IPv4Network:
        return IPv4Network((self.to_lab(network.network_address), network.prefixlen))

    def capacity(self, role: str) -> int:
        first, last = self.ranges[role]
        return last - first + 1


@dataclass(frozen=True)
class Port:
    """One access-switch port and the device patched to it."""

    switch: str  # host name, e.g. w26740-sw01
    number: int  # GigabitEthernet1/0/<number>
    host: str  # the device's host name
    vlan: str  # a key of the site's vlans

    @property
    def interface(self) -> str:
        return f"GigabitEthernet1/0/{self.number}"


@dataclass(frozen=True)
class GearUser:
    name: str
    privilege: int


@dataclass(frozen=True)
class GearPolicy:
    """What every router and switch is configured with, besides the site plan.

    Secrets (the users' password hashes, SNMPv3 pass phrases) are not here:
    they come from Ansible Vault (playbooks/network.yml) or the environment.
    """

    domain: str
    users: tuple[GearUser, ...]
    snmp_user: str
    snmp_group: str
    banner: str


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    regions: tuple[str, ...]
    file: str
    line: int


@dataclass(frozen=True)
class Contact:
    name: str
    role: str
    phone: str | None
    email: str | None


@dataclass(frozen=True)
class Site:
    """A one-stop shop: a ward, the city centre or a regional centre."""

    code: str
    name: str
    kind: str
    ward_type: str | None
    region: str
    counters: int
    gear: dict[str, int]
    phase: str
    team: str
    subnet: IPv4Network
    lab_subnet: IPv4Network
    vlans: dict[str, int]
    contacts: tuple[Contact, ...]
    street_address: str | None
    notes: str | None
    file: str
    line: int
    hosts: tuple[Host, ...] = field(default=(), compare=False)
    ports: tuple[Port, ...] = field(default=(), compare=False)
    # weekday (Monday 0) -> (opening, closing) in minutes after midnight, city time (motcua.hours)
    opening_hours: dict[int, tuple[int, int]] = field(default_factory=dict, compare=False)
    ring: str = ""  # the pull roll-out ring its counters are in (pull.yml); "" without one

    @property
    def host_prefix(self) -> str:
        """Host-name prefix: ``w26734`` for wards, the centre code for centres."""
        return f"w{self.code}" if self.kind == "ward" else self.code

    @property
    def group(self) -> str:
        return f"site_{self.code}"

    @property
    def region_name(self) -> str:
        return REGIONS[self.region]

    @property
    def gateway(self) -> IPv4Address:
        return self.hosts_by_role("router")[0].address if self.gear["routers"] else self.subnet[1]

    def hosts_by_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts if h.role == role]

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def monitoring_address(self, plan: NetworkPlan) -> IPv4Address:
        return self.subnet[plan.monitoring_offset]


@dataclass(frozen=True)
class WardReference:
    """One row of the official list (wards.csv)."""

    code: str
    name: str
    type: str
    former_province: str
    line: int


@dataclass(frozen=True)
class PullPlan:
    """Counters that configure themselves (pull.yml, docs/pull.md): how often, and the roll-out rings."""

    interval: int  # seconds between a counter's pulls
    randomized_delay: int  # seconds: each pull waits up to this long more, at random
    rings: tuple[str, ...]  # in roll-out order: the first is the canary ring


@dataclass(frozen=True)
class Registry:
    """The whole validated registry."""

    path: Path
    plan: NetworkPlan
    sites: dict[str, Site]
    teams: dict[str, Team]
    dx_centre_name: str
    dx_subnet: IPv4Network
    dx_hosts: tuple[Host, ...]
    wards: dict[str, WardReference]
    gear: GearPolicy | None = None
    pull: PullPlan | None = None  # None: no pull.yml, counters are configured by push only

    def hosts(self) -> Iterator[Host]:
        yield from self.dx_hosts
        for site in self.sites.values():
            yield from site.hosts

    @property
    def ward_sites(self) -> list[Site]:
        return [s for s in self.sites.values() if s.kind == "ward"]

    @property
    def centre_sites(self) -> list[Site]:
        return [s for s in self.sites.values() if s.kind != "ward"]

    def site(self, code: str | int) -> Site:
        key = f"{code:05d}" if isinstance(code, int) else str(code)
        return self.sites[key]

    def subset(self, codes: list[str] | None = None, max_counters: int | None = None) -> Registry:
        """The same registry with only some sites, and at most N counters each.

        The lab runs a few sites with fewer counters; addresses do not move,
        so a lab host has the same offset as its production twin.
        """
        if codes:
            unknown = [c for c in codes if c not in self.sites]
            if unknown:
                raise UnknownSiteError(f"unknown site code(s): {', '.join(unknown)}")
            chosen = {c: self.sites[c] for c in self.sites if c in set(codes)}
        else:
            chosen = dict(self.sites)
        if max_counters is not None:
            chosen = {c: _cap_counters(s, max_counters) for c, s in chosen.items()}
        return replace(self, sites=chosen)


def _cap_counters(site: Site, limit: int) -> Site:
    if site.counters <= limit:
        return site
    hosts = tuple(h for h in site.hosts if h.role != "counter" or h.number <= limit)
    names = {h.name for h in hosts}
    ports = tuple(p for p in site.ports if p.host in names)
    return replace(site, counters=limit, hosts=hosts, ports=ports)


def make_hosts(
    plan: NetworkPlan,
    code: str,
    prefix: str,
    subnet: IPv4Network,
    counts: dict[str, int],
    overrides: dict[str, IPv4Address],
) -> tuple[Host, ...]:
    """Hosts of one site, in role order, addressed by the plan's fixed offsets."""
    hosts = []
    for role, (suffix, _group) in ROLES.items():
        first, _last = plan.ranges[role]
        for number in range(1, counts[role] + 1):
            name = f"{prefix}-{suffix}{number:02d}"
            short = f"{suffix}{number:02d}"
            address = overrides.get(short) or subnet[first + number - 1]
            hosts.append(Host(name, code, role, number, address, plan.to_lab(address)))
    return tuple(hosts)


def assign_ports(
    plan: NetworkPlan, hosts: tuple[Host, ...], pinned: dict[str, tuple[str, int]]
) -> tuple[tuple[Port, ...], list[str]]:
    """Patch every access device of a site to a switch port.

    ``pinned`` maps a host name to (switch name, port) chosen in the registry;
    the others take the free ports in order (counters first, sw01 first).
    Returns the ports, and the names of hosts that found no free port.
    """
    switches = [h.name for h in hosts if h.role == "switch"]
    taken = {(switch, number) for switch, number in pinned.values()}
    free = [(s, n) for s in switches for n in range(1, plan.access_ports + 1) if (s, n) not in taken]
    ports, unplaced = [], []
    order = [h for role in ACCESS_VLAN for h in hosts if h.role == role]
    for host in order:
        if host.name in pinned:
            switch, number = pinned[host.name]
        elif free:
            switch, number = free.pop(0)
        else:
            unplaced.append(host.name)
            continue
        ports.append(Port(switch, number, host.name, ACCESS_VLAN[host.role]))
    ports.sort(key=lambda p: (p.switch, p.number))
    return tuple(ports), unplaced


def host_suffixes(counts: dict[str, int]) -> set[str]:
    return {f"{suffix}{n:02d}" for role, (suffix, _g) in ROLES.items() for n in range(1, counts[role] + 1)}


LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
