"""Load and validate a registry directory.

A registry directory holds four files:

``network.yml``  the IP plan (supernet, per-site prefix, offsets, VLANs, lab mapping)
``teams.yml``    the DX Centre support teams and which regions they cover
``sites.yml``    defaults, the centres and one line per ward
``wards.csv``    the official list of the 168 wards (reference data, read-only)

:func:`check_registry` returns every problem found in one pass;
:func:`load_registry` raises :class:`RegistryError` carrying them.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from ..hours import DEFAULT_OPENING_HOURS, Opening, parse_opening
from ..validation import Checker, Field, InputError, LineDict, LineList, Problem, load_csv, load_yaml, text_problem
from ..validation.fields import device_text_problem
from .model import (
    ACCESS_VLAN,
    COUNTERS_MAX,
    COUNTERS_MIN,
    GEAR_ROLES,
    GEAR_VLANS,
    LOOPBACK,
    PHASES,
    REGION_BY_PROVINCE,
    REGIONS,
    ROLES,
    WARD_TYPES,
    Contact,
    GearPolicy,
    GearUser,
    Host,
    NetworkPlan,
    PullPlan,
    Registry,
    Site,
    Team,
    WardReference,
    assign_ports,
    host_suffixes,
    make_hosts,
)
from .official import RECORD_NAME, check_record

FILES = ("network.yml", "teams.yml", "sites.yml", "wards.csv", RECORD_NAME)
PULL_FILE = "pull.yml"  # optional: counters that configure themselves (docs/pull.md)


class RegistryError(InputError):
    """The site registry is invalid; carries every problem found."""

    what = "site registry"


# DX Centre host-name stems -> the inventory group they join.
DX_ROLES = {"mon": "monitoring", "ntp": "ntp"}

_PLAN_ROLES = tuple(ROLES)  # router, switch, kiosk, counter, printer, scanner

NETWORK_SPEC = {
    "supernet": Field("cidr", required=True),
    "site_prefix": Field("int", required=True, minimum=16, maximum=29),
    "lab_supernet": Field("cidr", required=True),
    "dx_centre": Field("mapping", required=True),
    "ranges": Field("mapping", required=True),
    "monitoring_offset": Field("int", required=True, minimum=1),
    "vlans": Field("mapping", required=True),
    "access_ports": Field("int", required=True, minimum=1, maximum=48),
    "gear": Field("mapping", required=True),
}
GEAR_POLICY_SPEC = {
    "domain": Field("domain", required=True),
    "users": Field("list", required=True),
    "snmp": Field("mapping", required=True),
    "banner": Field("text", required=True, multiline=True),
}
GEAR_USER_SPEC = {
    "name": Field("ident", required=True),
    "privilege": Field("int", required=True, minimum=0, maximum=15),
}
GEAR_SNMP_SPEC = {"user": Field("ident", required=True), "group": Field("ident", required=True)}
DX_SPEC = {
    "name": Field("text", required=True, device=True),  # the gear's snmp-server contact
    "net": Field("int", required=True, minimum=0),
    "hosts": Field("mapping", required=True),
}
TEAM_SPEC = {
    "id": Field("ident", required=True),
    "name": Field("text", required=True),
    "regions": Field("list"),
}
GEAR_SPEC = {key: Field("int", minimum=0, maximum=64) for key in GEAR_ROLES}
SITE_COMMON = {
    "counters": Field("int", minimum=COUNTERS_MIN, maximum=COUNTERS_MAX),
    "gear": Field("mapping"),
    "phase": Field("text", choices=PHASES),
    "opening_hours": Field("mapping"),
    "team": Field("ident"),
    "net": Field("int", minimum=0),
    "subnet": Field("cidr"),
    "vlans": Field("mapping"),
    "ports": Field("mapping"),
    "addresses": Field("mapping"),
    "contacts": Field("list"),
    "address": Field("text"),
    "notes": Field("text"),
}
DEFAULTS_SPEC = {
    "counters": Field("int", required=True, minimum=COUNTERS_MIN, maximum=COUNTERS_MAX),
    "gear": Field("mapping", required=True),
    "phase": Field("text", required=True, choices=PHASES),
    "opening_hours": Field("mapping"),  # motcua.hours; DEFAULT_OPENING_HOURS when absent
}
WARD_SPEC = {"code": Field("code", required=True), "name": Field("text"), **SITE_COMMON}
CENTRE_SPEC = {
    "code": Field("code", required=True),
    "name": Field("text", required=True, device=True),  # the gear's snmp-server location
    "kind": Field("text", required=True, choices=("city_centre", "regional_centre")),
    "region": Field("text", required=True, choices=tuple(REGIONS)),
    "ward": Field("code"),
    **SITE_COMMON,
}
CONTACT_SPEC = {
    "name": Field("text", required=True),
    "role": Field("text", required=True),
    "phone": Field("text"),
    "email": Field("text"),
}
_PHONE = re.compile(r"^\+?[0-9][0-9 .-]{7,16}[0-9]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)


def check_registry(directory: str | os.PathLike[str]) -> tuple[Registry | None, list[Problem]]:
    """Validate a registry directory; return the registry (if valid) and all problems."""
    root = Path(directory)
    problems: list[Problem] = []
    if not root.is_dir():
        problems.append(Problem(str(root), 0, "", "", "registry directory not found"))
        return None, problems
    label = {name: _label(root / name) for name in FILES}

    wards = _load_wards(root / "wards.csv", label["wards.csv"], problems)
    if wards is not None:
        check_record(root, label[RECORD_NAME], label["wards.csv"], list(wards), problems)
    plan, dx, gear = _load_network(root / "network.yml", label["network.yml"], problems)
    teams = _load_teams(root / "teams.yml", label["teams.yml"], problems)
    sites = _load_sites(root / "sites.yml", label["sites.yml"], plan, teams, wards, problems)

    if plan is not None and dx is not None and sites is not None:
        _check_addresses(plan, dx, sites, label, problems)
    pull = None
    # Checked against valid sites only: a site refused above would show up here again as unknown.
    if (root / PULL_FILE).exists() and sites is not None and not problems:
        pull, rings = _load_pull(root / PULL_FILE, _label(root / PULL_FILE), sites, problems)
        sites = {code: replace(site, ring=rings.get(code, "")) for code, site in sites.items()}
    if problems or plan is None or dx is None or sites is None or wards is None or teams is None:
        return None, sorted(problems)
    registry = Registry(
        path=root,
        plan=plan,
        sites=sites,
        teams=teams,
        dx_centre_name=dx[0],
        dx_subnet=dx[1],
        dx_hosts=dx[2],
        wards=wards,
        gear=gear,
        pull=pull,
    )
    return registry, problems


PULL_SPEC = {
    # A counter pulls every `interval` (5 minutes to a day), plus up to `randomized_delay` at random.
    "interval": Field("duration", required=True, minimum=300, maximum=86400),
    "randomized_delay": Field("duration", minimum=0, maximum=86400),
    "rings": Field("list", required=True),
}
RING_SPEC = {"name": Field("ident", required=True), "sites": Field("list")}


def _load_pull(
    path: Path, label: str, sites: dict[str, Site], problems: list[Problem]
) -> tuple[PullPlan | None, dict[str, str]]:
    """pull.yml: the plan, and each site's ring. Rings go in roll-out order; every ring but the last
    lists its sites; the last may leave them out: every site no earlier ring names."""
    doc = load_yaml(path, label, problems)
    if doc is None:
        return None, {}
    check = Checker(label, problems)
    top = check.mapping(doc, 1, "", "")
    if top is None:
        return None, {}
    before = len(problems)
    values = check.fields(top, "", "", PULL_SPEC)
    interval, delay = values.get("interval"), values.get("randomized_delay", 0)
    if isinstance(interval, int) and isinstance(delay, int) and delay >= interval:
        check.report(top.line_of("randomized_delay"), "", "randomized_delay",
                     f"must be shorter than the interval ({interval} s): pulls would bunch up")  # fmt: skip
    raw_rings = values.get("rings")
    names: list[str] = []
    ring_of: dict[str, str] = {}
    if isinstance(raw_rings, LineList):
        if not raw_rings:
            check.report(top.line_of("rings"), "", "rings", "names no ring: write at least one, e.g. {name: all}")
        for index, raw in enumerate(raw_rings):
            where = f"rings[{index}]"
            entry = check.mapping(raw, raw_rings.line_of(index), "", where)
            if entry is None:
                continue
            ring = check.fields(entry, "", f"{where}.", RING_SPEC)
            name = ring.get("name")
            if not isinstance(name, str):
                continue
            if name in names:
                check.report(entry.line_of("name"), "", f"{where}.name", f"ring {name!r} is named twice")
                continue
            names.append(name)
            last = index == len(raw_rings) - 1
            listed = ring.get("sites")
            if listed is None:
                if not last:
                    check.report(entry.line, "", f"{where}.sites",
                                 f"ring {name!r} must list its sites (only the last ring may leave them out: the "
                                 "rest)")  # fmt: skip
                else:
                    ring_of.update({code: name for code in sites if code not in ring_of})
                continue
            if not listed:
                check.report(entry.line_of("sites"), "", f"{where}.sites", f"ring {name!r} lists no site")
            for n, raw_code in enumerate(listed):  # type: ignore[arg-type]
                code = check.value(raw_code, Field("code"), entry.line_of("sites"), "", f"{where}.sites[{n}]")
                if not isinstance(code, str):
                    continue
                if code not in sites:
                    check.report(entry.line_of("sites"), code, f"{where}.sites",
                                 f"ring {name!r} names site {code}, which is not in the registry")  # fmt: skip
                elif code in ring_of:
                    check.report(entry.line_of("sites"), code, f"{where}.sites",
                                 f"site {code} is in ring {ring_of[code]!r} already: one ring a site")  # fmt: skip
                else:
                    ring_of[code] = name
        left = [code for code in sites if code not in ring_of]
        if names and left and len(problems) == before:
            check.report(top.line_of("rings"), "", "rings",
                         f"{len(left)} site(s) in no ring ({', '.join(left[:5])}{', ...' if len(left) > 5 else ''}): "
                         "list them, or leave the last ring's sites out (the rest)")  # fmt: skip
    if len(problems) != before or not isinstance(interval, int):
        return None, {}
    return PullPlan(interval, int(delay), tuple(names)), ring_of


def load_registry(directory: str | os.PathLike[str]) -> Registry:
    """The validated registry, or :class:`RegistryError` with every problem."""
    registry, problems = check_registry(directory)
    if problems or registry is None:
        raise RegistryError(problems)
    return registry


def ward_codes(directory: str | os.PathLike[str]) -> tuple[list[str], list[Problem]]:
    """The codes of wards.csv in file order, and the problems of the file itself (for accept-wards)."""
    root = Path(directory)
    problems: list[Problem] = []
    wards = _load_wards(root / "wards.csv", _label(root / "wards.csv"), problems)
    return list(wards or {}), problems


def _label(path: Path) -> str:
    """Paths in messages: relative to the working directory when that is shorter."""
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)


def _load_wards(path: Path, label: str, problems: list[Problem]) -> dict[str, WardReference] | None:
    rows = load_csv(path, label, problems)
    if rows is None:
        return None
    check = Checker(label, problems)
    wards: dict[str, WardReference] = {}
    expected = ["code", "name", "type", "former_province"]
    if rows and list(rows[0][1]) != expected:
        check.report(1, "", "header", f"columns must be {','.join(expected)}, got {','.join(rows[0][1])}")
        return None
    for line, row in rows:
        code = (row.get("code") or "").strip()
        site = code or f"row {line}"
        if not (code.isdigit() and len(code) == 5):
            check.report(line, site, "code", f"{code!r} is not a 5-digit ward code")
            continue
        if code in wards:
            check.report(line, site, "code", f"duplicate ward code (first at line {wards[code].line})")
            continue
        name = row.get("name") or ""
        problem = (text_problem(name) or device_text_problem(name)) if name else "must not be empty"
        if problem:
            check.report(line, site, "name", problem)
        if row.get("type") not in WARD_TYPES:
            check.report(line, site, "type", f"{row.get('type')!r} is not one of {', '.join(WARD_TYPES)}")
        if row.get("former_province") not in REGION_BY_PROVINCE:
            check.report(
                line,
                site,
                "former_province",
                f"{row.get('former_province')!r} is not one of {', '.join(REGION_BY_PROVINCE)}",
            )
        wards[code] = WardReference(code, name, row.get("type") or "", row.get("former_province") or "", line)
    return wards


def _load_network(
    path: Path, label: str, problems: list[Problem]
) -> tuple[NetworkPlan | None, tuple[str, IPv4Network, tuple[Host, ...]] | None, GearPolicy | None]:
    doc = load_yaml(path, label, problems)
    if doc is None:
        return None, None, None
    check = Checker(label, problems, kind="section")
    section = "network"
    top = check.mapping(doc, 1, section, "")
    if top is None:
        return None, None, None
    before = len(problems)
    values = check.fields(top, section, "", NETWORK_SPEC)
    plan, dx = _network_plan(check, top, values, problems, before)
    gear = _check_gear_policy(check, values.get("gear"))
    return plan, dx, gear


def _check_gear_policy(check: Checker, raw: object) -> GearPolicy | None:
    """network.yml's gear section: users, SNMPv3 names, the login banner."""
    if not isinstance(raw, LineDict):
        return None
    section = "gear"
    mark = len(check.problems)
    values = check.fields(raw, section, "gear.", GEAR_POLICY_SPEC)
    users: list[GearUser] = []
    for index, item in enumerate(values.get("users") or []):
        line = values["users"].line_of(index)  # type: ignore[attr-defined]
        entry = check.mapping(item, line, section, f"gear.users[{index}]")
        if entry is None:
            continue
        user = check.fields(entry, section, f"gear.users[{index}].", GEAR_USER_SPEC)
        if "name" in user and "privilege" in user:
            if any(u.name == user["name"] for u in users):
                check.report(line, section, f"gear.users[{index}].name", f"user {user['name']!r} is listed twice")
            users.append(GearUser(str(user["name"]), int(user["privilege"])))  # type: ignore[call-overload]
    if "users" in values and not users and len(check.problems) == mark:
        check.report(raw.line_of("users"), section, "gear.users", "at least one administrator is needed")
    snmp = values.get("snmp")
    snmp_values = check.fields(snmp, section, "gear.snmp.", GEAR_SNMP_SPEC) if isinstance(snmp, LineDict) else {}
    banner = values.get("banner")
    if isinstance(banner, str):
        bad = sorted({ch for ch in banner if not (ch.isascii() and (ch.isprintable() or ch == "\n"))})
        if bad:
            check.report(
                raw.line_of("banner"),
                section,
                "gear.banner",
                f"network gear prints banners as ASCII; write Vietnamese without diacritics (found {''.join(bad)!r})",
            )
        if "^" in banner:
            check.report(raw.line_of("banner"), section, "gear.banner", "'^' is the banner delimiter on IOS")
    if len(check.problems) != mark:
        return None
    return GearPolicy(
        domain=str(values["domain"]),
        users=tuple(users),
        snmp_user=str(snmp_values["user"]),
        snmp_group=str(snmp_values["group"]),
        banner=str(banner).strip("\n"),
    )


