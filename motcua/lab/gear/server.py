"""SSH server for the simulated gear: one asyncio process, one listener per device.

Each device listens on its own loopback address, port 22, with its own host
key. Login: the lab user with the lab's SSH key or password. Fault switches per
device, read from <state>/faults.json (written by `motcua lab fault gear ...`):

  refuse-login        every authentication fails
  drop-mid-change N   the session is cut (TCP closed, no prompt) after N configuration lines
  slow N              every reply is delayed N seconds
  lockout-on-acl      a change to an access list or the VTY access-class locks the
                      management range out: new logins are refused for as long as
                      the device keeps that ACL (a revert or a replace lets them in,
                      and so does clearing the fault); every ACL line counts while
                      the fault is set (no "once")

``"once": true`` clears a fault after it fired once.

Timers (the Rollback Confirmed Change's revert) count lab minutes: 60 seconds
unless <state>/clock.json says {"minute_seconds": N} (`motcua lab gear-minute N`).
While it also says {"held": true} (`motcua lab gear-minute N --hold`), no timer
runs out: one that is due waits, and runs out within 0.2 s of the release. A test
holds the clock so that a slow controller cannot lose a race with a short timer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
from pathlib import Path

import asyncssh

from ..switchfile import WatchedJSON, read_json, write_json
from .device import Device
from .session import Session

HELD_POLL_SECONDS = 0.2
FAULTS = ("refuse-login", "drop-mid-change", "slow", "lockout-on-acl")
ACL_LINE = re.compile(r"(no )?(access-list|access-class|ip access-list)\b")
log = logging.getLogger("motcua.lab.gear")


class FaultBook:
    """Per-device faults from a JSON file, re-read when it changes."""

    def __init__(self, path: Path):
        self.path = path
        self._file = WatchedJSON(path)

    def get(self, device: str) -> dict:
        fault = self._file.read().get(device) or {}
        return fault if fault.get("fault") in FAULTS else {}

    def fired(self, device: str) -> None:
        fault = self.get(device)
        if fault.get("once"):
            write_fault(self.path, device, None)


def write_fault(path: Path, device: str, fault: str | None, value: float | None = None, once: bool = False) -> dict:
    """Set (or clear with ``None``) a device's fault; used by the lab CLI and tests."""
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown gear fault {fault!r}; known: {', '.join(FAULTS)}")
    data = read_json(path)
    if fault is None:
        data.pop(device, None)
    else:
        entry: dict[str, object] = {"fault": fault}
        if fault == "slow":
            entry["seconds"] = float(value if value is not None else 5)
        if fault == "drop-mid-change":
            entry["after"] = int(value if value is not None else 1)
        if once:
            entry["once"] = True
        data[device] = entry
    write_json(path, data)
    return data.get(device, {})


def write_clock(path: Path, minute_seconds: float | None, held: bool = False) -> dict:
    """How many seconds a lab minute lasts for the gear's timers (None: a real minute).

    ``held``: no timer runs out until the clock is written again without it (a due
    timer then runs out at once)."""
    if minute_seconds is not None and not 0.1 <= minute_seconds <= 3600:
        raise ValueError("a lab minute lasts between 0.1 and 3600 seconds")
    data = {} if minute_seconds is None else {"minute_seconds": float(minute_seconds)}
    if held:
        data["held"] = True
    write_json(path, data)
    return data


class _Auth(asyncssh.SSHServer):
    def __init__(self, device: Device, faults: FaultBook, user: str, password: str, keys: set[bytes]):
        self.device = device
        self.keys = keys
        self.faults = faults
        self.user = user
        self.password = password
        self.refused = False

    def begin_auth(self, username: str) -> bool:
        self.refused = self.faults.get(self.device.name).get("fault") == "refuse-login"
        if self.refused:
            log.info("%s: refusing login of %s (fault switch)", self.device.name, username)
            self.faults.fired(self.device.name)
        elif self.device.locked_out() and self.faults.get(self.device.name).get("fault") == "lockout-on-acl":
            # As the VTY access-class does: the connection is let in, every login fails.
            log.info("%s: refusing login of %s: its ACL locks the management range out", self.device.name, username)
            self.refused = True
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return not self.refused and username == self.user and key.public_data in self.keys

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return not self.refused and username == self.user and password == self.password


class _Flash(asyncssh.SFTPServer):
    """The device's SCP server (``ip scp server enable``): files land on its flash, nothing else is reachable.

    As on IOS, it serves only with ``aaa new-model`` and ``aaa authorization exec``; otherwise every
    copy is refused with the reason.
    """

    def __init__(self, chan: asyncssh.SSHServerChannel, device: Device):
        super().__init__(chan)
        self.device = device

    def map_path(self, path: bytes) -> bytes:
        why = self.device.scp_server_enabled()
        if why is not None:
            log.info("%s: SCP refused: %s", self.device.name, why)
            raise asyncssh.SFTPPermissionDenied(why)
        target = self.device.flash_path(path.decode("utf-8", "replace"))
        if target is None:
            raise asyncssh.SFTPNoSuchFile(f"{path.decode('utf-8', 'replace')}: not a file on flash:")
        target.parent.mkdir(parents=True, exist_ok=True)
        return str(target).encode()


