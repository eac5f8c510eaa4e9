"""Reaching the fleet: which inventory, the lab's paths, credentials for PCs and gear, and which hosts.

The bottom of the ops tools: ``netgear``, ``fleet``, ``readiness``, ``relocation``,
``certs`` and ``silences`` reach hosts through it, and the lab takes its paths from
it. It imports only the registry, so production code never builds the lab: a lab
inventory's credentials are files under the lab's home (:class:`LabPaths`), which
``motcua lab up`` writes, and everything else comes from the environment:

- counter PCs (fabric): ``MOTCUA_FLEET_USER`` (default: the operator's own login, as each
  support person has an account of their own on the counters), ``MOTCUA_FLEET_KEY_FILE``
  (else the SSH agent), ``MOTCUA_FLEET_KNOWN_HOSTS`` (default ``~/.ssh/known_hosts``); the
  only thing run as root is an allow-listed remediation, through ``sudo -n motcua-support
  ACTION``. The lab: its support person, ``LAB_SUPPORT_USER``, with the lab key.
- routers and switches (netmiko): ``MOTCUA_GEAR_USER``, ``MOTCUA_GEAR_KEY_FILE`` or
  ``MOTCUA_GEAR_PASSWORD``, ``MOTCUA_GEAR_ENABLE_SECRET``, ``MOTCUA_GEAR_KNOWN_HOSTS``;
  the playbook passes them from the vault. The lab: its gear user, key and enable secret.

Host keys are always checked: an unknown key is refused, never added.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ToolError
from .registry import ADDRESS_SPACES, Registry, UnknownSiteError, load_registry

DEFAULT_LAB_HOME = Path("/var/lib/motcua-lab")
DEFAULT_LAB_CACHE = Path("/var/cache/motcua-lab")
LEDGER_NAME = "certificates.yml"  # the certificate ledger beside an inventory, or in the lab's home
GEAR_USER = "dxadmin"  # the lab gear's administrator (production: MOTCUA_GEAR_USER)
LAB_SUPPORT_USER = "hotro.an"  # the lab's support person on the counters (inventory/lab: counter_remote_support_staff)


class AccessError(ToolError):
    """An inventory, a host selection or credentials that cannot be used; the message says which."""


def lab_home(env: dict[str, str] | None = None) -> Path:
    """The lab's home: ``MOTCUA_LAB_HOME``, else /var/lib/motcua-lab."""
    value = (os.environ if env is None else env).get("MOTCUA_LAB_HOME")
    return Path(value) if value else DEFAULT_LAB_HOME


def lab_cache(env: dict[str, str] | None = None) -> Path:
    """The lab's image and package cache: ``MOTCUA_LAB_CACHE``, else /var/cache/motcua-lab."""
    value = (os.environ if env is None else env).get("MOTCUA_LAB_CACHE")
    return Path(value) if value else DEFAULT_LAB_CACHE


@dataclass(frozen=True)
class LabPaths:
    """Where a lab home keeps what its hosts and the tools share (``motcua lab up`` writes them)."""

    home: Path

    @property
    def ssh_dir(self) -> Path:
        return self.home / "ssh"

    @property
    def key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.ssh_dir / "config"

    @property
    def gear(self) -> Path:
        return self.home / "gear"

    @property
    def enable_secret(self) -> Path:
        return self.gear / "enable-secret"

    @property
    def certificates(self) -> Path:
        return self.home / "certificates"

    @property
    def ledger(self) -> Path:
        return self.certificates / LEDGER_NAME

    @property
    def netgear_backups(self) -> Path:
        return self.home / "netgear-backups"


# ---------------------------------------------------------------- the inventory a tool works on