def _network_plan(
    check: Checker, top: LineDict, values: dict[str, object], problems: list[Problem], before: int
) -> tuple[NetworkPlan | None, tuple[str, IPv4Network, tuple[Host, ...]] | None]:
    """network.yml's plan (supernets, role ranges, VLANs) and the DX Centre's block and hosts."""
    supernet, prefix = values.get("supernet"), values.get("site_prefix")
    lab, monitoring = values.get("lab_supernet"), values.get("monitoring_offset")
    _check_supernets(check, top, supernet, prefix, lab)
    raw_ranges = values.get("ranges")
    ranges = _check_ranges(check, raw_ranges) if isinstance(raw_ranges, LineDict) else {}
    vlans = _check_vlans(check, values.get("vlans"), "network", "vlans")
    if vlans is not None:
        missing = [name for name in GEAR_VLANS if name not in vlans]
        if missing:
            check.report(top.line_of("vlans"), "network", "vlans",
                         f"the site plan needs these VLANs too: {', '.join(missing)}")  # fmt: skip
    if isinstance(prefix, int) and ranges:
        _check_offsets(check, top, raw_ranges, prefix, ranges, monitoring)
    if (
        len(problems) != before
        or not isinstance(supernet, IPv4Network)
        or not isinstance(lab, IPv4Network)
        or not isinstance(prefix, int)
        or not isinstance(monitoring, int)
    ):
        return None, None
    access_ports = values.get("access_ports", 24)
    plan = NetworkPlan(supernet, prefix, lab, ranges, monitoring, vlans or {},
                       access_ports if isinstance(access_ports, int) else 24)  # fmt: skip
    dx_raw = values["dx_centre"]
    assert isinstance(dx_raw, LineDict)  # checked by NETWORK_SPEC (no problem was reported)
    return plan, _dx_centre(check, plan, dx_raw, problems, before)


