"""The intended configuration of every router and switch, from the registry.

One function, :func:`device_intent`, turns a site's plan (VLANs, the patching
of counters and peripherals to switch ports, the uplinks) and the registry's
gear policy into the data the playbook feeds to the cisco.ios modules. The
inventory exports it as the host variable ``motcua_netgear``; ``motcua netgear
diff`` renders the same data as IOS configuration lines to compare with a
device's running configuration. Secrets are never part of it.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from ..registry import Host, Registry, Site
from ..validation import strip_diacritics

MGMT_ACL = 99  # standard ACL: who may open an SSH session to the gear
VTY = "line vty 0 4"
SNMP_VIEW = "MOTCUA-VIEW"
SYSLOG_ROLES = ("monitoring",)  # DX Centre hosts that receive the gear's syslog
VLAN_NAMES = {"counters": "COUNTERS", "peripherals": "PERIPHERALS", "wifi": "CITIZEN-WIFI", "management": "MANAGEMENT"}


def vlan_name(key: str) -> str:
    return VLAN_NAMES.get(key, key.upper().replace("_", "-"))


def _wildcard(network: IPv4Network) -> str:
    return str(network.hostmask)


def uplinks(site: Site) -> dict[str, list[tuple[str, str]]]:
    """Trunks between a site's routers and switches: device -> [(interface, peer)]."""
    routers = site.hosts_by_role("router")
    switches = site.hosts_by_role("switch")
    links: dict[str, list[tuple[str, str]]] = {h.name: [] for h in (*routers, *switches)}
    for r_index, router in enumerate(routers):
        for s_index, switch in enumerate(switches):
            links[router.name].append((f"GigabitEthernet0/1/{s_index}", switch.name))
            links[switch.name].append((f"GigabitEthernet1/1/{r_index + 1}", router.name))
    return links


def device_intent(registry: Registry, host: Host, lab: bool) -> dict[str, object]:
    """What ``host`` (a router or a switch) should be configured with."""
    if host.role not in ("router", "switch"):
        raise ValueError(f"{host.name} is a {host.role}, not network gear")
    policy = registry.gear
    if policy is None:  # the loader refuses a registry without it
        raise ValueError("the registry has no gear policy (network.yml: gear)")
    site = registry.sites[host.site]
    plan = registry.plan

    def address(h: Host) -> IPv4Address:
        return h.lab_address if lab else h.address

    dx_subnet = plan.to_lab_network(registry.dx_subnet) if lab else registry.dx_subnet
    ntp = [str(address(h)) for h in registry.dx_hosts if h.role == "ntp"]
    syslog = [str(address(h)) for h in registry.dx_hosts if h.role in SYSLOG_ROLES]
    subnet = site.lab_subnet if lab else site.subnet
    vlan_ids = sorted(site.vlans.values())
    ascii_name = strip_diacritics(site.name)

    lines = [
        f"ip domain name {policy.domain}",
        "ip ssh version 2",
        "ip ssh time-out 60",
        "ip ssh authentication-retries 3",
        # AAA with the local users: the SCP server (a restore by `configure replace` copies the
        # backup to flash first) needs exec authorization, and IOS then takes the VTY's `login local` away.
        "aaa new-model",
        "aaa authentication login default local",
        "aaa authorization exec default local",
        "ip scp server enable",
        "service timestamps log datetime msec",
        *(f"ntp server {a}" for a in ntp),
        *(f"logging host {a}" for a in syslog),
        "logging trap informational",
        f"access-list {MGMT_ACL} permit {dx_subnet.network_address} {_wildcard(dx_subnet)}",
        f"snmp-server view {SNMP_VIEW} iso included",
        f"snmp-server group {policy.snmp_group} v3 priv read {SNMP_VIEW} access {MGMT_ACL}",
        f"snmp-server location {site.code} {ascii_name}",
        f"snmp-server contact {strip_diacritics(registry.dx_centre_name)}",
    ]
    blocks = [
        {"parent": VTY, "lines": [f"access-class {MGMT_ACL} in", "exec-timeout 10 0", "transport input ssh"]},
        {"parent": f"interface Vlan{site.vlans['management']}",
         "lines": [f"description management {site.code}", f"ip address {address(host)} {subnet.netmask}"]},
    ]  # fmt: skip
    interfaces: list[dict[str, object]] = []
    l2: list[dict[str, object]] = []
    for interface, peer in uplinks(site)[host.name]:
        interfaces.append({"name": interface, "description": f"uplink {peer}", "enabled": True})
        l2.append({"name": interface, "mode": "trunk", "trunk": {"allowed_vlans": [str(v) for v in vlan_ids]}})
    if host.role == "switch":
        for port in (p for p in site.ports if p.switch == host.name):
            interfaces.append({"name": port.interface, "description": port.host, "enabled": True})
            l2.append({"name": port.interface, "mode": "access", "access": {"vlan": site.vlans[port.vlan]}})
    return {
        "hostname": host.name,
        "site": site.code,
        "banner": policy.banner,
        "lines": lines,
        "blocks": blocks,
        "vlans": [
            {"vlan_id": vid, "name": vlan_name(key)} for key, vid in sorted(site.vlans.items(), key=lambda kv: kv[1])
        ],
        "interfaces": interfaces,
        "l2_interfaces": l2,
        "users": [{"name": u.name, "privilege": u.privilege} for u in policy.users],
        "snmp": {"user": policy.snmp_user, "group": policy.snmp_group},
    }
