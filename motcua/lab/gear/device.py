"""A Cisco IOS-style device: configuration state and the CLI that changes it.

Behaves like IOS where the project's tools look: prompts per mode, `enable`
with a secret, `configure terminal` and sub-modes, `no` forms, abbreviations,
`show` outputs in the formats ntc-templates' cisco_ios templates parse,
`write memory` / `copy running-config startup-config`, and IOS error texts
("% Invalid input detected at '^' marker.") that Ansible's cisco.ios terminal
plugin recognises. Pure Python: the SSH server drives it line by line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MODELS = {
    "switch": {
        "hardware": "WS-C2960X-48TS-L",
        "image": "C2960X-UNIVERSALK9-M",
        "version": "15.2(7)E8",
        "file": "flash:c2960x-universalk9-mz.152-7.E8.bin",
        "processor": "cisco WS-C2960X-48TS-L (APM86XXX) processor (revision D0) with 524288K bytes of memory.",
    },
    "router": {
        "hardware": "C1111-8P",
        "image": "ARMV8EB_LINUX_IOSD-UNIVERSALK9_IAS-M",
        "version": "17.9.4a",
        "file": "bootflash:c1100-universalk9_ias.17.09.04a.SPA.bin",
        "processor": "cisco C1111-8P (1RU) processor with 1453955K/6147K bytes of memory.",
    },
}
# First words accepted in global configuration mode.
GLOBAL_COMMANDS = {
    "aaa", "access-list", "archive", "banner", "boot", "cdp", "clock", "crypto", "default", "enable",
    "errdisable", "hostname", "interface", "ip", "ipv6", "line", "lldp", "logging", "login", "no",
    "ntp", "router", "service", "snmp-server", "spanning-tree", "username", "version", "vlan", "vtp",
}  # fmt: skip
# Lines that open a sub-mode, with the mode's prompt suffix.
SUBMODES = {"interface": "config-if", "line": "config-line", "vlan": "config-vlan", "router": "config-router",
            "archive": "config-archive"}  # fmt: skip
SUBMODE_COMMANDS = {
    "config-if": {"description", "switchport", "shutdown", "ip", "ipv6", "spanning-tree", "speed", "duplex",
                  "power", "storm-control", "channel-group", "mtu", "negotiation", "load-interval", "cdp",
                  "lldp", "udld", "default", "no", "service-policy", "snmp"},
    "config-line": {"transport", "login", "exec-timeout", "access-class", "logging", "session-timeout",
                    "privilege", "length", "width", "stopbits", "no", "default", "exec"},
    "config-vlan": {"name", "state", "shutdown", "no"},
    "config-router": {"network", "router-id", "passive-interface", "default-information", "no", "redistribute"},
    "config-archive": {"path", "write-memory", "maximum", "time-period", "log", "no"},
}  # fmt: skip
# Commands holding one value: setting them replaces the previous line.
SINGLE_VALUE = (
    "hostname", "ip domain name", "ip domain-name", "enable secret", "clock timezone", "ip ssh version",
    "snmp-server location", "snmp-server contact", "description", "switchport mode", "switchport access vlan",
    "switchport trunk native vlan", "switchport trunk allowed vlan", "ip address", "name", "transport input",
    "exec-timeout", "speed", "duplex", "logging buffered", "service timestamps debug", "service timestamps log",
    "ip ssh time-out", "ip ssh authentication-retries", "login local", "mtu", "state", "logging trap",
    "access-class",
)  # fmt: skip
DEFAULT_VLANS = {1: "default", 1002: "fddi-default", 1003: "token-ring-default", 1004: "fddinet-default",
                 1005: "trnet-default"}  # fmt: skip
INVALID = "% Invalid input detected at '^' marker."


@dataclass
class Node:
    """One configuration line and the lines under it (sub-mode)."""

    line: str
    children: list[str] = field(default_factory=list)


def _hash_secret(device: str, secret: str) -> str:
    digest = hashlib.sha256(f"{device}:{secret}".encode()).digest()
    return "$9$" + base64.b64encode(digest, altchars=b"./").decode().rstrip("=")[:40]


def short_interface(name: str) -> str:
    for long, short in (("GigabitEthernet", "Gi"), ("FastEthernet", "Fa"), ("TenGigabitEthernet", "Te")):
        if name.startswith(long):
            return short + name[len(long) :]
    return name


INTERFACE_TYPES = ("GigabitEthernet", "TenGigabitEthernet", "FastEthernet", "Vlan", "Loopback", "Port-channel")


def normalise_interface(text: str) -> str | None:
    """'gi1/0/3', 'Gig 1/0/3', 'GigabitEthernet1/0/3' -> 'GigabitEthernet1/0/3'."""
    match = re.fullmatch(r"([A-Za-z-]+)\s*([\d/.]+)", text.strip())
    if not match:
        return None
    kind, number = match.groups()
    candidates = [t for t in INTERFACE_TYPES if t.lower().startswith(kind.lower())]
    if len(candidates) > 1 and kind.lower() in ("g", "gi"):
        candidates = ["GigabitEthernet"]
    if len(candidates) != 1:
        return None
    return candidates[0] + number


class Device:
    """Running and startup configuration of one simulated device."""

    def __init__(self, name: str, role: str, ports: int, state_dir: Path, enable_secret: str):
        self.name = name
        self.role = role
        self.ports = ports
        self.model = MODELS[role]
        self.state_file = state_dir / f"{name}.json"
        self.flash_dir = state_dir / "flash" / name  # flash: (and bootflash:): files copied by SCP
        self.enable_secret = enable_secret
        self.booted = time.time()
        self.last_change = time.time()
        self.serial = "FOC" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()
        mac = hashlib.sha256(("mac" + name).encode()).digest()[:5]
        self.mac = "00:" + ":".join(f"{b:02X}" for b in mac)
        startup, snmp_users = self._load_startup()
        self.running: list[Node] = self._parse(startup) if startup else self._factory()
        self.startup_text = startup or self.render_config()
        # SNMPv3 users, as IOS keeps them: in NVRAM, never shown by `show running-config`.
        self.snmp_users: dict[str, dict[str, str]] = snmp_users
        # The configuration archive (on flash: it outlives a reload), the pending
        # Rollback Confirmed Change, the logging buffer.
        self.archive_file = state_dir / f"{name}.archive.json"
        self.archive: list[tuple[str, str]] = []
        self.archive_serial = 0
        self._load_archive()
        self.rollback: Rollback | None = None
        self.log_buffer: deque[str] = deque(maxlen=500)
        # The ACL state that locks out the management range (the lockout fault), if any.
        self.locked_acl: str | None = None
        # How timers run: the SSH server puts them on its event loop; a lab minute
        # lasts `minute_seconds()` seconds (settable: `motcua lab gear-minute`).
        self.schedule: Callable[[float, Callable[[], None]], object] = _thread_timer
        self.minute_seconds: Callable[[], float] = lambda: 60.0
        self._rollback_tokens = 0

    # ---- persistence
    def _load_startup(self) -> tuple[str | None, dict[str, dict[str, str]]]:
        try:
            data = json.loads(self.state_file.read_text())
            return data["startup_config"], dict(data.get("snmp_users") or {})
        except (FileNotFoundError, KeyError, ValueError):
            return None, {}

    def save(self) -> None:
        self.startup_text = self.render_config()
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        data = {"startup_config": self.startup_text, "snmp_users": self.snmp_users, "saved": time.time()}
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.state_file)

    # ---- the configuration archive and Rollback Confirmed Change (IOS "archive",
    # "configure terminal revert timer", "configure confirm", "configure replace")
    def _load_archive(self) -> None:
        try:
            data = json.loads(self.archive_file.read_text())
            self.archive = [(entry["name"], entry["config"]) for entry in data["files"]]
            self.archive_serial = int(data["serial"])
        except (FileNotFoundError, KeyError, ValueError, TypeError):
            self.archive, self.archive_serial = [], 0

    def _save_archive(self) -> None:
        self.archive_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.archive_file.with_suffix(".tmp")
        files = [{"name": name, "config": text} for name, text in self.archive]
        tmp.write_text(json.dumps({"serial": self.archive_serial, "files": files}, indent=1))
        tmp.replace(self.archive_file)

    def archive_settings(self) -> tuple[str, int] | None:
        """(path, maximum) of the `archive` block, or None when no path is set (the feature is off)."""
        node = self.node("archive")
        if node is None:
            return None
        path = next((c.split(None, 1)[1] for c in node.children if c.startswith("path ")), None)
        if not path:
            return None
        maximum = next((int(c.split()[1]) for c in node.children if re.fullmatch(r"maximum \d+", c)), 10)
        return path, maximum

    def _archive_name(self, path: str, serial: int) -> str:
        now = time.gmtime()
        stamp = time.strftime("%b-", now) + f"{now.tm_mday:>2}".replace(" ", "-") + time.strftime("-%H-%M-%S", now)
        stamp += f".{int(time.time() * 1000) % 1000:03d}-UTC"
        name = path.replace("$h", self.hostname()).replace("$t", stamp)
        return f"{name}-{serial}"

    def archive_config(self) -> str:
        """Save the running config as the next archive file (`archive config`); its name."""
        settings = self.archive_settings()
        if settings is None:
            raise GearError("Archive feature not enabled")
        path, maximum = settings
        name = self._archive_name(path, self.archive_serial)
        self.archive_serial += 1
        self.archive.append((name, self.render_config()))
        del self.archive[: max(0, len(self.archive) - maximum)]
        self._save_archive()
        return name

    def archived(self, name: str) -> str | None:
        return next((text for file, text in self.archive if file == name), None)

    def show_archive(self) -> str:
        settings = self.archive_settings()
        if settings is None:
            return "Archive feature not enabled\n"
        path, maximum = settings
        out = [
            f"The maximum archive configurations allowed is {maximum}.",
            f"There are currently {len(self.archive)} archive configurations saved.",
            f"The next archive file will be named {path.replace('$h', self.hostname()).replace('$t', '<timestamp>')}"
            f"-{self.archive_serial}",
            " Archive #  Name",
        ]
        for number in range(1, maximum + 1):
            name = self.archive[number - 1][0] if number <= len(self.archive) else ""
            recent = " <- Most Recent" if number == len(self.archive) else ""
            out.append(f"   {number:<8} {name}{recent}".rstrip())
        return "\n".join(out) + "\n"

    # ---- flash: (bootflash: on the routers): what SCP writes, `dir`, `verify /md5`, `delete`
    def flash_path(self, path: str) -> Path | None:
        """The file a flash path names (``flash:/x``, ``flash:x``, ``bootflash:x``), None if it is not one."""
        match = re.fullmatch(r"(?:(?:boot)?flash:)?/?([A-Za-z0-9._-]{1,64})", path.strip())
        return self.flash_dir / match.group(1) if match and match.group(1) not in (".", "..") else None

    def flash_files(self) -> list[Path]:
        return sorted(p for p in self.flash_dir.iterdir() if p.is_file()) if self.flash_dir.is_dir() else []

    def aaa(self) -> bool:
        return self.node("aaa new-model") is not None

    def scp_server_enabled(self) -> str | None:
        """Why the SCP server refuses (None when it serves): IOS needs AAA authorization for exec."""
        lines = set(self.render_config().splitlines())
        if "ip scp server enable" not in lines:
            return "the SCP server is off (ip scp server enable)"
        if "aaa new-model" not in lines or not any(line.startswith("aaa authorization exec ") for line in lines):
            return "SCP needs aaa new-model and aaa authorization exec"
        return None

    def replace_config(self, text: str) -> int:
        """`configure replace`: the running config becomes ``text`` as a whole; the number of lines that differ."""
        before = set(self.render_config().splitlines())
        self.running = self._parse(text)
        self.last_change = time.time()
        after = set(self.render_config().splitlines())
        return len(before ^ after)

    def arm_rollback(self, minutes: int, user: str) -> str:
        """`configure terminal revert timer N`: archive the running config, revert to it in N minutes."""
        if self.rollback is not None:
            raise GearError("% Rollback Confirmed Change already pending; confirm it or revert first")
        name = self.archive_config()
        self.syslog(f"%ARCHIVE_DIFF-5-ROLLBK_CNFMD_CHG_BACKUP: Backing up current running config to {name}")
        self._start_timer(name, minutes, user)
        self.syslog(f"%ARCHIVE_DIFF-5-ROLLBK_CNFMD_CHG_START_ABSTIMER: User: {user}: Scheduled to rollback to "
                    f"config {name} in {minutes} minutes")  # fmt: skip
        return name

    def _start_timer(self, archive: str, minutes: int, user: str) -> None:
        self._rollback_tokens += 1
        token = self._rollback_tokens
        now = time.time()
        minute = self.minute_seconds()
        self.rollback = Rollback(archive, minutes, user, now, now + minutes * minute, token)
        if minutes > 1:
            self.schedule((minutes - 1) * minute, lambda: self._warn(token))
        self.schedule(minutes * minute, lambda: self._expire(token))

    def _warn(self, token: int) -> None:
        if self.rollback is not None and self.rollback.token == token:
            self.syslog(f"%ARCHIVE_DIFF-5-ROLLBK_CNFMD_CHG_WARNING_ABSTIMER: System will rollback to config "
                        f"{self.rollback.archive} in one minute. Enter \"configure confirm\" if you wish to keep "
                        "what you've configured")  # fmt: skip

    def _expire(self, token: int) -> None:
        if self.rollback is not None and self.rollback.token == token:
            self.revert_now()

    def reset_rollback(self, minutes: int) -> None:
        """`configure revert timer N`: the pending rollback happens N minutes from now instead."""
        if self.rollback is None:
            raise GearError("%No Rollback Confirmed Change pending")
        self._start_timer(self.rollback.archive, minutes, self.rollback.user)

    def revert_now(self) -> int:
        """`configure revert now` (and the timer's expiry): back to the archived config as a whole."""
        if self.rollback is None:
            raise GearError("%No Rollback Confirmed Change pending")
        pending, self.rollback = self.rollback, None
        text = self.archived(pending.archive)
        if text is None:
            raise GearError(f"%Error opening {pending.archive} (No such file or directory)")
        self.syslog(f"%ARCHIVE_DIFF-5-ROLLBK_CNFMD_CHG_ROLLBACK_START: Start rolling to: {pending.archive}")
        changed = self.replace_config(text)
        self.syslog(f"%PARSER-6-CFGLOG_REPLACE: Configuration replaced with {pending.archive} ({changed} lines)")
        return changed

    def confirm_rollback(self, user: str) -> None:
        """`configure confirm`: keep what was configured."""
        if self.rollback is None:
            raise GearError("%No Rollback Confirmed Change pending")
        self.rollback = None
        self.syslog(f"%ARCHIVE_DIFF-5-ROLLBK_CNFMD_CHG_CONFIRM: User: {user}: Confirm the configuration change")

    def show_rollback_timer(self) -> str:
        if self.rollback is None:
            return "%No Rollback Confirmed Change pending\n"
        r = self.rollback
        configured = time.strftime("%H:%M:%S UTC %a %b %d %Y", time.gmtime(r.configured))
        left = max(0, int(r.deadline - time.time()))
        return (f"Time configured(or reset) : {configured}\nTimer type: absolute\nTimer value: {r.minutes} min\n"
                f"Time left: {left} sec\nUser: {r.user}\nArchive: {r.archive}\n")  # fmt: skip

    def show_logging(self) -> str:
        head = ("Syslog logging: enabled (0 messages dropped, 0 flushes, 0 overruns)\n\n"
                "Log Buffer (8192 bytes):\n")  # fmt: skip
        return head + "".join(line + "\n" for line in self.log_buffer)

    def syslog(self, message: str) -> None:
        stamp = time.strftime("%b %d %H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        self.log_buffer.append(f"*{stamp}: {message}")

    def acl_state(self) -> str:
        """The access lists and the VTY lines' access-class, as text (what the lockout fault watches)."""
        lines = [n.line for n in self.running if n.line.startswith("access-list ")]
        lines += [f"{n.line}: {c}" for n in self.running if n.line.startswith("line vty") for c in n.children
                  if c.startswith("access-class")]  # fmt: skip
        return "\n".join(lines)

    def locked_out(self) -> bool:
        """True while the ACL that locked out the management range is in force."""
        return self.locked_acl is not None and self.acl_state() == self.locked_acl

    def _factory(self) -> list[Node]:
        nodes = [
            Node("version " + self.model["version"].split("(")[0].rsplit(".", 1)[0]),
            Node("service timestamps debug datetime msec"),
            Node("service timestamps log datetime msec"),
            Node(f"hostname {self.name}"),
            Node("enable secret 9 " + _hash_secret(self.name, self.enable_secret)),
            Node("ip ssh version 2"),
        ]
        if self.role == "switch":
            nodes += [Node(f"interface GigabitEthernet1/0/{n}") for n in range(1, self.ports + 1)]
            nodes += [Node(f"interface GigabitEthernet1/1/{n}") for n in range(1, 5)]
            nodes.append(Node("interface Vlan1", ["no ip address", "shutdown"]))
        else:
            nodes += [Node(f"interface GigabitEthernet0/0/{n}", ["no ip address"]) for n in range(2)]
            nodes += [Node(f"interface GigabitEthernet0/1/{n}") for n in range(self.ports if self.ports > 4 else 8)]
            nodes.append(Node("interface Vlan1", ["no ip address"]))
        nodes += [Node("line con 0", ["stopbits 1"]), Node("line vty 0 4", ["login local", "transport input ssh"])]
        return nodes

    @staticmethod
    def _parse(text: str) -> list[Node]:
        nodes: list[Node] = []
        banner: list[str] | None = None
        for raw in text.splitlines():
            if banner is not None:  # inside a multi-line banner: up to the closing ^C
                banner.append(raw)
                if raw.endswith("^C"):
                    nodes.append(Node("\n".join(banner)))
                    banner = None
                continue
            if raw.startswith("banner ") and raw.endswith("^C") and raw.count("^C") == 1:
                banner = [raw]
                continue
            if not raw.strip() or raw.startswith("!") or raw.strip() == "end":
                continue
            if raw.startswith(" ") and nodes:
                nodes[-1].children.append(raw.strip())
            else:
                nodes.append(Node(raw.strip()))
        return nodes

    # ---- queries
    def hostname(self) -> str:
        for node in self.running:
            if node.line.startswith("hostname "):
                return node.line.split(None, 1)[1]
        return "Switch" if self.role == "switch" else "Router"

    def node(self, line: str) -> Node | None:
        return next((n for n in self.running if n.line == line), None)

    def interfaces(self) -> list[Node]:
        return [n for n in self.running if n.line.startswith("interface ")]

    def vlans(self) -> dict[int, tuple[str, str]]:
        vlans = {vid: (name, "active" if vid == 1 else "act/unsup") for vid, name in DEFAULT_VLANS.items()}
        for node in self.running:
            match = re.fullmatch(r"vlan (\d+)", node.line)
            if match:
                vid = int(match.group(1))
                name = next((c.split(None, 1)[1] for c in node.children if c.startswith("name ")), f"VLAN{vid:04d}")
                state = "suspended" if "state suspend" in node.children else "active"
                vlans[vid] = (name, state)
        return dict(sorted(vlans.items()))

    def render_config(self) -> str:
        out = []
        for node in self.running:
            out.append(node.line)
            out.extend(" " + child for child in node.children)
            out.append("!")
        return "\n".join(out) + "\nend\n"

    # ---- changes
    def set_line(self, parent: Node | None, line: str) -> None:
        """Add a configuration line, replacing the line it supersedes."""
        lines = parent.children if parent else None
        if lines is None:
            if line.startswith("hostname "):
                self._replace_top("hostname ", line)
            elif line.startswith("enable secret "):
                secret = line.split()[-1]
                self._replace_top("enable secret ", "enable secret 9 " + _hash_secret(self.name, secret))
                self.enable_secret = secret
            elif line.startswith("username "):
                self._replace_top(f"username {line.split()[1]} ", self._hide_secret(line))
            elif line == "aaa new-model":
                # As IOS does: the lines' own login methods go; logins use AAA's default list from now on
                # (and `no aaa new-model` does not bring them back).
                if self.node(line) is None:
                    self.running.append(Node(line))
                for node in self.running:
                    if node.line.startswith("line "):
                        node.children[:] = [c for c in node.children if c not in ("login", "login local")]
            else:
                key = _single_key(line)
                if key:
                    self._replace_top(key + " ", line)
                elif self.node(line) is None:
                    self.running.append(Node(line))
        else:
            key = _single_key(line)
            if key:
                lines[:] = [c for c in lines if not (c == key or c.startswith(key + " "))]
            if line == "shutdown" or line == "no shutdown":
                lines[:] = [c for c in lines if c != "shutdown"]
                if line == "no shutdown":
                    return
            if line not in lines:
                lines.append(line)
                _sort_children(lines)
        self.last_change = time.time()

    def remove_line(self, parent: Node | None, line: str) -> bool:
        """The `no` form: remove what ``line`` configured. True if anything changed."""
        if parent is not None:
            before = len(parent.children)
            if line == "shutdown":
                parent.children[:] = [c for c in parent.children if c != "shutdown"]
            else:
                parent.children[:] = [c for c in parent.children if not (c == line or c.startswith(line + " "))]
            changed = len(parent.children) != before
        else:
            before = len(self.running)
            self.running = [
                n
                for n in self.running
                if not (n.line == line or (n.line.startswith(line + " ") and not _is_container(n.line)))
            ]
            changed = len(self.running) != before
        if changed:
            self.last_change = time.time()
        return changed

    def _replace_top(self, prefix: str, line: str) -> None:
        for node in self.running:
            if node.line.startswith(prefix) or node.line == prefix.strip():
                node.line = line
                return
        # Keep hostname-like globals before interfaces, as IOS does.
        index = next((i for i, n in enumerate(self.running) if _is_container(n.line)), len(self.running))
        self.running.insert(index, Node(line))

    def _hide_secret(self, line: str) -> str:
        match = re.match(r"(username \S+(?: privilege \d+)?) (secret|password) (?:0 )?(\S+)$", line)
        if match and not re.match(r".* (secret|password) \d ", line):
            return f"{match.group(1)} secret 9 {_hash_secret(self.name, match.group(3))}"
        return line

    def set_snmp_user(self, line: str) -> bool:
        """`snmp-server user NAME GROUP v3 auth sha P priv aes 128 P`: kept apart, like IOS."""
        match = re.fullmatch(
            r"snmp-server user (\S+) (\S+) v3(?: auth (md5|sha) (\S+)(?: priv (des|3des|aes (?:128|192|256)) (\S+))?)?",
            line,
        )
        if not match:
            return False
        name, group, auth, _apass, priv, _ppass = match.groups()
        self.snmp_users[name] = {
            "group": group,
            "auth": {"sha": "SHA", "md5": "MD5"}.get(auth or "", "None"),
            "priv": {"aes 128": "AES128", "aes 192": "AES192", "aes 256": "AES256", "des": "DES", "3des": "3DES"}.get(
                priv or "", "None"
            ),
        }
        self.last_change = time.time()
        return True

    def remove_snmp_user(self, line: str) -> bool:
        name = line.split()[2] if len(line.split()) > 2 else ""
        return self.snmp_users.pop(name, None) is not None

    def show_snmp_user(self) -> str:
        out = []
        engine = "800000090300" + self.mac.replace(":", "")
        for name, user in sorted(self.snmp_users.items()):
            out += [
                f"User name: {name}",
                f"Engine ID: {engine}",
                "storage-type: nonvolatile\t active",
                f"Authentication Protocol: {user['auth']}",
                f"Privacy Protocol: {user['priv']}",
                f"Group-name: {user['group']}",
                "",
            ]
        return "\n".join(out) + "\n" if out else ""

    def open_container(self, line: str) -> Node:
        node = self.node(line)
        if node is None:
            node = Node(line)
            if line.startswith("vlan "):
                index = next(
                    (i for i, n in enumerate(self.running) if n.line.startswith("interface ")), len(self.running)
                )
                self.running.insert(index, node)
            else:
                index = next((i for i, n in enumerate(self.running) if n.line.startswith("line ")), len(self.running))
                self.running.insert(index, node)
            self.last_change = time.time()
        return node

    # ---- show outputs
    def show_version(self) -> str:
        up = int(time.time() - self.booted)
        days, rest = divmod(up, 86400)
        hours, minutes = rest // 3600, (rest % 3600) // 60
        uptime = f"{days} days, {hours} hours, {minutes} minutes" if days else f"{hours} hours, {minutes} minutes"
        m = self.model
        family = "C2960X" if self.role == "switch" else "ISR"
        lines = [
            f"Cisco IOS Software, {family} Software ({m['image']}), Version {m['version']}, RELEASE SOFTWARE (fc3)",
            "Copyright (c) 1986-2023 by Cisco Systems, Inc.",
            "Compiled Tue 28-Feb-23 10:31 by mcpre",
            "",
            f"ROM: {'Bootstrap program is C2960X boot loader' if self.role == 'switch' else 'IOS-XE ROMMON'}",
            "",
            f"{self.hostname()} uptime is {uptime}",
            "System returned to ROM by power-on",
            f'System image file is "{m["file"]}"',
            "Last reload reason: power-on",
            "",
            m["processor"],
            f"Processor board ID {self.serial}",
            f"{self.ports} Gigabit Ethernet interfaces",
            "",
            f"Base ethernet MAC Address       : {self.mac}",
            "",
            "Configuration register is 0xF" if self.role == "switch" else "Configuration register is 0x2102",
            "",
        ]
        return "\n".join(lines)

    def _access_ports(self) -> dict[int, list[str]]:
        ports: dict[int, list[str]] = {}
        for node in self.interfaces():
            name = node.line.split(None, 1)[1]
            if not re.match(r"(GigabitEthernet|FastEthernet)\d+/\d+/\d+$", name) or name.startswith(
                "GigabitEthernet0/0/"
            ):
                continue
            if "switchport mode trunk" in node.children:
                continue
            vid = next((int(c.split()[-1]) for c in node.children if c.startswith("switchport access vlan ")), 1)
            ports.setdefault(vid, []).append(short_interface(name))
        return ports

    def show_vlan(self, brief: bool) -> str:
        ports = self._access_ports()
        out = [
            "",
            "VLAN Name                             Status    Ports",
            "---- -------------------------------- --------- -------------------------------",
        ]
        vlans = self.vlans()
        for vid, (name, state) in vlans.items():
            members = ports.get(vid, [])
            chunks = [members[i : i + 4] for i in range(0, len(members), 4)] or [[]]
            out.append(f"{vid:<4} {name[:32]:<32} {state:<9} {', '.join(chunks[0])}".rstrip())
            for chunk in chunks[1:]:
                out.append(" " * 48 + ", ".join(chunk))
        if not brief:
            out += [
                "",
                "VLAN Type  SAID       MTU   Parent RingNo BridgeNo Stp  BrdgMode Trans1 Trans2",
                "---- ----- ---------- ----- ------ ------ -------- ---- -------- ------ ------",
            ]
            for vid in vlans:
                kind = {1002: "fddi", 1003: "tr", 1004: "fdnet", 1005: "trnet"}.get(vid, "enet")
                out.append(f"{vid:<4} {kind:<5} {100000 + vid:<10} 1500  -      -      -        -    -        0      0")
            out += [
                "",
                "Remote SPAN VLANs",
                "------------------------------------------------------------------------------",
                "",
                "",
                "Primary Secondary Type              Ports",
                "------- --------- ----------------- ------------------------------------------",
            ]
        return "\n".join(out) + "\n"

    def show_interfaces_status(self) -> str:
        out = ["", "Port      Name               Status       Vlan       Duplex  Speed Type"]
        for node in self.interfaces():
            name = node.line.split(None, 1)[1]
            if not re.match(r"GigabitEthernet\d+/\d+/\d+$", name):
                continue
            description = next((c.split(None, 1)[1] for c in node.children if c.startswith("description ")), "")
            if "shutdown" in node.children:
                status = "disabled"
            elif description:
                status = "connected"
            else:
                status = "notconnect"
            if "switchport mode trunk" in node.children:
                vlan = "trunk"
            elif any(c.startswith("ip address ") for c in node.children) or name.startswith("GigabitEthernet0/0/"):
                vlan = "routed"
            else:
                vlan = next((c.split()[-1] for c in node.children if c.startswith("switchport access vlan ")), "1")
            duplex, speed = ("a-full", "a-1000") if status == "connected" else ("auto", "auto")
            kind = "1000BaseSX SFP" if "/1/" in name and self.role == "switch" else "10/100/1000BaseTX"
            out.append(
                f"{short_interface(name):<9} {description[:18]:<18} {status:<12} {vlan:<10} "
                f"{duplex:>6} {speed:>6} {kind}"
            )
        return "\n".join(out) + "\n"

    def show_ip_interface_brief(self) -> str:
        out = ["Interface              IP-Address      OK? Method Status                Protocol"]
        for node in self.interfaces():
            name = node.line.split(None, 1)[1]
            ip = next((c.split()[2] for c in node.children if c.startswith("ip address ")), "unassigned")
            down = "shutdown" in node.children
            status = "administratively down" if down else "up"
            out.append(
                f"{name:<22} {ip:<15} YES {'manual' if ip != 'unassigned' else 'unset':<6} "
                f"{status:<21} {'down' if down else 'up'}"
            )
        return "\n".join(out) + "\n"


def _thread_timer(delay: float, callback: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(delay, callback)
    timer.daemon = True
    timer.start()
    return timer


class GearError(Exception):
    """A device refused a command; the text is what it prints."""


@dataclass
class Rollback:
    """A pending Rollback Confirmed Change: revert to ``archive`` at ``deadline`` unless confirmed."""

    archive: str
    minutes: int
    user: str
    configured: float
    deadline: float
    token: int


def _single_key(line: str) -> str | None:
    for key in SINGLE_VALUE:
        if line == key or line.startswith(key + " "):
            return key
    return None


def _is_container(line: str) -> bool:
    return line.split()[0] in SUBMODES if line else False


_CHILD_ORDER = ("description", "switchport access", "switchport trunk", "switchport mode", "ip address", "shutdown")


def _sort_children(lines: list[str]) -> None:
    """IOS prints interface lines in a fixed order, not in the order typed."""

    def rank(line: str) -> int:
        return next((i for i, prefix in enumerate(_CHILD_ORDER) if line.startswith(prefix)), len(_CHILD_ORDER))

    lines.sort(key=rank)