def _check_supernets(check: Checker, top: LineDict, supernet: object, prefix: object, lab: object) -> None:
    """The site prefix fits the supernet; the lab supernet is loopback and of the same size."""
    section = "network"
    if isinstance(supernet, IPv4Network) and isinstance(prefix, int) and prefix <= supernet.prefixlen:
        check.report(top.line_of("site_prefix"), section, "site_prefix",
                     f"/{prefix} is not smaller than the supernet {supernet}")  # fmt: skip
    if not isinstance(lab, IPv4Network):
        return
    if not lab.subnet_of(LOOPBACK):
        check.report(top.line_of("lab_supernet"), section, "lab_supernet", f"{lab} is not inside 127.0.0.0/8")
    elif isinstance(supernet, IPv4Network) and lab.prefixlen != supernet.prefixlen:
        check.report(top.line_of("lab_supernet"), section, "lab_supernet",
                     f"{lab} must be the same size as the supernet {supernet} (/{supernet.prefixlen})")  # fmt: skip


def _check_ranges(check: Checker, raw_ranges: LineDict) -> dict[str, tuple[int, int]]:
    """``ranges``: one [first, last] offset pair for every role of the plan."""
    section = "network"
    ranges: dict[str, tuple[int, int]] = {}
    for key in raw_ranges:
        if key not in _PLAN_ROLES:
            check.report(raw_ranges.line_of(key), section, f"ranges.{key}",
                         f"unknown role (known: {', '.join(_PLAN_ROLES)})")  # fmt: skip
    for role in _PLAN_ROLES:
        item = raw_ranges.get(role)
        if item is None:
            check.report(raw_ranges.line, section, f"ranges.{role}", "required field is missing")
            continue
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in item)
            or not 1 <= item[0] <= item[1]
        ):
            check.report(raw_ranges.line_of(role), section, f"ranges.{role}",
                         f"must be [first, last] offsets with 1 <= first <= last, got {item!r}")  # fmt: skip
            continue
        ranges[role] = (item[0], item[1])
    return ranges


