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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..inventory import InventorySource
from ..lab.lab import DEFAULT_HOME, GEAR_USER, Lab
from ..parallel import Outcome, Progress, run_each  # noqa: F401 - re-exported for the netgear tools
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
