"""IOS configuration text: parse, compare with the intent, and undo a change.

``show running-config`` is read as an ordered list of sections (a top-level
line and the lines indented under it). Three things are computed from it:

- :func:`intended_sections` renders a device's intent (motcua.netgear.intent)
  as the lines IOS prints for it;
- :func:`drift` compares the *managed* part of a running configuration with
  the intent: every intended line missing on the device (``+``) and every line
  the device has in a managed place that the plan does not (``-``);
- :func:`rollback_commands` turns a running configuration back into a backup:
  the commands that remove what was added and restore what was removed.

Secrets never appear in a drift: user password hashes are masked on both sides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..inventory.gear import MGMT_ACL, VTY

# Lines IOS prints that are not configuration, or change by themselves.
VOLATILE = re.compile(
    r"^(Building configuration|Current configuration\s*:|! Last configuration change|"
    r"! NVRAM config last updated|! No configuration change since|ntp clock-period|end$)"
)
_SECRET = re.compile(r"^(username \S+(?: privilege \d+)?) (?:secret|password) .*$")
HIDDEN = "<hidden>"

# A line that replaces an earlier line starting with the same words (IOS keeps one).
REPLACES = (
    "hostname", "ip domain name", "enable secret", "snmp-server location", "snmp-server contact", "logging trap",
    "ip ssh version", "ip ssh time-out", "ip ssh authentication-retries", "description", "switchport mode",
    "switchport access vlan", "switchport trunk allowed vlan", "switchport trunk native vlan", "ip address", "name",
    "exec-timeout", "transport input", "access-class", "service timestamps log",
)  # fmt: skip


@dataclass
class Section:
    line: str
    children: list[str] = field(default_factory=list)

    @property
    def is_banner(self) -> bool:
        return self.line.startswith("banner ")


def parse_config(text: str) -> list[Section]:
    """Sections of an IOS configuration, without comments and volatile lines."""
    sections: list[Section] = []
    banner: list[str] | None = None
    for raw in text.replace("\r", "").splitlines():
        if banner is not None:
            if raw.rstrip().endswith("^C"):
                last = raw.rstrip()[:-2]
                if last:
                    banner.append(last)
                sections.append(Section(banner[0], ["\n".join(banner[1:]).strip("\n")]))
                banner = None
            else:
                banner.append(raw.rstrip())
            continue
        if not raw.strip() or raw.startswith("!") or VOLATILE.match(raw.strip()):
            continue
        if raw.startswith("banner "):
            match = re.match(r"(banner \S+) \^C(.*)$", raw.rstrip())
            if match:
                rest = match.group(2)
                if rest.endswith("^C"):  # the whole banner on one line
                    sections.append(Section(match.group(1), [rest[:-2]]))
                else:
                    banner = [match.group(1)] + ([rest] if rest else [])
                continue
        if raw[0] == " " and sections and not sections[-1].is_banner:
            sections[-1].children.append(raw.strip())
        else:
            sections.append(Section(raw.strip()))
    return sections


def normalised(text: str) -> str:
    """A configuration as comparable text: sections and their children sorted.

    IOS keeps its own order (VLANs by id, servers as added), so order is not
    compared, except among the entries of one access list, where it matters.
    """

    def key(item: tuple[int, Section]) -> tuple[str, int]:
        index, section = item
        match = re.match(r"(access-list \S+) ", section.line)
        return (match.group(1), index) if match else (section.line, 0)

    out = []
    for _index, section in sorted(enumerate(parse_config(text)), key=key):
        out.append(section.line)
        out += ["  " + c for c in (section.children if section.is_banner else sorted(section.children))]
    return "\n".join(out) + "\n"


def _mask(line: str) -> str:
    match = _SECRET.match(line)
    return f"{match.group(1)} secret {HIDDEN}" if match else line


def _hostname_and_globals(intent: dict) -> list[Section]:
    return [Section(f"hostname {intent['hostname']}"), *(Section(line) for line in intent["lines"])]


def _vlan_sections(intent: dict) -> list[Section]:
    return [Section(f"vlan {v['vlan_id']}", [f"name {v['name']}"]) for v in intent["vlans"]]


def _block_sections(intent: dict) -> list[Section]:
    return [Section(b["parent"], list(b["lines"])) for b in intent["blocks"]]


def intended_sections(intent: dict) -> list[Section]:
    """The intent as IOS prints it (user secrets masked)."""
    hostname, *globals_ = _hostname_and_globals(intent)
    sections = [hostname, Section("banner login", [intent["banner"]]), *globals_]
    sections += [Section(f"username {u['name']} privilege {u['privilege']} secret {HIDDEN}") for u in intent["users"]]
    sections += _vlan_sections(intent)
    ports: dict[str, list[str]] = {}
    for item in intent["interfaces"]:
        ports.setdefault(item["name"], [])
        if item.get("description"):
            ports[item["name"]].append(f"description {item['description']}")
        if item.get("enabled") is False:
            ports[item["name"]].append("shutdown")
    for item in intent["l2_interfaces"]:
        lines = ports.setdefault(item["name"], [])
        if item["mode"] == "access":
            lines += [f"switchport access vlan {item['access']['vlan']}", "switchport mode access"]
        else:
            lines += [
                f"switchport trunk allowed vlan {','.join(item['trunk']['allowed_vlans'])}",
                "switchport mode trunk",
            ]
    sections += [Section(f"interface {name}", lines) for name, lines in ports.items()]
    sections += _block_sections(intent)
    return sections


# The parts of the intent the playbook applies as rendered config (ios_config src), each
# compared with the running config by ios_config in one pass: the rest (banner, users,
# SNMPv3 user, ports) goes through modules that handle secrets and replaced state.
RENDERED_PARTS = ("base", "vlans")


def render_config(intent: dict, part: str) -> str:
    """One part of the intent as indented IOS config text, for ``ios_config src``.

    ``base``: the hostname, the managed global lines and blocks (VTY lines, the
    management interface); ``vlans``: the site's VLANs. The same sections as
    :func:`intended_sections`, which :func:`drift` compares the running config with.
    """
    if part == "base":
        sections = _hostname_and_globals(intent) + _block_sections(intent)
    elif part == "vlans":
        sections = _vlan_sections(intent)
    else:
        raise ValueError(f"unknown part {part!r} (one of {', '.join(RENDERED_PARTS)})")
    return "".join(f"{s.line}\n" + "".join(f" {child}\n" for child in s.children) for s in sections)


def section_commands(section: Section) -> list[str]:
    """The configuration commands that enter one section as it stands."""
    if section.is_banner:
        return [f"{section.line} ^C", *section.children[0].splitlines(), "^C"]
    if section.children or section.line.startswith(("interface ", "vlan ", "line ")):
        return [section.line, *section.children, "exit"]
    return [section.line]


def intent_commands(intent: dict, user_hash: str, snmp_auth: str, snmp_priv: str) -> list[str]:
    """The intent as configuration commands, with the given secrets: what the playbook leaves on a
    device, for configuring a simulated one directly (unit tests, the fleet benchmark)."""
    commands: list[str] = []
    for section in intended_sections(intent):
        if section.line.startswith("username "):
            section = Section(section.line.replace(f"secret {HIDDEN}", f"secret 9 {user_hash}"))
        commands += section_commands(section)
    snmp = intent["snmp"]
    commands.append(f"snmp-server user {snmp['user']} {snmp['group']} v3 auth sha {snmp_auth} priv aes 128 {snmp_priv}")
    return commands


_MANAGED_TOP = ("hostname ", "ip domain name ", "ip ssh ", "service timestamps log ", "ntp server ", "logging host ",
                "logging trap ", f"access-list {MGMT_ACL} ", "snmp-server ", "username ", "banner login")  # fmt: skip


def _managed(section: Section, interfaces: set[str]) -> bool:
    line = section.line
    if re.fullmatch(r"vlan \d+", line) or line == VTY:
        return True
    if line.startswith("interface "):
        return line in interfaces
    return (section.is_banner and line == "banner login") or (not section.children and line.startswith(_MANAGED_TOP))


@dataclass(frozen=True)
class Drift:
    """One line of difference: ``+`` intended but missing, ``-`` present but not intended."""

    parent: str | None
    sign: str
    line: str


def drift(intent: dict, running: str) -> list[Drift]:
    """The managed part of ``running`` against the intent."""
    want = intended_sections(intent)
    interfaces = {s.line for s in want if s.line.startswith("interface ")}
    have = [s for s in parse_config(running) if _managed(s, interfaces)]
    have_by = {s.line if s.children or s.is_banner else _mask(s.line): s for s in have}
    want_by = {s.line: s for s in want}
    out: list[Drift] = []
    for key, section in want_by.items():
        got = have_by.get(key)
        if section.is_banner:
            if got is None or got.children != section.children:
                if got is not None:
                    out += [Drift(None, "-", f"banner login: {line}") for line in got.children[0].splitlines()]
                out += [Drift(None, "+", f"banner login: {line}") for line in section.children[0].splitlines()]
            continue
        if got is None:
            if section.children:
                out += [Drift(key, "+", c) for c in section.children]
            else:
                out.append(Drift(None, "+", key))
            continue
        out += [Drift(key, "+", c) for c in section.children if c not in got.children]
        out += [Drift(key, "-", c) for c in got.children if c not in section.children]
    for key, section in have_by.items():
        if key not in want_by:
            if section.children and not section.is_banner:
                out += [Drift(key, "-", c) for c in section.children] + [Drift(None, "-", key)]
            else:
                out.append(Drift(None, "-", key))
    return out


def render_drift(name: str, lines: list[Drift]) -> str:
    """A device's drift as a unified-diff-like text, grouped by section."""
    if not lines:
        return f"{name}: no drift\n"
    out = [f"--- {name} (running)", f"+++ {name} (intended from the registry)"]
    parent = object()
    for item in sorted(lines, key=lambda d: (d.parent or "", d.sign != "-")):
        if item.parent != parent:
            parent = item.parent
            if item.parent:
                out.append(f"  {item.parent}")
        out.append(f"{item.sign} {'  ' if item.parent else ''}{item.line}")
    return "\n".join(out) + "\n"