def _check_offsets(
    check: Checker, top: LineDict, raw_ranges: object, prefix: int, ranges: dict[str, tuple[int, int]],
    monitoring: object,
) -> None:  # fmt: skip
    """The role ranges and the monitoring offset fit a site block, do not overlap, and hold every counter."""
    section = "network"
    top_offset = 2 ** (32 - prefix) - 2
    spans = sorted((first, last, f"ranges.{role}") for role, (first, last) in ranges.items())
    if isinstance(monitoring, int):
        spans = sorted([*spans, (monitoring, monitoring, "monitoring_offset")])
    for _first, last, name in spans:
        if last > top_offset:
            check.report(top.line, section, name,
                         f"offset {last} does not fit a /{prefix} (last usable offset {top_offset})")  # fmt: skip
    for (first1, last1, name1), (first2, _last2, name2) in itertools.pairwise(spans):
        if first2 <= last1:
            check.report(top.line, section, name2, f"offsets {first2}.. overlap {name1} ({first1}..{last1})")
    if "counter" in ranges and ranges["counter"][1] - ranges["counter"][0] + 1 < COUNTERS_MAX:
        line = raw_ranges.line_of("counter") if isinstance(raw_ranges, LineDict) else top.line
        allowed = f"{COUNTERS_MIN}..{COUNTERS_MAX}"
        check.report(line, section, "ranges.counter",
                     f"must hold {COUNTERS_MAX} counters (the registry allows {allowed})")  # fmt: skip


