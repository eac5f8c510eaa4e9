"""One CLI session on a simulated device: modes, prompts, commands, output filters."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass

from .device import (
    GLOBAL_COMMANDS,
    INVALID,
    SUBMODE_COMMANDS,
    SUBMODES,
    Device,
    GearError,
    Node,
    normalise_interface,
)

# Exec commands as keyword sequences; "#" stands for a number, "*" for the rest of the line.
EXEC_COMMANDS: list[tuple[tuple[str, ...], str]] = [
    (("enable",), "enable"),
    (("disable",), "disable"),
    (("exit",), "exit"),
    (("logout",), "exit"),
    (("quit",), "exit"),
    (("end",), "end"),
    (("terminal", "length", "#"), "noop"),
    (("terminal", "width", "#"), "noop"),
    (("terminal", "no", "monitor"), "noop"),
    (("terminal", "monitor"), "noop"),
    (("show", "version"), "show_version"),
    (("show", "running-config", "*"), "show_running"),
    (("show", "startup-config"), "show_startup"),
    (("show", "vlan", "brief"), "show_vlan_brief"),
    (("show", "vlan"), "show_vlan"),
    (("show", "interfaces", "status"), "show_interfaces_status"),
    (("show", "ip", "interface", "brief"), "show_ip_interface_brief"),
    (("show", "privilege"), "show_privilege"),
    (("show", "clock"), "show_clock"),
    (("show", "snmp", "user"), "show_snmp_user"),
    (("configure", "terminal"), "configure"),
    (("configure", "terminal", "revert", "timer", "*"), "configure_revert_timer"),
    (("configure", "confirm"), "configure_confirm"),
    (("configure", "revert", "*"), "configure_revert"),
    (("configure", "replace", "*"), "configure_replace"),
    (("archive", "config"), "archive_config"),
    (("show", "archive"), "show_archive"),
    (("show", "archive", "config", "rollback", "timer"), "show_rollback_timer"),
    (("show", "logging"), "show_logging"),
    (("dir",), "dir"),
    (("dir", "*"), "dir"),
    (("verify", "*"), "verify"),
    (("delete", "*"), "delete"),
    (("write", "memory"), "write"),
    (("write",), "write"),
    (("copy", "running-config", "startup-config"), "copy_run_start"),
]
PRIVILEGED_ONLY = {"configure", "write", "copy_run_start", "show_running", "show_startup", "disable", "show_snmp_user",
                   "configure_revert_timer", "configure_confirm", "configure_revert", "configure_replace",
                   "archive_config", "show_archive", "show_rollback_timer", "show_logging", "verify",
                   "delete"}  # fmt: skip
REPLACE_PROMPT = (
    "This will apply all necessary additions and deletions\n"
    "to replace the current running configuration with the\n"
    "contents of the specified configuration file, which is\n"
    "assumed to be a complete configuration, not a partial\n"
    "configuration. Enter Y if you are sure you want to proceed. ? [no]: "
)


@dataclass
class Reply:
    """What the device prints for one line, and whether the session ends."""

    text: str = ""
    close: bool = False


class Session:
    def __init__(self, device: Device, privileged: bool = False, user: str = "dxadmin"):
        self.device = device
        self.user = user
        self.level = 15 if privileged else 1
        self.mode = "exec"  # exec | config | config-if | config-line | config-vlan | ...
        self.context: Node | None = None
        self.pending: str | None = None  # "enable-password" | "copy-destination" | "banner:<delim>:<kind>"
        self.banner_lines: list[str] = []
        self.config_changes = 0

    # ---- prompt
    @property
    def prompt(self) -> str:
        if self.pending == "enable-password":
            return "Password: "
        if self.pending == "copy-destination":
            return "Destination filename [startup-config]? "
        if self.pending and self.pending.startswith("replace:"):
            return REPLACE_PROMPT
        if self.pending and self.pending.startswith("banner"):
            return ""
        host = self.device.hostname()
        if self.mode == "exec":
            return f"{host}{'#' if self.level == 15 else '>'}"
        suffix = "config" if self.mode == "config" else self.mode
        return f"{host}({suffix})#"

    # ---- input
    def handle(self, line: str) -> Reply:
        if self.pending:
            return self._pending(line)
        text = line.strip()
        if not text or text.startswith("!"):
            return Reply()
        if self.mode == "exec":
            return self._exec(text)
        if text.startswith("do "):
            return self._exec(text[3:])
        return self._config(text)

    def _pending(self, line: str) -> Reply:
        kind, self.pending = self.pending, None
        if kind == "enable-password":
            if line.strip() == self.device.enable_secret:
                self.level = 15
                return Reply()
            return Reply("% Bad secrets\n")
        if kind == "copy-destination":
            self.device.save()
            return Reply("Building configuration...\n[OK]\n")
        if kind.startswith("replace:"):
            if line.strip().lower() not in ("y", "yes"):
                return Reply()
            name, minutes = kind.removeprefix("replace:").rsplit(":", 1)
            return Reply(self._replace(name, int(minutes) if minutes else None))
        assert kind is not None and kind.startswith("banner")
        _, delim, which = kind.split(":", 2)
        if delim in line:
            self.banner_lines.append(line.split(delim, 1)[0])
            self._store_banner(which, delim)
            return Reply()
        self.banner_lines.append(line)
        self.pending = kind
        return Reply()

    def _exec(self, text: str) -> Reply:
        command, _, pipe = text.partition("|")
        words = command.split()
        action, rest, error = _match(words)
        if error:
            return Reply(error)
        if self.level < 15 and action in PRIVILEGED_ONLY:
            return Reply(_invalid(command, 0))
        output = getattr(self, f"_do_{action}")(rest)
        if isinstance(output, Reply):
            return output
        return Reply(_filter(output, pipe.strip()) if pipe else output)

    # ---- exec actions
    def _do_noop(self, rest: list[str]) -> str:
        return ""

    def _do_enable(self, rest: list[str]) -> str:
        if self.level < 15:
            self.pending = "enable-password"
        return ""

    def _do_disable(self, rest: list[str]) -> str:
        self.level = 1
        return ""

    def _do_exit(self, rest: list[str]) -> Reply:
        if self.mode == "exec":
            return Reply(close=True)
        self._leave_submode()
        return Reply()

    def _do_end(self, rest: list[str]) -> str:
        self.mode, self.context = "exec", None
        return ""

    def _do_show_version(self, rest: list[str]) -> str:
        return self.device.show_version()

    def _do_show_running(self, rest: list[str]) -> str:
        if rest and rest[0] == "?":
            return (
                "  all        Configuration with defaults\n"
                "  brief      configuration without certificate data\n"
                "  |          Output modifiers\n"
            )
        config = self.device.render_config()
        size = len(config.encode())
        return f"Building configuration...\n\nCurrent configuration : {size} bytes\n!\n{config}"

    def _do_show_startup(self, rest: list[str]) -> str:
        text = self.device.startup_text
        return f"Using {len(text.encode())} out of 524288 bytes\n!\n{text}"

    def _do_show_vlan(self, rest: list[str]) -> str:
        return self.device.show_vlan(brief=False)

    def _do_show_vlan_brief(self, rest: list[str]) -> str:
        return self.device.show_vlan(brief=True)

    def _do_show_interfaces_status(self, rest: list[str]) -> str:
        return self.device.show_interfaces_status()

    def _do_show_ip_interface_brief(self, rest: list[str]) -> str:
        return self.device.show_ip_interface_brief()

    def _do_show_privilege(self, rest: list[str]) -> str:
        return f"Current privilege level is {self.level}\n"

    def _do_show_snmp_user(self, rest: list[str]) -> str:
        return self.device.show_snmp_user()

    def _do_show_clock(self, rest: list[str]) -> str:
        return time.strftime("*%H:%M:%S.000 UTC %a %b %d %Y\n", time.gmtime())

    def _do_configure(self, rest: list[str]) -> str:
        self.mode, self.context = "config", None
        return "Enter configuration commands, one per line.  End with CNTL/Z.\n"

    def _do_configure_revert_timer(self, rest: list[str]) -> str:
        words = [w.lower() for w in rest]
        if words[:1] == ["idle"]:
            return "% The idle timer is not simulated: use an absolute time (configure terminal revert timer N)\n"
        if len(words) != 1 or not words[0].isdigit() or not 1 <= int(words[0]) <= 120:
            command = "configure terminal revert timer "
            return _invalid(command + " ".join(rest), len(command))
        try:
            name = self.device.arm_rollback(int(words[0]), self.user)
        except GearError as exc:
            return f"{exc}\n"
        self.mode, self.context = "config", None
        return (f"Rollback Confirmed Change: Backing up current running config to {name}\n"
                "Enter configuration commands, one per line.  End with CNTL/Z.\n")  # fmt: skip

    def _do_configure_confirm(self, rest: list[str]) -> str:
        try:
            self.device.confirm_rollback(self.user)
        except GearError as exc:
            return f"{exc}\n"
        return ""

    def _do_configure_revert(self, rest: list[str]) -> str:
        words = [w.lower() for w in rest]
        try:
            if words == ["now"]:
                self.device.revert_now()
                return "Rollback Done\n"
            if len(words) == 2 and words[0] == "timer" and words[1].isdigit() and 1 <= int(words[1]) <= 120:
                self.device.reset_rollback(int(words[1]))
                return ""
        except GearError as exc:
            return f"{exc}\n"
        return _invalid("configure revert " + " ".join(rest), len("configure revert "))

    def _do_configure_replace(self, rest: list[str]) -> str:
        # configure replace <archive file> [list] [force] [time N]
        if not rest:
            return "% Incomplete command.\n"
        name, options = rest[0], [w.lower() for w in rest[1:]]
        minutes = None
        if "time" in options:
            at = options.index("time")
            if at + 1 >= len(options) or not options[at + 1].isdigit() or not 1 <= int(options[at + 1]) <= 120:
                return _invalid("configure replace " + " ".join(rest), len("configure replace " + rest[0]) + 1)
            minutes = int(options[at + 1])
            del options[at : at + 2]
        if any(o not in ("list", "force", "nolock") for o in options):
            return _invalid("configure replace " + " ".join(rest), len("configure replace " + rest[0]) + 1)
        if self._config_file(name) is None:
            return f"%Error opening {name} (No such file or directory)\n"
        if "force" not in options:
            self.pending = f"replace:{name}:{minutes or ''}"
            return ""
        return self._replace(name, minutes)

    def _config_file(self, name: str) -> str | None:
        """A config file's text: an archive file, or a file on flash (copied there by SCP)."""
        text = self.device.archived(name)
        if text is None and ":" in name:
            path = self.device.flash_path(name)
            if path is not None and path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
        return text

    def _do_dir(self, rest: list[str]) -> str:
        target = rest[0] if rest else "flash:"
        system = target.split(":", 1)[0] + ":" if ":" in target else "flash:"
        if system not in ("flash:", "bootflash:"):
            return f"%Error opening {target} (No such device)\n"
        name = target.split(":", 1)[1].lstrip("/") if ":" in target else target
        files = self.device.flash_files()
        if name:
            path = self.device.flash_path(target)
            if path is None or not path.is_file():
                return f"%Error opening {target} (No such file or directory)\n"
            files = [path]
        total = 122185728 if self.device.role == "switch" else 2722713600
        used = sum(p.stat().st_size for p in self.device.flash_files())
        lines = [f"Directory of {system}/{name}", ""]
        for number, path in enumerate(files, 2):
            stamp = time.strftime("%b %d %Y %H:%M:%S +07:00", time.localtime(path.stat().st_mtime))
            lines.append(f"{number:>6}  -rw-  {path.stat().st_size:>10}  {stamp}  {path.name}")
        return "\n".join([*lines, "", f"{total} bytes total ({total - used} bytes free)"]) + "\n"

    def _do_verify(self, rest: list[str]) -> str:
        if len(rest) != 2 or rest[0].lower() != "/md5":
            return _invalid("verify " + " ".join(rest), len("verify "))
        path = self.device.flash_path(rest[1])
        if path is None or not path.is_file():
            return f"%Error opening {rest[1]} (No such file or directory)\n"
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        return f"{'.' * 20}Done!\nverify /md5 ({rest[1]}) = {digest}\n"

    def _do_delete(self, rest: list[str]) -> str:
        if len(rest) != 2 or rest[0].lower() != "/force":  # the interactive form asks; tools use /force
            return _invalid("delete " + " ".join(rest), len("delete "))
        path = self.device.flash_path(rest[1])
        if path is None or not path.is_file():
            return f"%Error deleting {rest[1]} (No such file or directory)\n"
        path.unlink()
        return ""

    def _replace(self, name: str, minutes: int | None) -> str:
        text = self._config_file(name)
        if text is None:
            return f"%Error opening {name} (No such file or directory)\n"
        out = ""
        if minutes is not None:
            try:
                backup = self.device.arm_rollback(minutes, self.user)
            except GearError as exc:
                return f"{exc}\n"
            out += f"Rollback Confirmed Change: Backing up current running config to {backup}\n"
        self.device.replace_config(text)
        self.device.syslog(f"%PARSER-6-CFGLOG_REPLACE: Configuration replaced with {name} by {self.user}")
        return out + "Total number of passes: 1\nRollback Done\n"

    def _do_archive_config(self, rest: list[str]) -> str:
        try:
            self.device.archive_config()
        except GearError as exc:
            return f"%{exc}\n"
        return ""

    def _do_show_archive(self, rest: list[str]) -> str:
        return self.device.show_archive()

    def _do_show_rollback_timer(self, rest: list[str]) -> str:
        return self.device.show_rollback_timer()

    def _do_show_logging(self, rest: list[str]) -> str:
        return self.device.show_logging()

    def _do_write(self, rest: list[str]) -> str:
        self.device.save()
        return "Building configuration...\n[OK]\n"

    def _do_copy_run_start(self, rest: list[str]) -> str:
        self.pending = "copy-destination"
        return ""

    # ---- configuration
    def _leave_submode(self) -> None:
        if self.mode == "config":
            self.mode = "exec"
        else:
            self.mode, self.context = "config", None

    def _config(self, text: str) -> Reply:
        words = text.split()
        first = words[0].lower()
        if first == "end":
            self.mode, self.context = "exec", None
            return Reply()
        if first == "exit":
            self._leave_submode()
            return Reply()
        if self.mode != "config":
            allowed = SUBMODE_COMMANDS.get(self.mode, set())
            if first in allowed and not (first == "no" and len(words) > 1 and words[1] in SUBMODES):
                return self._submode_line(text)
            if first not in GLOBAL_COMMANDS:
                return Reply(_invalid(text, 0))
            self.mode, self.context = "config", None  # IOS re-parses the line at global level
        return self._global_line(text)

    def _submode_line(self, text: str) -> Reply:
        assert self.context is not None
        if self.device.aaa() and self.context.line.startswith("line ") and text.split()[:2] == ["login", "local"]:
            return Reply(_invalid(text, len("login ")))  # under AAA: `login authentication LIST`
        self.config_changes += 1
        if text.startswith("no ") and text != "no shutdown":
            self.device.remove_line(self.context, text[3:])
        else:
            self.device.set_line(self.context, text)
        return Reply()

    def _global_line(self, text: str) -> Reply:
        words = text.split()
        first = words[0].lower()
        if first not in GLOBAL_COMMANDS:
            return Reply(_invalid(text, 0))
        self.config_changes += 1
        if first == "no":
            if len(words) < 2:
                return Reply("% Incomplete command.\n")
            target = " ".join(words[1:])
            if target.startswith("snmp-server user "):
                self.device.remove_snmp_user(target)
                return Reply()
            if words[1] == "interface":
                target = self._interface_line(words[2:]) or target
            self.device.remove_line(None, target)
            return Reply()
        if first == "banner":
            return self._banner(text)
        if text.startswith("snmp-server user "):
            if not self.device.set_snmp_user(text):
                return Reply(_invalid(text, len("snmp-server user ")))
            return Reply()
        if first in SUBMODES:
            if len(words) < 2 and first != "archive":
                return Reply("% Incomplete command.\n")
            line = "archive" if first == "archive" else text
            if first == "interface":
                line = self._interface_line(words[1:])
                if line is None:
                    return Reply(_invalid(text, len("interface ")))
                if self.device.node(line) is None and not line.split()[1].startswith(
                    ("Vlan", "Loopback", "Port-channel")
                ):
                    return Reply(_invalid(text, len("interface ")))
            elif first == "vlan":
                if not re.fullmatch(r"\d+", words[1]) or not 1 <= int(words[1]) <= 4094:
                    return Reply(
                        "% Bad VLAN list - character #1 is a non-numeric\ncharacter ('" + words[1][:1] + "').\n"
                    )
                if int(words[1]) in (1, 1002, 1003, 1004, 1005):
                    return Reply(
                        f"% Default VLAN {words[1]} may not have its name changed.\n" if int(words[1]) != 1 else ""
                    )
                line = f"vlan {int(words[1])}"
            self.context = self.device.open_container(line)
            self.mode = SUBMODES[first]
            return Reply()
        self.device.set_line(None, text)
        return Reply()

    @staticmethod
    def _interface_line(words: list[str]) -> str | None:
        name = normalise_interface(" ".join(words))
        return f"interface {name}" if name else None

    def _banner(self, text: str) -> Reply:
        match = re.match(r"banner (login|motd|exec)\s+(\S)(.*)$", text)
        if not match:
            return Reply(_invalid(text, len("banner ")))
        which, delim, rest = match.groups()
        if delim == "^" and rest.startswith("C"):  # the two characters ^C stand for Ctrl-C
            delim, rest = "^C", rest[1:]
        self.banner_lines = []
        if delim in rest:
            self.banner_lines.append(rest.split(delim, 1)[0])
            self._store_banner(which, delim)
            return Reply()
        if rest:
            self.banner_lines.append(rest)
        self.pending = f"banner:{delim}:{which}"
        return Reply(f"Enter TEXT message.  End with the character '{delim}'.\n")

    def _store_banner(self, which: str, delim: str) -> None:
        body = "\n".join(self.banner_lines).strip("\n")
        self.device.remove_line(None, f"banner {which}")
        self.device.running.append(Node(f"banner {which} ^C\n{body}\n^C"))
        self.banner_lines = []