@dataclass(frozen=True)
class InventorySource:
    """What an inventory's plugin config (``motcua.yml``) names."""

    config_file: Path
    registry_dir: Path
    address_space: str
    sites: list[str] | None
    max_counters: int | None
    certificates: Path | None = None  # the certificate ledger (motcua/registry/certificates.py)

    @property
    def lab(self) -> bool:
        return self.address_space == "lab"

    @property
    def directory(self) -> Path:
        """The inventory's directory: the schedule, rosters and ledger sit beside ``motcua.yml``."""
        return self.config_file.parent

    def load(self) -> Registry:
        """The registry subset this inventory holds (RegistryError when invalid, AccessError for a site it lacks)."""
        try:
            return load_registry(self.registry_dir).subset(self.sites, self.max_counters)
        except UnknownSiteError as exc:  # a site of the config that the registry does not have
            raise AccessError(f"{self.config_file}: {exc}") from None


def read_inventory_source(inventory: Path, env: dict[str, str] | None = None) -> InventorySource:
    """Read an inventory directory's (or file's) motcua.ops.registry config; AccessError names the file."""
    config_file = inventory / "motcua.yml" if inventory.is_dir() else inventory
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AccessError(f"{config_file}: cannot read the inventory config: {exc}") from None
    if not isinstance(config, dict) or config.get("plugin") != "motcua.ops.registry":
        raise AccessError(f"{config_file}: not a motcua.ops.registry inventory config")
    space = config.get("address_space", "production")
    if space not in ADDRESS_SPACES:
        raise AccessError(f"{config_file}: address_space must be one of {', '.join(ADDRESS_SPACES)}, got {space!r}")
    sites = [str(s) for s in config.get("sites") or []] or None
    ledger = config.get("certificates")
    if ledger:
        certificates: Path | None = config_file.parent / str(ledger)
    elif space == "lab":  # the lab's ledger changes as the lab runs: it lives in the lab home (seeded by lab up)
        certificates = LabPaths(lab_home(env)).ledger
    else:
        certificates = None
    return InventorySource(config_file, config_file.parent / str(config.get("registry", "")), space, sites,
                           config.get("max_counters"), certificates)  # fmt: skip


# ---------------------------------------------------------------- which hosts


@dataclass(frozen=True)
class Target:
    """One host a tool reaches: its registry name, site, role and the address to use."""

    name: str
    site: str
    role: str
    address: str


def select_hosts(
    registry: Registry,
    lab: bool,
    roles: Iterable[str],
    what: str,
    hosts: Iterable[str] | None = None,
    sites: Iterable[str] | None = None,
    site_roles: Iterable[str] | None = None,
) -> list[Target]:
    """Hosts of ``roles`` by name or site; unknown sites and names are refused before any connection.

    ``site_roles`` narrows what a site means when no host is named (a site's counters, not its kiosks).
    ``what`` names the hosts in the refusal ("router or switch").
    """
    roles, wanted_hosts, wanted_sites = set(roles), set(hosts or []), set(sites or [])
    narrow = set(site_roles) if site_roles is not None and not wanted_hosts else None
    unknown_sites = wanted_sites - set(registry.sites)
    if unknown_sites:
        raise AccessError(f"unknown site(s): {', '.join(sorted(unknown_sites))}")
    out = []
    for site in registry.sites.values():
        if wanted_sites and site.code not in wanted_sites:
            continue
        for host in site.hosts:
            if host.role not in roles or (narrow is not None and host.role not in narrow):
                continue
            if wanted_hosts and host.name not in wanted_hosts:
                continue
            out.append(Target(host.name, site.code, host.role, str(host.lab_address if lab else host.address)))
    unknown = wanted_hosts - {t.name for t in out}
    if unknown:
        raise AccessError(f"not a {what} of this inventory: {', '.join(sorted(unknown))}")
    return out


# ---------------------------------------------------------------- credentials