def _dx_centre(
    check: Checker, plan: NetworkPlan, dx_raw: LineDict, problems: list[Problem], before: int
) -> tuple[str, IPv4Network, tuple[Host, ...]] | None:
    """The DX Centre's name, block and hosts (``mon01`` -> ``dx-mon01``, role monitoring)."""
    dx = check.fields(dx_raw, "dx_centre", "dx_centre.", DX_SPEC)
    net, raw_hosts = dx.get("net"), dx.get("hosts")
    if len(problems) != before or not isinstance(net, int) or not isinstance(raw_hosts, LineDict):
        return None
    if net >= plan.site_count:
        blocks = f"{plan.supernet} in /{plan.site_prefix} blocks"
        check.report(dx_raw.line_of("net"), "dx_centre", "dx_centre.net",
                     f"{net} is outside 0..{plan.site_count - 1} for {blocks}")  # fmt: skip
        return None
    subnet = plan.site_subnet(net)
    hosts = []
    for name, offset in raw_hosts.items():
        field_name = f"dx_centre.hosts.{name}"
        line = raw_hosts.line_of(name)
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", name):
            check.report(line, "dx_centre", field_name, "host names must be lower-case letters, digits and '-'")
            continue
        if isinstance(offset, bool) or not isinstance(offset, int) or not 1 <= offset < subnet.num_addresses - 1:
            check.report(line, "dx_centre", field_name,
                         f"offset must be a number in 1..{subnet.num_addresses - 2}, got {offset!r}")  # fmt: skip
            continue
        address = subnet[offset]
        base = name.rstrip("0123456789") or name
        number = int(name[len(base) :] or 0)
        hosts.append(Host(f"dx-{name}", "dx", DX_ROLES.get(base, base), number, address, plan.to_lab(address)))
    if len(problems) != before:
        return None
    return str(dx["name"]), subnet, tuple(hosts)


def _check_vlans(check: Checker, raw: object, site: str, field: str) -> dict[str, int] | None:
    if not isinstance(raw, LineDict):
        return None
    vlans: dict[str, int] = {}
    seen: dict[int, str] = {}
    for name, vid in raw.items():
        line = raw.line_of(name)
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            check.report(line, site, f"{field}.{name}", "VLAN names must be lower-case letters, digits and '_'")
            continue
        if isinstance(vid, bool) or not isinstance(vid, int) or not 2 <= vid <= 4094:
            check.report(line, site, f"{field}.{name}", f"VLAN id must be a number in 2..4094, got {vid!r}")
            continue
        if vid in seen:
            check.report(line, site, f"{field}.{name}", f"VLAN id {vid} is already used by {seen[vid]!r}")
            continue
        seen[vid] = name
        vlans[name] = vid
    return vlans


def _load_teams(path: Path, label: str, problems: list[Problem]) -> dict[str, Team] | None:
    doc = load_yaml(path, label, problems)
    if doc is None:
        return None
    check = Checker(label, problems, kind="team")
    before = len(problems)
    top = check.mapping(doc, 1, "teams", "")
    if top is None:
        return None
    check.fields(top, "teams", "", {"teams": Field("list", required=True)})
    entries = top.get("teams")
    if not isinstance(entries, list):
        return None
    teams: dict[str, Team] = {}
    covered: dict[str, str] = {}
    for index, raw in enumerate(entries):
        line = entries.line_of(index)  # type: ignore[attr-defined]
        entry = check.mapping(raw, line, f"teams[{index}]", "")
        if entry is None:
            continue
        name = str(entry.get("id", f"teams[{index}]"))
        values = check.fields(entry, name, "", TEAM_SPEC)
        if "id" not in values:
            continue
        if name in teams:
            check.report(line, name, "id", f"duplicate team id (first at line {teams[name].line})")
            continue
        regions = []
        for region in values.get("regions", []):  # type: ignore[union-attr]
            if region not in REGIONS:
                check.report(
                    entry.line_of("regions"), name, "regions", f"{region!r} is not one of {', '.join(REGIONS)}"
                )
            elif region in covered:
                check.report(
                    entry.line_of("regions"),
                    name,
                    "regions",
                    f"region {region!r} is already the default of team {covered[region]!r}",
                )
            else:
                covered[region] = name
                regions.append(region)
        teams[name] = Team(name, str(values.get("name", name)), tuple(regions), label, line)
    for region in REGIONS:
        if region not in covered and len(problems) == before:
            check.report(
                top.line_of("teams"), "", "teams[].regions", f"no team covers region {region!r} ({REGIONS[region]})"
            )
    return teams


@dataclass
class _SiteContext:
    """What every site entry of sites.yml is checked against."""

    defaults: dict[str, object]
    default_gear: dict[str, int]
    plan: NetworkPlan | None
    teams: dict[str, Team] | None
    wards: dict[str, WardReference] | None
    team_by_region: dict[str, str]
    nets: dict[int, str] = field(default_factory=dict)  # site block index -> the site that holds it


def _load_sites(
    path: Path,
    label: str,
    plan: NetworkPlan | None,
    teams: dict[str, Team] | None,
    wards: dict[str, WardReference] | None,
    problems: list[Problem],
) -> dict[str, Site] | None:
    doc = load_yaml(path, label, problems)
    if doc is None:
        return None
    check = Checker(label, problems)
    top = check.mapping(doc, 1, "sites", "")
    if top is None:
        return None
    before = len(problems)
    sections = check.fields(top, "", "", {
        "defaults": Field("mapping", required=True),
        "centres": Field("list", required=True),
        "wards": Field("list", required=True),
    })  # fmt: skip
    raw_defaults = sections.get("defaults")
    if not isinstance(raw_defaults, LineDict):
        return None
    defaults = check.fields(raw_defaults, "defaults", "defaults.", DEFAULTS_SPEC)
    default_gear = _check_gear(check, defaults.get("gear"), "defaults", "defaults.gear", required=True)
    defaults["opening_hours"] = _check_opening(check, raw_defaults, defaults, "defaults",
                                             parse_opening(DEFAULT_OPENING_HOURS)[0])  # fmt: skip
    if len(problems) != before:
        return None
    team_by_region = {r: t.id for t in (teams or {}).values() for r in t.regions}
    context = _SiteContext(defaults, default_gear or {}, plan, teams, wards, team_by_region)
    sites: dict[str, Site] = {}
    first_line: dict[str, int] = {}
    for kind_key, spec in (("centres", CENTRE_SPEC), ("wards", WARD_SPEC)):
        entries = sections.get(kind_key)
        if isinstance(entries, LineList):
            for index, raw in enumerate(entries):
                site = _site_entry(check, context, kind_key, spec, entries.line_of(index), index, raw, first_line)
                if site is not None:
                    sites[site.code] = site
    if wards is not None:
        for code, ward in wards.items():
            if code not in first_line:
                check.report(top.line_of("wards"), code, "code",
                             f"{ward.name} is in wards.csv but has no entry in the wards list")  # fmt: skip
    return sites


