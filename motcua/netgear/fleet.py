"""Reaching the gear: which devices, with which credentials, many at a time.

Devices come from an inventory's registry (the same model the inventory
plugin serves), so ``motcua netgear`` and ``playbooks/network.yml`` see the
same routers and switches at the same addresses. Credentials never come from
the repository:

- a lab inventory uses the lab's own key, enable secret and known_hosts
  (written by ``motcua lab up`` under ``MOTCUA_LAB_HOME``);
- production reads ``MOTCUA_GEAR_USER``, ``MOTCUA_GEAR_KEY_FILE`` or
  ``MOTCUA_GEAR_PASSWORD``, ``MOTCUA_GEAR_ENABLE_SECRET`` and
  ``MOTCUA_GEAR_KNOWN_HOSTS`` (default ``~/.ssh/known_hosts``) from the
  environment; the playbook passes them from the vault.

Host keys are always checked. Every step of a session is bounded by the
timeout, so a device that stops answering costs at most that long.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..inventory import InventorySource
from ..lab.lab import DEFAULT_HOME, GEAR_USER, Lab
from ..registry import Registry
from .intent import device_intent


def lab_home(env: dict | None = None) -> Path:
    """The lab's home: MOTCUA_LAB_HOME, else the lab's default."""
    value = (os.environ if env is None else env).get("MOTCUA_LAB_HOME")
    return Path(value) if value else DEFAULT_HOME


class NetgearError(Exception):
    """A problem with the command's input: printed as is, exit 2."""


@dataclass(frozen=True)
class Device:
    name: str
    site: str
    role: str
    address: str
    intent: dict = field(compare=False, repr=False)


@dataclass(frozen=True)
class Access:
    username: str
    secret: str
    known_hosts: Path
    key_file: Path | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 20.0

    @classmethod
    def for_inventory(cls, source: InventorySource, timeout: float = 20.0, env: dict | None = None) -> Access:
        env = dict(os.environ if env is None else env)
        if source.lab:
            lab = Lab(source.config_file.parent, lab_home(env))
            secret_file = lab.home / "gear" / "enable-secret"
            if not secret_file.exists():
                raise NetgearError(f"{secret_file} is missing: is the lab up? (`motcua lab up`)")
            return cls(GEAR_USER, secret_file.read_text().strip(), lab.ssh_dir / "known_hosts",
                       key_file=lab.key, timeout=timeout)  # fmt: skip
        missing = [name for name in ("MOTCUA_GEAR_USER", "MOTCUA_GEAR_ENABLE_SECRET") if not env.get(name)]
        if not env.get("MOTCUA_GEAR_KEY_FILE") and not env.get("MOTCUA_GEAR_PASSWORD"):
            missing.append("MOTCUA_GEAR_KEY_FILE or MOTCUA_GEAR_PASSWORD")
        if missing:
            raise NetgearError(
                f"{source.config_file}: production gear credentials come from the environment; "
                f"not set: {', '.join(missing)}"
            )
        known = Path(env.get("MOTCUA_GEAR_KNOWN_HOSTS") or Path.home() / ".ssh" / "known_hosts")
        if not known.exists():
            raise NetgearError(f"MOTCUA_GEAR_KNOWN_HOSTS: {known} does not exist (host keys are always checked)")
        key = env.get("MOTCUA_GEAR_KEY_FILE")
        return cls(env["MOTCUA_GEAR_USER"], env["MOTCUA_GEAR_ENABLE_SECRET"], known,
                   key_file=Path(key) if key else None, password=env.get("MOTCUA_GEAR_PASSWORD"),
                   timeout=timeout)  # fmt: skip

    def netmiko_params(self, device: Device) -> dict[str, Any]:
        params: dict[str, Any] = {
            "device_type": "cisco_ios",
            "host": device.address,
            "username": self.username,
            "secret": self.secret,
            "allow_agent": False,
            "ssh_strict": True,
            "system_host_keys": False,
            "alt_host_keys": True,
            "alt_key_file": str(self.known_hosts),
            "conn_timeout": self.timeout,
            "auth_timeout": self.timeout,
            "banner_timeout": self.timeout,
            "read_timeout_override": self.timeout,
            "keepalive": 5,
        }
        if self.key_file:
            params.update(use_keys=True, key_file=str(self.key_file))
        if self.password:
            params["password"] = self.password
        return params


def select_devices(
    registry: Registry, lab: bool, hosts: Iterable[str] | None = None, sites: Iterable[str] | None = None
) -> list[Device]:
    """Routers and switches of the registry, optionally only some hosts or sites (unknown ones refused)."""
    wanted_hosts = set(hosts or [])
    wanted_sites = set(sites or [])
    unknown_sites = wanted_sites - set(registry.sites)
    if unknown_sites:
        raise NetgearError(f"unknown site(s): {', '.join(sorted(unknown_sites))}")
    out = []
    for site in registry.sites.values():
        for host in site.hosts:
            if host.role not in ("router", "switch"):
                continue
            if wanted_hosts and host.name not in wanted_hosts:
                continue
            if wanted_sites and site.code not in wanted_sites:
                continue
            address = str(host.lab_address if lab else host.address)
            out.append(Device(host.name, site.code, host.role, address, device_intent(registry, host, lab)))
    unknown = wanted_hosts - {d.name for d in out}
    if unknown:
        raise NetgearError(f"not a router or switch of this inventory: {', '.join(sorted(unknown))}")
    return out


class Progress:
    """A one-line progress bar on a terminal; a line per tenth otherwise (logs stay short)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, enabled: bool = True):
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.tty = self.stream.isatty()
        self.done = self.failed = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._last_tenth = -1

    def step(self, ok: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += 0 if ok else 1
            if not self.enabled:
                return
            tenth = self.done * 10 // self.total
            if self.tty:
                width = 30
                filled = width * self.done // self.total
                self.stream.write(
                    f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                    f" failed {self.failed} {time.monotonic() - self.started:5.1f}s"
                )
                if self.done == self.total:
                    self.stream.write("\n")
                self.stream.flush()
            elif tenth != self._last_tenth or self.done == self.total:
                self._last_tenth = tenth
                self.stream.write(f"{self.label}: {self.done}/{self.total} done, {self.failed} failed\n")
                self.stream.flush()


@dataclass
class Outcome:
    device: Device
    ok: bool
    value: Any = None
    error: str | None = None
    seconds: float = 0.0


def run_each(
    devices: list[Device],
    action: Callable[[Device], Any],
    workers: int = 32,
    label: str = "gear",
    progress: bool = True,
) -> list[Outcome]:
    """``action`` on every device, ``workers`` at a time; outcomes in the devices' order.

    An exception is the device's failure (its message kept), never the run's.
    """
    bar = Progress(len(devices), label, enabled=progress)

    def one(device: Device) -> Outcome:
        started = time.monotonic()
        try:
            value = action(device)
            outcome = Outcome(device, True, value)
        except Exception as exc:
            outcome = Outcome(device, False, error=_describe(exc))
        outcome.seconds = time.monotonic() - started
        bar.step(outcome.ok)
        return outcome

    if workers <= 1:
        return [one(d) for d in devices]
    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(devices)))) as pool:
        futures = {pool.submit(one, d): d.name for d in devices}
        results = {futures[f]: f.result() for f in as_completed(futures)}
    return [results[d.name] for d in devices]


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"
