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

The comparisons and the commands come from hier_config's model of IOS (a tree
per config, per-platform rules for which commands replace each other and how
one is negated); the banner is compared whole beside it.

Secrets never appear in a drift: user password hashes are masked on both sides.
"""

from __future__ import annotations

import difflib
import functools
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


def differing_lines(want: str, got: str, limit: int = 5) -> list[str]:
    """The first lines in which two configurations differ once normalised (``-`` wanted, ``+`` found)."""
    left = [
        line
        for line in difflib.unified_diff(normalised(want).splitlines(), normalised(got).splitlines(), lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return left[:limit]


def _mask(line: str) -> str:
    match = _SECRET.match(line)
    return f"{match.group(1)} secret {HIDDEN}" if match else line


def intended_sections(intent: dict) -> list[Section]:
    """The intent as IOS prints it (user secrets masked)."""
    sections = [Section(f"hostname {intent['hostname']}"), Section("banner login", [intent["banner"]])]
    sections += [Section(line) for line in intent["lines"]]
    sections += [Section(f"username {u['name']} privilege {u['privilege']} secret {HIDDEN}") for u in intent["users"]]
    sections += [Section(f"vlan {v['vlan_id']}", [f"name {v['name']}"]) for v in intent["vlans"]]
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
    sections += [Section(b["parent"], list(b["lines"])) for b in intent["blocks"]]
    return sections


def render_config(intent: dict, running: str | None = None) -> str:
    """The intent but its secrets as indented IOS config text, for one ``ios_config src``: the
    hostname and the managed global lines, the login banner, the VLANs, every port's description
    and switchport lines, the VTY lines and the management interface. ios_config compares it with
    the running config in one pass and sends only what is missing (users and the SNMPv3 user go
    through tasks with ``no_log``).

    ``running`` (the device's running config, read just before): a managed port's lines the intent
    does not have (``shutdown``, another switchport setting) are undone too, by the ``no`` lines of
    hier_config's remediation, so a port ends up as the intent says, as ``motcua netgear diff``
    compares it. Each is there only while the device has the line: a second run renders none.
    """
    sections = [s for s in intended_sections(intent) if not s.line.startswith("username ")]
    undo = _port_negations(sections, running) if running is not None else {}
    return _text([Section(s.line, [*undo.get(s.line, []), *s.children]) for s in sections])


def _port_negations(sections: list[Section], running: str) -> dict[str, list[str]]:
    """{port: the ``no`` lines that take away what the running config has in it and the intent not}."""
    from hier_config import WorkflowRemediation

    want = [s for s in sections if _is_port(s.line)]
    ports = {s.line for s in want}
    have = [s for s in parse_config(running) if s.line in ports]
    remediation = WorkflowRemediation(_model(have), _model(want)).remediation_config
    out: dict[str, list[str]] = {}
    for node in remediation.children:
        undo = [child.text for child in node.children if child.text.startswith("no ")]
        if undo:
            out[node.text] = undo
    return out


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
                "logging trap ", f"access-list {MGMT_ACL} ", "snmp-server ", "username ", "banner login", "aaa ",
                "ip scp server ")  # fmt: skip


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
    """The managed part of ``running`` against the intent, as hier_config's model of each compares:
    what the intent has that the device lacks (``+``) and the reverse (``-``). A section the device
    lacks is its lines; a section only the device has is its lines and the section itself."""
    want = intended_sections(intent)
    interfaces = {s.line for s in want if s.line.startswith("interface ")}
    have = [s for s in parse_config(running) if _managed(s, interfaces)]
    have = [s if s.children or s.is_banner else Section(_mask(s.line)) for s in have]
    out = _banner_drift(want, have)
    wanted = _model([s for s in want if not s.is_banner])
    held = _model([s for s in have if not s.is_banner])
    for sign, one, other in (("+", wanted, held), ("-", held, wanted)):
        for node in one.difference(other).children:
            if not node.children:
                out.append(Drift(None, sign, node.text))
                continue
            out += [Drift(node.text, sign, child.text) for child in node.children]
            if sign == "-" and other.get_child(equals=node.text) is None:
                out.append(Drift(None, "-", node.text))
    return out


def _banner_drift(want: list[Section], have: list[Section]) -> list[Drift]:
    """The login banner, line by line, when it is not the intended one."""
    wanted = next((s for s in want if s.is_banner), None)
    held = next((s for s in have if s.is_banner), None)
    if wanted is None:
        return [Drift(None, "-", held.line)] if held else []
    if held is not None and held.children == wanted.children:
        return []
    gone = [Drift(None, "-", f"banner login: {line}") for line in held.children[0].splitlines()] if held else []
    return gone + [Drift(None, "+", f"banner login: {line}") for line in wanted.children[0].splitlines()]


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


# Single-value commands the managed config uses that hier_config's IOS driver (3.7) does not know:
# a new value replaces the old one, so undoing a change sends the old value, never a `no` first
# (a `no username dxadmin` or `no hostname` on the way back would be a moment without them).
_SINGLE_VALUE_TOP = ("hostname ", "ip domain name ", "snmp-server location ", "snmp-server contact ",
                     "logging trap ", "ip ssh version ", "ip ssh time-out ", "ip ssh authentication-retries ",
                     "service timestamps log ")  # fmt: skip
_SINGLE_VALUE_UNDER = {
    "interface ": ("switchport access vlan ", "switchport trunk allowed vlan ", "switchport trunk native vlan "),
    "line ": ("exec-timeout ", "transport input "),
}


@functools.cache
def _driver():
    """hier_config's IOS driver with the rules above (imported here: ~0.2 s that the commands
    without a comparison, such as arm and confirm, do not pay)."""
    from hier_config import MatchRule, Platform, get_hconfig_driver
    from hier_config.models import IdempotentCommandsRule

    driver = get_hconfig_driver(Platform.CISCO_IOS)
    rules = [IdempotentCommandsRule(match_rules=(MatchRule(startswith=p),)) for p in _SINGLE_VALUE_TOP]
    rules.append(IdempotentCommandsRule(match_rules=(MatchRule(re_search=r"^(username \S+) "),)))  # per user
    for parent, lines in _SINGLE_VALUE_UNDER.items():
        rules += [
            IdempotentCommandsRule(match_rules=(MatchRule(startswith=parent), MatchRule(startswith=line)))
            for line in lines
        ]
    rules.append(  # one access class per direction
        IdempotentCommandsRule(
            match_rules=(MatchRule(startswith="line "), MatchRule(re_search=r"^access-class \S+ (in|out)"))
        )
    )
    driver.rules.idempotent_commands.extend(rules)
    return driver


def _model(sections: list[Section]):
    """hier_config's tree of some sections."""
    from hier_config import get_hconfig

    return get_hconfig(_driver(), _text(sections))