def _site_entry(
    check: Checker, context: _SiteContext, kind_key: str, spec: dict[str, Field], line: int, index: int,
    raw: object, first_line: dict[str, int],
) -> Site | None:  # fmt: skip
    """One entry of the centres or wards list: its site, or None (with its problems reported)."""
    entry = check.mapping(raw, line, f"{kind_key}[{index}]", "")
    if entry is None:
        return None
    code_raw = entry.get("code")
    if isinstance(code_raw, int) and not isinstance(code_raw, bool):
        site_label = f"{code_raw:05d}"
    else:
        site_label = str(code_raw or f"{kind_key}[{index}]")
    mark = len(check.problems)
    values = check.fields(entry, site_label, "", spec)
    code = values.get("code")
    if not isinstance(code, str):
        return None
    if code in first_line:
        check.report(line, site_label, "code", f"duplicate site code (first at line {first_line[code]})")
        return None
    first_line[code] = line
    site = _build_site(check, context, entry, values, kind_key, code, line)
    return site if len(check.problems) == mark else None


def _check_opening(check: Checker, entry: LineDict, values: dict[str, object], site: str, default: Opening) -> Opening:
    """A site's (or the defaults') opening hours: its own if it has them, else ``default``."""
    raw = values.get("opening_hours")
    if not isinstance(raw, dict):
        return default
    opening, problems = parse_opening(raw)
    for key, message in problems:
        line = raw.line_of(key) if isinstance(raw, LineDict) and key in raw else entry.line_of("opening_hours")
        check.report(line, site, f"opening_hours.{key}" if key != "" else "opening_hours", message)
    return opening


def _check_gear(check: Checker, raw: object, site: str, field: str, required: bool = False) -> dict[str, int] | None:
    if not isinstance(raw, LineDict):
        return None
    gear = check.fields(raw, site, f"{field}.", GEAR_SPEC)
    if required:
        for key in GEAR_ROLES:
            if key not in raw:
                check.report(raw.line, site, f"{field}.{key}", "required field is missing")
    return gear  # type: ignore[return-value]


def _build_site(
    check: Checker,
    context: _SiteContext,
    entry: LineDict,
    values: dict[str, object],
    kind_key: str,
    code: str,
    line: int,
) -> Site | None:
    plan = context.plan
    if kind_key == "wards":
        identity = _ward_identity(check, context, entry, values, code)
    else:
        identity = _centre_identity(check, context, entry, values, code)
    if identity is None:
        return None
    kind, name, region, ward_type = identity
    counters = values.get("counters", context.defaults.get("counters"))
    assert isinstance(counters, int)  # checked by the spec; defaults.counters is required
    gear = dict(context.default_gear)
    gear.update(_check_gear(check, values.get("gear"), code, "gear") or {})
    team = values.get("team") or context.team_by_region.get(region)
    # team None: teams.yml has no default for the region, reported there.
    if context.teams is not None and team is not None and team not in context.teams:
        check.report(entry.line_of("team"), code, "team",
                     f"unknown team {team!r} (teams.yml has: {', '.join(context.teams)})")  # fmt: skip
    vlans = _site_vlans(check, entry, values, code, plan)
    contacts = _check_contacts(check, values.get("contacts"), code)
    opening = _check_opening(check, entry, values, code, context.defaults["opening_hours"])  # type: ignore[arg-type]
    if plan is None:
        return None
    counts = {GEAR_ROLES[k]: v for k, v in gear.items()}
    counts["counter"] = counters
    if not _fits_plan(check, entry, code, plan, counts):
        return None
    subnet = _site_subnet(check, entry, values, code, plan, context.nets)
    if subnet is None:
        return None
    overrides = _check_overrides(check, entry, values.get("addresses"), code, subnet, counts)
    hosts = make_hosts(plan, code, f"w{code}" if kind == "ward" else code, subnet, counts, overrides)
    ports = _check_ports(check, entry, values.get("ports"), code, plan, hosts)
    if ports is None:
        return None
    address, notes = values.get("address"), values.get("notes")
    return Site(
        code=code,
        name=name,
        kind=kind,
        ward_type=ward_type,
        region=region,
        counters=counters,
        gear=gear,
        phase=str(values.get("phase", context.defaults.get("phase"))),
        team=str(team),
        subnet=subnet,
        lab_subnet=plan.to_lab_network(subnet),
        vlans=vlans,
        contacts=contacts,
        street_address=address if isinstance(address, str) else None,
        notes=notes if isinstance(notes, str) else None,
        file=check.file,
        line=line,
        hosts=hosts,
        ports=ports,
        opening_hours=opening,
    )