class _Lines:
    """A terminal line discipline like IOS's: input is taken one line at a time.

    Every line is echoed (when a PTY asked for echo), answered and followed by
    the next prompt before the next line is looked at, so type-ahead (a client
    that sends several returns at once, as netmiko does while it waits for a
    prompt) gives "\\r\\nprompt#" per line, never prompts run together.
    Backspace and DEL erase; CR, LF and CR LF each end one line.
    """

    def __init__(self, process: asyncssh.SSHServerProcess) -> None:
        self.process = process
        self.echo = bool(process.get_terminal_type())
        self.buffer = ""
        self.skip_lf = False

    async def readline(self, echo: bool = True) -> str | None:
        """The next line without its end, or None at end of input."""
        line, shown = "", []
        echo = echo and self.echo
        while True:
            if not self.buffer:
                if shown:  # echo what was typed so far in one write, not a packet per key
                    self.process.stdout.write("".join(shown))
                    shown = []
                chunk = await self.process.stdin.read(4096)
                if not chunk:
                    return None
                self.buffer = chunk
            char, self.buffer = self.buffer[0], self.buffer[1:]
            if self.skip_lf:
                self.skip_lf = False
                if char == "\n":
                    continue
            if char in "\r\n":
                self.skip_lf = char == "\r"
                if self.echo:
                    shown.append("\r\n")
                if shown:
                    self.process.stdout.write("".join(shown))
                return line
            if char in "\x08\x7f":
                if line:
                    line = line[:-1]
                    if echo:
                        shown.append("\b \b")
                continue
            if char < " ":
                continue
            line += char
            if echo:
                shown.append(char)


async def _session(process: asyncssh.SSHServerProcess, device: Device, faults: FaultBook) -> None:
    session = Session(device, user=process.get_extra_info("username") or "dxadmin")
    if process.command:  # `ssh device "show version"`: one command on an exec channel, no prompt
        reply = session.handle(process.command)
        process.stdout.write(reply.text.replace("\n", "\r\n"))
        process.exit(0)
        return
    lines = _Lines(process)
    process.stdout.write("\r\n" + session.prompt)
    try:
        while True:
            line = await lines.readline(echo=session.pending != "enable-password")
            if line is None:
                break
            fault = faults.get(device.name)
            if fault.get("fault") == "slow":
                await asyncio.sleep(float(fault.get("seconds", 5)))
            reply = session.handle(line)
            if fault.get("fault") == "lockout-on-acl" and session.mode != "exec" and ACL_LINE.match(line.strip()):
                device.locked_acl = device.acl_state()
                log.info("%s: this ACL locks the management range out (fault switch)", device.name)
            if (
                fault.get("fault") == "drop-mid-change"
                and session.mode != "exec"
                and session.config_changes >= int(fault.get("after", 1))
            ):
                log.info("%s: dropping the session mid-change (fault switch)", device.name)
                faults.fired(device.name)
                process.channel.get_connection().abort()
                return
            process.stdout.write(reply.text.replace("\n", "\r\n") + session.prompt)
            if reply.close:
                break
    except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, asyncssh.SignalReceived):
        pass
    except (BrokenPipeError, ConnectionError, asyncssh.DisconnectError):
        return
    process.exit(0)


async def serve(config_file: Path, state_dir: Path) -> None:
    config = json.loads(config_file.read_text())
    password = Path(config["password_file"]).read_text().strip()
    secret = Path(config["enable_secret_file"]).read_text().strip()
    keys = {
        asyncssh.import_public_key(line).public_data
        for line in Path(config["authorized_key"]).read_text().splitlines()
        if line.strip()
    }
    faults = FaultBook(state_dir / "faults.json")
    clock = WatchedJSON(state_dir / "clock.json")
    loop = asyncio.get_running_loop()

    def minute_seconds() -> float:
        try:
            return float(clock.read().get("minute_seconds") or 60.0)
        except (TypeError, ValueError):
            return 60.0

    def schedule(delay: float, callback) -> asyncio.TimerHandle:
        def due() -> None:
            if clock.read().get("held") is True:  # the clock is held: the timer waits for the release
                loop.call_later(HELD_POLL_SECONDS, due)
            else:
                callback()

        return loop.call_later(delay, due)

    keys_dir = state_dir / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    servers = []
    for entry in config["devices"]:
        name = entry["name"]
        key_file = keys_dir / name
        if not key_file.exists():
            key = asyncssh.generate_private_key("ssh-ed25519")
            key.write_private_key(str(key_file))
            key.write_public_key(str(key_file) + ".pub")
            key_file.chmod(0o600)
        device = Device(name, entry["role"], int(entry["ports"]), state_dir / "devices", secret)
        device.schedule, device.minute_seconds = schedule, minute_seconds

        def make_server(device: Device = device) -> _Auth:
            return _Auth(device, faults, config["user"], password, keys)

        async def handler(process: asyncssh.SSHServerProcess, device: Device = device) -> None:
            await _session(process, device, faults)

        server = await asyncssh.listen(
            host=entry["address"],
            port=22,
            server_factory=make_server,
            server_host_keys=[str(key_file)],
            process_factory=handler,
            sftp_factory=lambda chan, device=device: _Flash(chan, device),
            allow_scp=True,
            line_editor=False,
            reuse_address=True,
            login_timeout=30,
        )
        servers.append(server)
        log.info("%s (%s) listening on %s:22", name, entry["role"], entry["address"])
    print(f"gear simulator: {len(servers)} devices up", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
        await server.wait_closed()