def _key(line: str) -> str | None:
    return next((k for k in REPLACES if line == k or line.startswith(k + " ")), None)


def _replaced(line: str, others: list[str]) -> bool:
    """Whether one of ``others`` replaces ``line`` when configured (same single-value key)."""
    key = _key(line)
    if line.startswith("username "):
        key = " ".join(line.split()[:2])
    return key is not None and any(o == key or o.startswith(key + " ") for o in others)


def rollback_commands(current: str, target: str) -> list[str]:
    """Configuration commands that turn ``current`` back into ``target`` (a backup).

    What IOS does not print (SNMPv3 users) cannot be rolled back from a text
    backup; the enable secret is never touched.
    """
    now = {s.line: s for s in parse_config(current)}
    then = {s.line: s for s in parse_config(target)}
    then_top = [line for line, s in then.items() if not s.children and not s.is_banner]
    commands: list[str] = []
    # 1. Whole sections and top-level lines that were added.
    for line, section in now.items():
        if line in then or line.startswith("enable secret"):
            continue
        if section.is_banner:
            commands.append(f"no {line}")
        elif section.children or line.startswith(("interface ", "vlan ", "line ")):
            if line.startswith("interface ") and not re.match(r"interface (Vlan|Loopback|Port-channel)", line):
                commands += [line, *(f"no {c}" for c in section.children), "exit"]  # a port cannot be removed
            else:
                commands.append(f"no {line}")
        elif not _replaced(line, then_top):
            commands.append(f"no {line}")
    # 2. Sections present in both: children removed and restored.
    for line, section in then.items():
        if line.startswith("enable secret"):
            continue
        old = now.get(line)
        if section.is_banner:
            if old is None or old.children != section.children:
                commands += section_commands(section)
            continue
        if old is None:
            commands += section_commands(section)
            continue
        extra = [c for c in old.children if c not in section.children and not _replaced(c, section.children)]
        missing = [c for c in section.children if c not in old.children]
        if extra or missing:
            commands += [line, *(f"no {c}" for c in extra), *missing, "exit"]
    return commands