def _ward_identity(
    check: Checker, context: _SiteContext, entry: LineDict, values: dict[str, object], code: str
) -> tuple[str, str, str, str | None] | None:
    """A ward's kind, name, region and type, from wards.csv (the official list)."""
    wards = context.wards
    ref = wards.get(code) if wards is not None else None
    if wards is not None and ref is None:
        check.report(entry.line_of("code"), code, "code", "unknown ward code: not in wards.csv")
        return None
    if ref is None:  # wards.csv itself is broken: reported there
        return "ward", str(values.get("name", code)), "hcm", None
    if "name" in values and values["name"] != ref.name:
        check.report(entry.line_of("name"), code, "name",
                     f"{values['name']!r} does not match wards.csv ({ref.name!r})")  # fmt: skip
    return "ward", ref.name, REGION_BY_PROVINCE.get(ref.former_province, "hcm"), ref.type


def _centre_identity(
    check: Checker, context: _SiteContext, entry: LineDict, values: dict[str, object], code: str
) -> tuple[str, str, str, None]:
    """A centre's kind, name and region, and the ward it stands in (checked against wards.csv)."""
    kind = str(values.get("kind", "regional_centre"))
    region = str(values.get("region", "hcm"))
    if code.isdigit():
        check.report(entry.line_of("code"), code, "code",
                     "centre codes are letters (e.g. 'ttpc'); 5-digit codes are for wards")  # fmt: skip
    ward, wards = values.get("ward"), context.wards
    if isinstance(ward, str) and wards is not None:
        if ward not in wards:
            check.report(entry.line_of("ward"), code, "ward", f"unknown ward code {ward!r}: not in wards.csv")
        elif REGION_BY_PROVINCE.get(province := wards[ward].former_province) != region:
            check.report(entry.line_of("region"), code, "region",
                         f"{region!r} does not match the region of ward {ward} ({province})")  # fmt: skip
    return kind, str(values.get("name", code)), region, None


def _site_vlans(
    check: Checker, entry: LineDict, values: dict[str, object], code: str, plan: NetworkPlan | None
) -> dict[str, int]:
    """The plan's VLANs with the site's overrides: only VLANs the plan knows, no id twice."""
    vlans = dict(plan.vlans) if plan else {}
    raw = values.get("vlans")
    site_vlans = _check_vlans(check, raw, code, "vlans")
    if not site_vlans or not isinstance(raw, LineDict):
        return vlans
    for vname in site_vlans:
        if plan and vname not in plan.vlans:
            check.report(raw.line_of(vname), code, f"vlans.{vname}",
                         f"unknown VLAN (network.yml defines: {', '.join(plan.vlans)})")  # fmt: skip
    vlans.update(site_vlans)
    clash = [vid for vid, n in Counter(vlans.values()).items() if n > 1]
    if clash:
        check.report(entry.line_of("vlans"), code, "vlans",
                     f"VLAN id {clash[0]} is used twice at this site after overrides")  # fmt: skip
    return vlans


def _fits_plan(check: Checker, entry: LineDict, code: str, plan: NetworkPlan, counts: dict[str, int]) -> bool:
    """Every role's count fits its range of the IP plan."""
    for role, count in counts.items():
        capacity = plan.capacity(role)
        if count > capacity:
            field = "counters" if role == "counter" else f"gear.{_plural(role)}"
            room = f"room for {capacity} {ROLES[role][1]} per site"
            check.report(entry.line_of("counters" if role == "counter" else "gear"), code, field,
                         f"{count} does not fit the IP plan ({room})")  # fmt: skip
            return False
    return True


_PORT = re.compile(r"(sw\d{2})/(\d{1,2})")


def _check_ports(
    check: Checker, entry: LineDict, raw: object, code: str, plan: NetworkPlan, hosts: tuple[Host, ...]
) -> tuple | None:
    """The site's patching: pinned ports from ``ports:``, the rest assigned in order."""
    by_suffix = {h.name.rsplit("-", 1)[1]: h for h in hosts}
    pinned: dict[str, tuple[str, int]] = {}
    owner: dict[tuple[str, int], str] = {}
    mark = len(check.problems)
    if isinstance(raw, LineDict):
        for key, value in raw.items():
            line, field = raw.line_of(key), f"ports.{key}"
            host = by_suffix.get(str(key))
            if host is None or host.role not in ACCESS_VLAN:
                check.report(line, code, field, "no such counter, printer, scanner or kiosk at this site (e.g. pc03)")
                continue
            match = _PORT.fullmatch(str(value)) if isinstance(value, str) else None
            if match is None:
                check.report(line, code, field, f"{value!r} is not a switch port like sw01/7")
                continue
            switch, number = match.group(1), int(match.group(2))
            if switch not in by_suffix:
                check.report(line, code, field, f"{value}: the site has no switch {switch}")
                continue
            if not 1 <= number <= plan.access_ports:
                check.report(
                    line,
                    code,
                    field,
                    f"{value}: port {number} is outside 1..{plan.access_ports} (network.yml access_ports)",
                )
                continue
            place = (by_suffix[switch].name, number)
            if place in owner:
                check.report(line, code, field, f"{value} is already the port of {owner[place]}")
                continue
            owner[place] = host.name
            pinned[host.name] = place
    if len(check.problems) != mark:
        return None
    ports, unplaced = assign_ports(plan, hosts, pinned)
    if unplaced:
        switches = sum(1 for h in hosts if h.role == "switch")
        check.report(
            entry.line_of("gear") if "gear" in entry else entry.line,
            code,
            "gear.switches",
            f"{len(unplaced)} device(s) ({', '.join(unplaced[:3])}…) find no port on {switches} switch(es) "
            f"of {plan.access_ports} access ports",
        )
        return None
    return ports