@dataclass(frozen=True)
class PcAccess:
    """SSH to counter PCs and kiosks with fabric: user, key, known_hosts, and a timeout for every step."""

    user: str
    key_file: Path | None
    known_hosts: Path
    timeout: float

    @classmethod
    def for_inventory(cls, source: InventorySource, timeout: float = 30.0, env: dict | None = None) -> PcAccess:
        env = dict(os.environ if env is None else env)
        if source.lab:
            paths = LabPaths(lab_home(env))
            return cls(LAB_SUPPORT_USER, paths.key, paths.known_hosts, timeout)
        key = env.get("MOTCUA_FLEET_KEY_FILE")
        known = Path(env.get("MOTCUA_FLEET_KNOWN_HOSTS") or Path.home() / ".ssh" / "known_hosts")
        user = env.get("MOTCUA_FLEET_USER") or getpass.getuser()
        return cls(user, Path(key) if key else None, known, timeout)

    def connect(self, target: Target):
        """A fabric Connection (not yet open) that refuses unknown host keys."""
        import paramiko
        from fabric import Config, Connection

        if not self.known_hosts.is_file():
            raise AccessError(f"known_hosts file {self.known_hosts} not found: host keys are always checked")
        kwargs: dict[str, object] = {
            "banner_timeout": self.timeout,
            "auth_timeout": self.timeout,
            "look_for_keys": False,
            "allow_agent": self.key_file is None,
        }
        if self.key_file:
            kwargs["key_filename"] = str(self.key_file)
        config = Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": True}})
        conn = Connection(target.address, user=self.user, connect_timeout=self.timeout, connect_kwargs=kwargs,
                          config=config)  # fmt: skip
        conn.client.load_host_keys(str(self.known_hosts))
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        return conn


@dataclass(frozen=True)
class GearAccess:
    """SSH to routers and switches with netmiko (cisco_ios): user, key or password, enable secret."""

    username: str
    secret: str = field(repr=False)
    known_hosts: Path
    key_file: Path | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 20.0

    @classmethod
    def for_inventory(cls, source: InventorySource, timeout: float = 20.0, env: dict | None = None) -> GearAccess:
        env = dict(os.environ if env is None else env)
        if source.lab:
            paths = LabPaths(lab_home(env))
            if not paths.enable_secret.exists():
                raise AccessError(f"{paths.enable_secret} is missing: is the lab up? (`motcua lab up`)")
            return cls(GEAR_USER, paths.enable_secret.read_text().strip(), paths.known_hosts,
                       key_file=paths.key, timeout=timeout)  # fmt: skip
        missing = [name for name in ("MOTCUA_GEAR_USER", "MOTCUA_GEAR_ENABLE_SECRET") if not env.get(name)]
        if not env.get("MOTCUA_GEAR_KEY_FILE") and not env.get("MOTCUA_GEAR_PASSWORD"):
            missing.append("MOTCUA_GEAR_KEY_FILE or MOTCUA_GEAR_PASSWORD")
        if missing:
            raise AccessError(f"{source.config_file}: production gear credentials come from the environment; "
                              f"not set: {', '.join(missing)}")  # fmt: skip
        known = Path(env.get("MOTCUA_GEAR_KNOWN_HOSTS") or Path.home() / ".ssh" / "known_hosts")
        if not known.exists():
            raise AccessError(f"MOTCUA_GEAR_KNOWN_HOSTS: {known} does not exist (host keys are always checked)")
        key = env.get("MOTCUA_GEAR_KEY_FILE")
        return cls(env["MOTCUA_GEAR_USER"], env["MOTCUA_GEAR_ENABLE_SECRET"], known,
                   key_file=Path(key) if key else None, password=env.get("MOTCUA_GEAR_PASSWORD"),
                   timeout=timeout)  # fmt: skip

    def netmiko_params(self, target: Target) -> dict[str, Any]:
        params: dict[str, Any] = {
            "device_type": "cisco_ios",
            "host": target.address,
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


def names(value: str | None) -> list[str] | None:
    """Host names or site codes given as ``a,b,c`` on a command line (None when not given)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None