def _text(sections: list[Section]) -> str:
    """Sections as IOS prints them (the form hier_config parses)."""
    out = []
    for section in sections:
        if section.is_banner:
            out.append(f"{section.line} ^C\n{section.children[0]}\n^C")
        else:
            out += [section.line, *(f" {child}" for child in section.children)]
    return "\n".join(out) + "\n"


def _commands(remediation) -> list[str]:
    """hier_config's remediation tree as configuration commands: a section entered, its lines, ``exit``;
    a banner as IOS takes it (``no banner login`` removes one whatever it says)."""
    commands: list[str] = []
    for node in remediation.children:
        text = node.text
        if text.startswith("no banner "):
            commands.append(" ".join(text.split("\n", 1)[0].split()[:3]))
        elif text.startswith("banner "):
            line, body = text.split("\n", 1)
            commands += [line, *body.removesuffix("^C").rstrip("\n").splitlines(), "^C"]
        elif node.children:
            commands += [text, *(child.text for child in node.all_children()), "exit"]
        else:
            commands.append(text)
    return commands


def rollback_commands(current: str, target: str) -> list[str]:
    """Configuration commands that turn ``current`` back into ``target`` (a backup).

    The remediation comes from hier_config's model of IOS (its per-platform rules say which
    commands replace each other, which ones a ``no`` removes, and in what order). What IOS does not
    print (SNMPv3 users) cannot be rolled back from a text backup; the enable secret is never touched.
    """

    def kept(text: str) -> list[Section]:
        return [s for s in parse_config(text) if not s.line.startswith("enable secret")]

    now, then = kept(current), kept(target)
    # A physical port cannot be removed: a port the backup does not have is emptied instead.
    then_lines = {s.line for s in then}
    then += [Section(s.line) for s in now if s.line not in then_lines and _is_port(s.line)]
    from hier_config import WorkflowRemediation

    return _commands(WorkflowRemediation(_model(now), _model(then)).remediation_config)


def _is_port(line: str) -> bool:
    return line.startswith("interface ") and not re.match(r"interface (Vlan|Loopback|Port-channel)", line)