def _plural(role: str) -> str:
    return next(k for k, v in GEAR_ROLES.items() if v == role)


def _site_subnet(
    check: Checker, entry: LineDict, values: dict[str, object], code: str, plan: NetworkPlan, nets: dict[int, str]
) -> IPv4Network | None:
    if "net" in values and "subnet" in values:
        check.report(
            entry.line_of("subnet"), code, "subnet", "give either net (an index in the plan) or subnet, not both"
        )
        return None
    if "subnet" in values:
        subnet: IPv4Network = values["subnet"]  # type: ignore[assignment]
        line = entry.line_of("subnet")
        if not subnet.subnet_of(plan.supernet):
            check.report(line, code, "subnet", f"{subnet} is outside the supernet {plan.supernet}")
            return None
        if subnet.prefixlen != plan.site_prefix:
            check.report(line, code, "subnet", f"{subnet} must be a /{plan.site_prefix} like every site")
            return None
        net = (int(subnet.network_address) - int(plan.supernet.network_address)) >> (32 - plan.site_prefix)
    elif "net" in values:
        net = values["net"]  # type: ignore[assignment]
        line = entry.line_of("net")
        if net >= plan.site_count:
            check.report(
                line,
                code,
                "net",
                f"{net} is outside 0..{plan.site_count - 1}: the supernet {plan.supernet} "
                f"holds {plan.site_count} /{plan.site_prefix} blocks",
            )
            return None
        subnet = plan.site_subnet(net)
    else:
        if not any(k in entry for k in ("net", "subnet")):
            check.report(entry.line, code, "net", "required field is missing (or give subnet)")
        return None
    if net in nets:
        check.report(
            line, code, "net" if "net" in values else "subnet", f"{plan.site_subnet(net)} overlaps site {nets[net]}"
        )
        return None
    nets[net] = code
    return subnet


def _check_overrides(
    check: Checker, entry: LineDict, raw: object, code: str, subnet: IPv4Network, counts: dict[str, int]
) -> dict[str, IPv4Address]:
    out: dict[str, IPv4Address] = {}
    if not isinstance(raw, LineDict):
        return out
    known = host_suffixes(counts)
    for key, value in raw.items():
        line = raw.line_of(key)
        field = f"addresses.{key}"
        if key not in known:
            check.report(line, code, field, "no such host at this site (e.g. rt01, sw01, pc03, pr01)")
            continue
        try:
            address = IPv4Address(value) if isinstance(value, str) else None
        except ValueError:
            address = None
        if address is None:
            check.report(line, code, field, f"{value!r} is not an IPv4 address")
            continue
        if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
            check.report(line, code, field, f"{address} is outside the site subnet {subnet}")
            continue
        out[key] = address
    return out


def _check_contacts(check: Checker, raw: object, code: str) -> tuple[Contact, ...]:
    if not isinstance(raw, list):
        return ()
    contacts = []
    for index, item in enumerate(raw):
        line = raw.line_of(index)  # type: ignore[attr-defined]
        prefix = f"contacts[{index}]."
        entry = check.mapping(item, line, code, f"contacts[{index}]")
        if entry is None:
            continue
        values = check.fields(entry, code, prefix, CONTACT_SPEC)
        phone, email = values.get("phone"), values.get("email")
        if phone is not None and not _PHONE.fullmatch(str(phone)):
            check.report(entry.line_of("phone"), code, f"{prefix}phone", f"{phone!r} is not a phone number")
        if email is not None and not _EMAIL.fullmatch(str(email)):
            check.report(entry.line_of("email"), code, f"{prefix}email", f"{email!r} is not an e-mail address")
        if phone is None and email is None:
            check.report(entry.line, code, f"{prefix}phone", "a contact needs a phone or an e-mail")
        if "name" in values and "role" in values:
            contacts.append(Contact(str(values["name"]), str(values["role"]), phone, email))  # type: ignore[arg-type]
    return tuple(contacts)


def _check_addresses(
    plan: NetworkPlan,
    dx: tuple[str, IPv4Network, tuple[Host, ...]],
    sites: dict[str, Site],
    label: dict[str, str],
    problems: list[Problem],
) -> None:
    """Cross-site checks: the DX Centre block and every address are used once."""
    check = Checker(label["sites.yml"], problems)
    _name, dx_subnet, dx_hosts = dx
    seen: dict[IPv4Address, str] = {h.address: h.name for h in dx_hosts}
    for site in sites.values():
        if site.subnet.overlaps(dx_subnet):
            check.report(site.line, site.code, "net", f"{site.subnet} overlaps the DX Centre network {dx_subnet}")
        reserved = site.monitoring_address(plan)
        for host in site.hosts:
            if host.address == reserved:
                check.report(
                    site.line,
                    site.code,
                    f"addresses.{host.name.split('-', 1)[1]}",
                    f"{host.address} is the site's reserved monitoring address",
                )
            if host.address in seen:
                check.report(
                    site.line,
                    site.code,
                    f"addresses.{host.name.split('-', 1)[1]}",
                    f"{host.address} of {host.name} is already used by {seen[host.address]}",
                )
            else:
                seen[host.address] = host.name