def _match(words: list[str]) -> tuple[str, list[str], str]:
    """IOS-style abbreviation match against EXEC_COMMANDS: (action, rest, error text)."""
    if not words:
        return "noop", [], ""
    candidates = []
    for pattern, action in EXEC_COMMANDS:
        rest: list[str] = []
        ok = True
        for index, keyword in enumerate(pattern):
            if keyword == "*":
                rest = words[index:]
                break
            if index >= len(words):
                ok = False
                break
            word = words[index].lower()
            if keyword == "#":
                if not word.isdigit():
                    ok = False
                    break
            elif not keyword.startswith(word):
                ok = False
                break
        else:
            if len(words) > len(pattern):
                ok = False
        if ok:
            candidates.append((pattern, action, rest))
    if not candidates:
        return "", [], _invalid(" ".join(words), _bad_position(words))
    if len(candidates) > 1:
        return "", [], f'% Ambiguous command:  "{" ".join(words)}"\n'
    _pattern, action, rest = candidates[0]
    return action, rest, ""


def _bad_position(words: list[str]) -> int:
    """Column of the first word no command starts with (for the ^ marker)."""
    position = 0
    for index, word in enumerate(words):
        prefixes = {
            p[index]
            for p, _ in EXEC_COMMANDS
            if len(p) > index
            and all(k in ("#", "*") or k.startswith(w.lower()) for k, w in zip(p[:index], words[:index], strict=False))
        }
        if not any(k in ("#", "*") or k.startswith(word.lower()) for k in prefixes):
            return position
        position += len(word) + 1
    return position


def _invalid(text: str, column: int) -> str:
    """IOS marks the column where parsing failed under the echoed command."""
    return f"{' ' * min(column, len(text))}^\n{INVALID}\n"


def _filter(output: str, pipe: str) -> str:
    """`| include`, `| exclude`, `| begin`, `| section` as IOS applies them."""
    match = re.match(r"(\w+)\s+(.*)$", pipe)
    if not match:
        return INVALID + "\n"
    how, pattern = match.group(1).lower(), match.group(2)
    try:
        regex = re.compile(pattern)
    except re.error:
        return INVALID + "\n"
    lines = output.splitlines()
    if "include".startswith(how):
        kept = [line for line in lines if regex.search(line)]
    elif "exclude".startswith(how):
        kept = [line for line in lines if not regex.search(line)]
    elif "begin".startswith(how):
        index = next((i for i, line in enumerate(lines) if regex.search(line)), len(lines))
        kept = lines[index:]
    elif "section".startswith(how):
        kept = []
        keep = False
        for line in lines:
            if not line.startswith(" "):
                keep = bool(regex.search(line))
            if keep and line != "!":
                kept.append(line)
    else:
        return INVALID + "\n"
    return "\n".join(kept) + ("\n" if kept else "")
