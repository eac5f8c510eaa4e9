"""`motcua lab up|down|status`: a simulated ward network on this machine.

What runs, all on loopback addresses from the registry's lab mapping:
  - counter PCs: systemd-nspawn containers (sshd on the host's own address)
  - network gear: one simulator process serving every router and switch over SSH
  - the dossier system stand-in: HTTPS (lab CA) and HTTP, with fault switches
  - the monitoring pair (dx-mon01, dx-mon02): containers like the counter PCs, each with
    Prometheus, Alertmanager (one cluster), the DX Centre's exporters and the notification
    bridge (playbooks/monitoring.yml)
  - the notification sink: the lab's SMTP server, Telegram API and webhook
    receiver, so no alert the lab sends ever leaves this machine
  - the city's NTP servers (ntp01, ntp02): this machine's clock, read-only

State (PIDs with start times, mounts) is in <home>/state.json, so `down` stops
exactly what `up` started, and `down` then `up` recovers a crashed lab.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import bcrypt

from ..access import GEAR_USER, LEDGER_NAME, AccessError, LabPaths, lab_cache, lab_home, read_inventory_source
from ..errors import ToolError
from ..netgear.secrets import type9_hash
from ..registry import Registry, UnknownSiteError, load_registry
from ..webauth import WEB_USERS
from . import ca, cgroups, counters, image, linecut
from .procs import Proc, alive, port_in_use, spawn, stop, wait_for_banner, wait_for_port

LOOPBACK = IPv4Network("127.0.0.0/8")
# The dossier stand-in sits at this offset of the DX Centre's lab block (127.79.0.20).
DOSSIER_OFFSET = 20
DOSSIER_PORTS = {"https": 443, "http": 80}
# The notification sink (motcua.lab.sink) at this offset (127.79.0.25).
SINK_OFFSET = 25
SINK_PORTS = {"http": 80, "smtp": 25}
# What the counters pull (motcua-exporters' pull-source, docs/pull.md) at this offset (127.79.0.21): the
# lab's pull source serves <lab home>/pull (repo.git, wheels/) over HTTPS (lab CA) with basic auth.
PULL_SOURCE_OFFSET = 21
PULL_SOURCE_PORT = 443
PULL_USER = "counter"  # the counters' user of the pull source (its password: <lab home>/pull/web/counter-password)
PULL_SIGNER = "dx-centre"  # the principal of the lab's signing key (<lab home>/pull/signing-key)
# The duty board's port on each monitoring host (monitoring_exporters_board_port) and the lab's read-only
# user of the plane (motcua_web_users in inventory/lab/group_vars/all.yml): it may look, not silence.
BOARD_PORT = 9443
LAB_VIEWER = "viewer"
HOST_KINDS = ("counter", "server")  # containers: counter PCs and the DX Centre's servers
# Sizing: what one booted counter container costs, and the share of the
# machine's available memory the lab may take.
MB_PER_COUNTER = 40
MEMORY_SHARE = 0.5
MAX_COUNTERS = 200


class LabError(ToolError):
    """A lab operation was refused or failed; the message says why."""


@dataclass(frozen=True)
class GearDevice:
    name: str
    address: str
    role: str  # router | switch
    site: str
    ports: int

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "address": self.address, "role": self.role, "site": self.site, "ports": self.ports}


@dataclass
class LabPlan:
    inventory: Path
    registry: Registry
    counters: list[counters.CounterHost]
    gear: list[GearDevice]
    dossier_address: str
    monitoring_address: str
    sink_address: str = ""
    servers: list[counters.CounterHost] = field(default_factory=list)
    ntp_addresses: list[str] = field(default_factory=list)
    pull_source_address: str = ""

    @property
    def hosts(self) -> list[counters.CounterHost]:
        """Every container: the counter PCs, then the DX Centre's servers."""
        return [*self.counters, *self.servers]

    def sites(self) -> list[str]:
        return list(self.registry.sites)


@dataclass
class LabState:
    inventory: str = ""
    started: float = 0.0
    procs: list[Proc] = field(default_factory=list)

    @classmethod
    def load(cls, home: Path) -> LabState:
        path = home / "state.json"
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(data["inventory"], data["started"], [Proc(**p) for p in data["procs"]])

    def save(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / "state.json.tmp"
        tmp.write_text(
            json.dumps(
                {"inventory": self.inventory, "started": self.started, "procs": [p.as_dict() for p in self.procs]},
                indent=2,
            )
        )
        tmp.replace(home / "state.json")

    def proc(self, name: str) -> Proc | None:
        return next((p for p in self.procs if p.name == name), None)

    def put(self, proc: Proc) -> None:
        self.procs = [p for p in self.procs if p.name != proc.name] + [proc]


def read_inventory_config(inventory: Path) -> tuple[Path, list[str] | None, int | None]:
    """The registry, sites and counter cap a lab inventory's plugin config names."""
    try:
        source = read_inventory_source(inventory)
    except AccessError as exc:
        raise LabError(str(exc)) from None
    if not source.lab:
        raise LabError(f"{source.config_file}: address_space must be 'lab': the lab only ever uses loopback addresses")
    return source.registry_dir, source.sites, source.max_counters


def make_plan(inventory: Path, home: Path | None = None) -> LabPlan:
    home = lab_home() if home is None else home
    registry_dir, sites, max_counters = read_inventory_config(inventory)
    try:
        registry = load_registry(registry_dir).subset(sites, max_counters)
    except UnknownSiteError as exc:
        raise LabError(f"{inventory}: {exc}") from None
    hosts, gear = [], []
    for site in registry.sites.values():
        for host in site.hosts:
            address = str(host.lab_address)
            if host.role == "counter":
                hosts.append(counters.CounterHost(host.name, address, site.code, home / "hosts" / host.name))
            elif host.role in ("router", "switch"):
                # Access ports for counters, printers, scanners, kiosks, rounded up to a real switch size.
                ports = 48 if len(site.hosts) > 20 else 24
                gear.append(GearDevice(host.name, address, host.role, site.code, ports if host.role == "switch" else 4))
    plan_dx = registry.plan.to_lab_network(registry.dx_subnet)
    dossier = str(plan_dx[DOSSIER_OFFSET])
    sink = str(plan_dx[SINK_OFFSET])
    pull_source = str(plan_dx[PULL_SOURCE_OFFSET])
    servers = [
        counters.CounterHost(h.name, str(h.lab_address), "dx", home / "hosts" / h.name)
        for h in registry.dx_hosts
        if h.role == "monitoring"
    ]
    monitoring = servers[0].address if servers else str(plan_dx[10])
    ntp = [str(h.lab_address) for h in registry.dx_hosts if h.role == "ntp"]
    for address in [
        *(h.address for h in hosts),
        *(g.address for g in gear),
        dossier,
        monitoring,
        sink,
        pull_source,
        *ntp,
    ]:
        if IPv4Address(address) not in LOOPBACK:  # the registry validator already refuses this
            raise LabError(f"refusing non-loopback lab address {address}")
    return LabPlan(inventory, registry, hosts, gear, dossier, monitoring, sink, servers, ntp, pull_source)


def check_capacity(plan: LabPlan) -> None:
    count = len(plan.counters)
    if count > MAX_COUNTERS:
        raise LabError(f"lab of {count} counter PCs refused: the limit is {MAX_COUNTERS} counter PCs per lab")
    available_mb = int(mem_available_mb())
    needed = count * MB_PER_COUNTER
    limit = int(available_mb * MEMORY_SHARE)
    if needed > limit:
        raise LabError(
            f"lab of {count} counter PCs refused: needs ~{needed} MB ({MB_PER_COUNTER} MB each) but the limit is "
            f"{limit} MB ({int(MEMORY_SHARE * 100)}% of {available_mb} MB available memory); "
            f"this machine holds at most {limit // MB_PER_COUNTER} counter PCs"
        )


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


# systemd inside each container holds several inotify instances; the kernel's
# default of 128 per user runs out at ~25 containers.
INOTIFY_PER_COUNTER = 16
INOTIFY_SYSCTL = Path("/proc/sys/fs/inotify/max_user_instances")


def ensure_inotify(count: int, progress) -> None:
    """Raise fs.inotify.max_user_instances to fit ``count`` containers (never lower it)."""
    needed = 128 + INOTIFY_PER_COUNTER * count
    current = int(INOTIFY_SYSCTL.read_text())
    if current < needed:
        INOTIFY_SYSCTL.write_text(f"{needed}\n")
        progress(f"lab: raised fs.inotify.max_user_instances {current} -> {needed} for {count} containers")


def _require_root_and_tools() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (systemd-nspawn, overlay mounts, ports 22/80/443 on loopback)")
    missing = [tool for tool in ("systemd-nspawn", "debootstrap", "ssh-keygen", "mount") if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)} (run `make lab-deps`)")


class Lab:
    def __init__(
        self,
        inventory: Path,
        home: Path | None = None,
        cache: Path | None = None,
        progress=None,
    ):
        self.inventory = Path(inventory).resolve()
        self.home = lab_home() if home is None else Path(home)
        self.cache = lab_cache() if cache is None else Path(cache)
        self.paths = LabPaths(self.home)
        self.progress = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))

    # ---- paths
    @property
    def ssh_dir(self) -> Path:
        return self.paths.ssh_dir

    @property
    def key(self) -> Path:
        return self.paths.key

    @property
    def apt_cache(self) -> Path:
        return self.cache / "apt-archives"

    # ---- operations
    def up(self) -> dict[str, object]:
        started = time.monotonic()
        _require_root_and_tools()
        plan = make_plan(self.inventory, self.home)
        check_capacity(plan)
        state = LabState.load(self.home)
        if state.inventory and state.inventory != str(self.inventory) and any(alive(p) for p in state.procs):
            raise LabError(f"a lab from {state.inventory} is up in {self.home}; run `motcua lab down` first")
        # A host whose systemd-nspawn died leaves its services holding its address.
        for proc in state.procs:
            if proc.kind in HOST_KINDS and not alive(proc) and counters.kill_leftovers(proc.namespace):
                self.progress(f"lab: {proc.name} had crashed; ended what was left of it")
        self._check_addresses(plan, state)

        ensure_inotify(len(plan.hosts), self.progress)
        rootfs = image.ensure_image(self.cache, self.progress)
        layer = image.ensure_counter_layer(self.cache, rootfs, self.apt_cache, self.progress) if plan.counters else None
        self._ensure_keys()
        ca.ensure_lab_ca(self.home / "ca", plan.dossier_address)
        self._ensure_certificates()
        self._web_credentials(plan)
        self.apt_cache.mkdir(parents=True, exist_ok=True)
        apt_ids = image.apt_user_ids(rootfs)

        state.inventory = str(self.inventory)
        state.started = state.started or time.time()
        public_key = (self.key.with_suffix(".pub")).read_text()
        host_keys: dict[str, str] = {}

        vacant = [h for h in plan.hosts if counters.is_vacant(h)]
        todo = [h for h in plan.hosts if not self._running(state, h.name) and h not in vacant]
        self.progress(
            f"lab: starting {len(todo)} of {len(plan.hosts)} hosts ({len(plan.counters)} counter PCs, "
            f"{', '.join(h.name for h in plan.servers) or 'no servers'})"
            + (f"; vacant desks: {', '.join(h.name for h in vacant)}" if vacant else "")
        )
        for host in todo:
            counters.unmount(host.merged)
            counters.harvest_packages(host, self.apt_cache)
            counters.prepare_apt_cache(host, apt_ids)
            counters.mount_overlay(host, *((layer, rootfs) if host in plan.counters and layer else (rootfs,)))
        for host in plan.hosts:  # running hosts are mounted, the others were just now
            if host not in vacant:
                host_keys[host.address] = counters.prepare(host, public_key)
        for host in todo:
            kind = "counter" if host in plan.counters else "server"
            state.put(counters.start(host, self.apt_cache, kind))
            state.save(self.home)

        if plan.gear and not self._running(state, "gear"):
            state.put(self._start_gear(plan))
            state.save(self.home)
        if not self._running(state, "dossier"):
            state.put(self._start_dossier(plan))
            state.save(self.home)
        if not self._running(state, "sink"):
            state.put(self._start_sink(plan))
            state.save(self.home)
        if not self._running(state, "pull-source"):
            state.put(self._start_pull_source(plan))
            state.save(self.home)
        if plan.ntp_addresses and not self._running(state, "ntp"):
            state.put(self._start_ntp(plan))
            state.save(self.home)

        self._wait(plan)
        self._check_boots(state, [h.name for h in todo])
        for proc in state.procs:
            if proc.kind in HOST_KINDS and not proc.namespace and alive(proc):
                proc.namespace = counters.container_namespace(proc.pid) or ""
        state.save(self.home)
        self._write_ssh_files(plan, host_keys)
        took = time.monotonic() - started
        self.progress(f"lab: up in {took:.1f} s")
        return {"seconds": took, "counters": len(plan.counters), "gear": len(plan.gear)}

    def down(self, purge: bool = False) -> list[str]:
        """Stop every process the lab started (by PID) and unmount every overlay."""
        mended = linecut.mend_all(self.home)
        if mended:
            self.progress(f"lab: the cut lines of {', '.join(mended)} mended")
        state = LabState.load(self.home)
        killed = stop(state.procs)
        unmounted = []
        hosts_dir = self.home / "hosts"
        if hosts_dir.exists():
            for proc in state.procs:
                if proc.kind in HOST_KINDS and counters.kill_leftovers(proc.namespace):
                    killed.append(f"{proc.name} (leftover container processes)")
                if proc.kind in HOST_KINDS:
                    cgroups.remove(proc.name)
            for host_root in sorted(hosts_dir.iterdir()):
                if counters.unmount(host_root / "merged"):
                    unmounted.append(host_root.name)
                counters.harvest_packages(counters.CounterHost(host_root.name, "", "", host_root), self.apt_cache)
        if purge and hosts_dir.exists():
            shutil.rmtree(hosts_dir)
            # What the counters pulled goes with them (the signing key and the wheelhouse stay).
            shutil.rmtree(self.home / "pull" / "repo.git", ignore_errors=True)
            shutil.rmtree(self.home / "aside", ignore_errors=True)
            # The bridges' rotated Zalo tokens went with the monitoring hosts' state: the stand-in starts afresh too.
            (self.home / "notifications" / "zalo-refresh-token.current").unlink(missing_ok=True)
            for token in (self.home / "notify").glob("*/zalo-refresh-token"):
                token.unlink()
        (self.home / "state.json").unlink(missing_ok=True)
        self.progress(
            f"lab: stopped {len(state.procs)} processes"
            + (f" ({', '.join(killed)} needed SIGKILL)" if killed else "")
            + f", unmounted {len(unmounted)} overlays"
            + (", removed host state" if purge else "")
        )
        return killed

    def status(self) -> list[dict[str, object]]:
        state = LabState.load(self.home)
        try:
            plan = make_plan(Path(state.inventory) if state.inventory else self.inventory, self.home)
        except LabError:
            plan = None
        rows: list[dict[str, object]] = []
        if plan is None:
            return rows
        checks = []
        for host in plan.counters:
            checks.append(("counter", host.name, host.address, 22, "" if counters.is_vacant(host) else host.name))
        for host in plan.servers:
            checks.append(("monitoring", host.name, host.address, 22, host.name))
        for host in plan.servers:  # the duty board each monitoring host serves (monitoring_exporters_board)
            checks.append(("board", f"board {host.name} (https)", host.address, BOARD_PORT, host.name))
        for device in plan.gear:
            checks.append((device.role, device.name, device.address, 22, "gear"))
        checks.append(("dossier", "dossier (https)", plan.dossier_address, DOSSIER_PORTS["https"], "dossier"))
        checks.append(("dossier", "dossier (http)", plan.dossier_address, DOSSIER_PORTS["http"], "dossier"))
        checks.append(("sink", "notifications (http)", plan.sink_address, SINK_PORTS["http"], "sink"))
        checks.append(("sink", "notifications (smtp)", plan.sink_address, SINK_PORTS["smtp"], "sink"))
        checks.append(("pull", "pull source (https)", plan.pull_source_address, PULL_SOURCE_PORT, "pull-source"))
        for address in plan.ntp_addresses:
            checks.append(("ntp", f"ntp {address}", address, 123, "ntp"))

        def probe(item):
            kind, name, address, port, proc_name = item
            if not proc_name:
                return {"kind": kind, "name": name, "address": f"{address}:{port}", "state": "vacant", "pid": None}
            proc = state.proc(proc_name)
            running = proc is not None and alive(proc)
            # NTP is UDP: running is all there is to see without asking it the time.
            answering = running and (kind == "ntp" or wait_for_port(address, port, timeout=1.0))
            if not running:
                status = "stopped"
            elif answering:
                status = "up"
            else:
                status = "starting/unreachable"
            return {
                "kind": kind,
                "name": name,
                "address": f"{address}:{port}",
                "state": status,
                "pid": proc.pid if running and proc else None,
            }

        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(probe, checks))

    def stop_host(self, name: str) -> str:
        """Stop one counter PC (a fault for training); `up` starts it again."""
        state = LabState.load(self.home)
        proc = state.proc(name)
        if proc is None or proc.kind not in HOST_KINDS:
            raise LabError(f"{name} is not a host of this lab")
        if not alive(proc):
            return f"{name}: already stopped"
        stop([proc])
        counters.kill_leftovers(proc.namespace)
        cgroups.remove(name)
        # Forget its PID namespace: once gone, the kernel may give its number to the next container
        # started, and `up` would take that one's processes for this host's leftovers.
        proc.namespace = ""
        state.save(self.home)
        counters.unmount(self.home / "hosts" / name / "merged")
        return f"{name}: stopped (pid {proc.pid}); `motcua lab up` starts it again"

    def site_offline(self, code: str, offline: bool = True) -> str:
        """A ward's line cut (or mended): its routers, switches and counter PCs stop answering."""
        plan = make_plan(self.inventory, self.home)
        site = plan.registry.sites.get(code)
        if site is None:
            raise LabError(f"--site {code}: not a site of this lab ({', '.join(plan.registry.sites)})")
        try:
            cut = linecut.set_cut(self.home, code, site.lab_subnet if offline else None)
        except (linecut.LineCutError, OSError) as exc:
            raise LabError(str(exc)) from None
        if offline:
            mend = f"motcua lab fault site-offline clear --site {code}"
            return f"{code} {site.name}: line cut ({site.lab_subnet} dropped); `{mend}` mends it"
        return f"{code}: line mended" + (f"; still cut: {', '.join(sorted(cut))}" if cut else "")

    def reset_host(self, name: str) -> str:
        """Stop one host and drop its changes: the next `up` starts it fresh from the image."""
        self.stop_host(name)  # refuses a name that is not a host of this lab
        root = self.home / "hosts" / name
        for part in ("upper", "work"):
            shutil.rmtree(root / part, ignore_errors=True)
        plan = make_plan(self.inventory, self.home)
        if any(server.name == name for server in plan.servers):
            self.zalo_grant(plan, name)  # the monitoring host's bridge: its Zalo token chain went with it
        return f"{name}: reset; `motcua lab up` starts it fresh"

    def vacate(self, name: str) -> str:
        """Free a counter desk for a PC that moves in: stop its PC and set its disk aside (`reinstate` undoes it)."""
        host = self._counter(name)
        if counters.is_vacant(host):
            return f"{name}: already vacant"
        self._stop_if_running(name)
        aside = self.home / "aside" / name
        if aside.exists():
            shutil.rmtree(aside)
        aside.parent.mkdir(parents=True, exist_ok=True)
        if host.root.exists():
            host.root.rename(aside)
        counters.mark_vacant(host, "vacated")
        return f"{name}: vacant (its PC is set aside; `motcua lab reinstate {name}` brings it back)"

    def reinstate(self, name: str) -> str:
        """Put a vacant desk's set-aside PC back (or, if it had none, a fresh PC at the next `up`)."""
        host = self._counter(name)
        if not counters.is_vacant(host):
            return f"{name}: not vacant"
        shutil.rmtree(host.root)
        aside = self.home / "aside" / name
        if aside.exists():
            aside.rename(host.root)
        return f"{name}: reinstated; `motcua lab up` starts it"

    def move(self, old: str, new: str) -> str:
        """Carry the PC at desk ``old`` to the vacant desk ``new``: the same disk, booted on the new address.

        What the lab stands in for: the technician shuts the PC down, carries it to the new
        site and plugs it in there, where the network gives it the new site's address.
        """
        plan = make_plan(self.inventory, self.home)
        source, target = self._counter(old, plan), self._counter(new, plan)
        if old == new:
            raise LabError(f"{old}: moving to itself")
        if counters.is_vacant(source) or not (source.root / "upper").is_dir():
            raise LabError(f"{old}: no PC stands at that desk")
        if not counters.is_vacant(target):
            raise LabError(f"{new}: a PC is at that desk; `motcua lab vacate {new}` first")
        self._stop_if_running(old)
        shutil.rmtree(target.root)
        source.root.rename(target.root)
        counters.mark_vacant(source, f"its PC moved to {new}")
        # Boot it under the new identity: only this host; the rest of the lab is left as it is.
        rootfs = image.ensure_image(self.cache, self.progress)
        layer = image.ensure_counter_layer(self.cache, rootfs, self.apt_cache, self.progress)
        counters.prepare_apt_cache(target, image.apt_user_ids(rootfs))
        counters.mount_overlay(target, layer, rootfs)
        counters.prepare(target, self.key.with_suffix(".pub").read_text())
        state = LabState.load(self.home)
        proc = counters.start(target, self.apt_cache, "counter")
        state.put(proc)
        state.save(self.home)
        if not wait_for_banner(target.address, 22, b"SSH-", 90.0):
            raise LabError(f"{new}: not reachable at {target.address} after 90 s (log: {target.log})")
        proc.namespace = counters.container_namespace(proc.pid) or ""
        state.save(self.home)
        self._check_boots(state, [new])
        keys = {}
        for host in plan.hosts:
            pub = host.merged / "etc/ssh/ssh_host_ed25519_key.pub"
            if not counters.is_vacant(host) and pub.is_file():
                keys[host.address] = pub.read_text().split()[1]
        self._write_ssh_files(plan, keys)
        return f"{old} -> {new}: moved; {new} is up at {target.address}, desk {old} is vacant"

    # ---- helpers
    def _counter(self, name: str, plan: LabPlan | None = None) -> counters.CounterHost:
        plan = plan or make_plan(self.inventory, self.home)
        host = next((h for h in plan.counters if h.name == name), None)
        if host is None:
            raise LabError(f"{name} is not a counter PC of this lab ({self.inventory})")
        return host

    def _stop_if_running(self, name: str) -> None:
        state = LabState.load(self.home)
        proc = state.proc(name)
        if proc is not None and alive(proc):
            self.stop_host(name)
        counters.unmount(self.home / "hosts" / name / "merged")

    def _running(self, state: LabState, name: str) -> bool:
        proc = state.proc(name)
        return proc is not None and alive(proc)

    def _check_addresses(self, plan: LabPlan, state: LabState) -> None:
        wanted: list[tuple[str, int, str]] = []
        for host in plan.hosts:
            if not self._running(state, host.name) and not counters.is_vacant(host):
                wanted.append((host.address, 22, host.name))
        if not self._running(state, "gear"):
            wanted += [(d.address, 22, d.name) for d in plan.gear]
        if not self._running(state, "dossier"):
            wanted += [(plan.dossier_address, port, f"dossier {scheme}") for scheme, port in DOSSIER_PORTS.items()]
        if not self._running(state, "sink"):
            wanted += [(plan.sink_address, port, f"notification sink {kind}") for kind, port in SINK_PORTS.items()]
        if not self._running(state, "pull-source"):
            wanted.append((plan.pull_source_address, PULL_SOURCE_PORT, "pull source"))
        busy = [f"{addr}:{port} ({who}): {why}" for addr, port, who in wanted if (why := port_in_use(addr, port))]
        if busy:
            raise LabError("lab addresses already in use (nothing was started):\n  " + "\n  ".join(busy))

    def _ensure_certificates(self) -> None:
        """The national-CA stand-in and the lab's certificate ledger (seeded from the inventory's)."""
        store = self.home / "certificates"
        ca.ensure_national_ca(store / "ca")
        ledger = store / LEDGER_NAME
        seed = (self.inventory if self.inventory.is_dir() else self.inventory.parent) / LEDGER_NAME
        if not ledger.exists() and seed.is_file():
            ledger.write_text(seed.read_text(encoding="utf-8"), encoding="utf-8")

    def _ensure_keys(self) -> None:
        self.ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "motcua-lab", "-f", str(self.key)], check=True
            )
        accounts = self.home / "accounts"
        accounts.mkdir(mode=0o700, parents=True, exist_ok=True)
        secret = accounts / "initial-secret"  # each official's initial password derives from it
        if not secret.exists():
            secret.write_text(os.urandom(24).hex() + "\n")
            secret.chmod(0o600)
        (self.home / "reports").mkdir(exist_ok=True)
        tokens = self.home / "tokens"
        tokens.mkdir(mode=0o700, parents=True, exist_ok=True)
        for pin in ("user-pin", "so-pin"):  # SoftHSM2 stands in for the wards' USB tokens
            path = tokens / pin
            if not path.exists():
                path.write_text(f"{int.from_bytes(os.urandom(4), 'big') % 10**8:08d}\n")
                path.chmod(0o600)
        gear_dir = self.home / "gear"
        gear_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # snmp-auth, snmp-priv: the SNMPv3 pass phrases playbooks/network.yml configures.
        for secret in ("enable-secret", "password", "snmp-auth", "snmp-priv"):
            path = gear_dir / secret
            if not path.exists():
                path.write_text(os.urandom(12).hex() + "\n")
                path.chmod(0o600)
        hashes = gear_dir / "user-secret-hash"  # the gear users' type 9 hash (the vault's role in production)
        if not hashes.exists():
            hashes.write_text(type9_hash(os.urandom(12).hex()) + "\n")
            hashes.chmod(0o600)

    def _start_gear(self, plan: LabPlan) -> Proc:
        gear_dir = self.home / "gear"
        devices = gear_dir / "devices.json"
        devices.write_text(
            json.dumps(
                {
                    "user": GEAR_USER,
                    "authorized_key": str(self.key.with_suffix(".pub")),
                    "password_file": str(gear_dir / "password"),
                    "enable_secret_file": str(gear_dir / "enable-secret"),
                    "devices": [d.as_dict() for d in plan.gear],
                },
                indent=2,
            )
        )
        return self._service("gear", "gear", "serve", "--config", str(devices), "--state", str(gear_dir))

    def _service(self, name: str, directory: str, *args: str) -> Proc:
        """Start ``python -m motcua.lab.<name> ARGS`` logging to <home>/<directory>/<name>.log."""
        where = self.home / directory
        where.mkdir(parents=True, exist_ok=True)
        return spawn(name, name, [sys.executable, "-m", f"motcua.lab.{name}", *args], where / f"{name}.log")

    def _start_dossier(self, plan: LabPlan) -> Proc:
        dossier_dir = self.home / "dossier"
        dossier_dir.mkdir(parents=True, exist_ok=True)
        agencies = [{"code": s.code, "name": s.name} for s in plan.registry.sites.values()]
        (dossier_dir / "agencies.json").write_text(json.dumps(agencies, ensure_ascii=False))
        token = dossier_dir / "api-token"  # the reporting API's bearer token (production: the vault)
        if not token.exists():
            token.write_text(secrets.token_urlsafe(24) + "\n")
            token.chmod(0o600)
        # A stand-in started afresh starts without a fault: one left set (a run stopped mid-test, a fault
        # forgotten) would otherwise look like a lab that does not come up ("down" opens no port at all).
        # What it served as withdrawn or not received stays so.
        faults = dossier_dir / "faults.json"
        if faults.exists():
            from .dossier import write_fault

            left = json.loads(faults.read_text() or "{}").get("fault")
            if left:
                write_fault(faults, None)
                self.progress(f"lab: the dossier stand-in's fault {left!r}, left set, cleared")
        return self._service(
            "dossier",
            "dossier",
            *("--address", plan.dossier_address, "--certs", str(self.home / "ca")),
            *("--https-port", str(DOSSIER_PORTS["https"]), "--http-port", str(DOSSIER_PORTS["http"])),
            *("--faults", str(dossier_dir / "faults.json"), "--agencies", str(dossier_dir / "agencies.json")),
            *("--token-file", str(token)),
        )

    def _web_credentials(self, plan: LabPlan) -> None:
        """The locked monitoring plane's lab credentials (docs/monitoring.md): each host's TLS certificate
        from the lab CA (<lab home>/web/<host>.crt, .key) and the two basic-auth users' passwords,
        monitoring (the plane's own services), operator (people, motcua silence, the tests) and viewer
        (the duty board's read-only user), in <lab home>/web/<user>-password - the lab's stand-in for the vault."""
        folder = self.home / "web"
        issued = ca.issue_web_certificates(self.home / "ca", folder, {h.name: h.address for h in plan.hosts})
        if issued:
            self.progress(f"lab: TLS certificates from the lab CA for {len(issued)} host(s)")
        for user in (*WEB_USERS, LAB_VIEWER):
            path = folder / f"{user}-password"
            if not path.exists():
                path.write_text(secrets.token_urlsafe(24) + "\n")
                path.chmod(0o600)

    def _notify_credentials(self, plan: LabPlan) -> list[str]:
        """The provider stand-ins' credentials for the lab's notification bridges (monitoring_exporters_notify).

        Each monitoring host's bridge has its own Zalo grant (a refresh token chain; both the bridge and
        the stand-in rotate it as Zalo does): <lab home>/notify/<host>/zalo-refresh-token. Returns the
        first refresh tokens the stand-in is to accept.
        """
        from .sink import LAB_SMS_KEY, LAB_ZALO_SECRET, first_refresh_token

        folder = self.home / "notify"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        values = {"zalo-app-secret": LAB_ZALO_SECRET, "sms-api-key": LAB_SMS_KEY}
        firsts = [first_refresh_token(server.name) for server in plan.servers]
        for server, token in zip(plan.servers, firsts, strict=True):
            values[f"{server.name}/zalo-refresh-token"] = token
        for name, value in values.items():
            path = folder / name
            path.parent.mkdir(mode=0o700, exist_ok=True)
            if not path.exists():  # the bridge rotates its token in its own state; this one is its first
                path.write_text(value + "\n")
                path.chmod(0o600)
        return firsts

    def zalo_grant(self, plan: LabPlan, host: str) -> None:
        """As an OA administrator does for a rebuilt monitoring host: authorise the app again, and put
        the new refresh token where the inventory reads it (the lab's stand-in for the vault)."""
        path = self.home / "notify" / host / "zalo-refresh-token"
        try:
            request = urllib.request.Request(f"http://{plan.sink_address}:{SINK_PORTS['http']}/zalo/grant",
                                             data=b"{}", headers={"Content-Type": "application/json"})  # fmt: skip
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the lab's sink
                token = json.loads(response.read())["refresh_token"]
        except (OSError, ValueError, KeyError):
            # The sink is down: the chain restarts with the sink (its state goes with a purge).
            path.unlink(missing_ok=True)
            (self.home / "notifications" / "zalo-refresh-token.current").unlink(missing_ok=True)
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(token + "\n")
        path.chmod(0o600)

    def _start_sink(self, plan: LabPlan) -> Proc:
        firsts = self._notify_credentials(plan)
        return self._service(
            "sink",
            "notifications",
            *("--address", plan.sink_address, "--log", str(self.home / "notifications" / "notifications.jsonl")),
            *("--http-port", str(SINK_PORTS["http"]), "--smtp-port", str(SINK_PORTS["smtp"])),
            *(arg for token in firsts for arg in ("--zalo-refresh-token", token)),
        )

    def _start_pull_source(self, plan: LabPlan) -> Proc:
        """What the counters pull (docs/pull.md), as the DX Centre's hosts serve it: <lab home>/pull's repo.git
        and wheels/ over HTTPS (a lab-CA certificate for its address) with basic auth (user counter; and
        monitoring, the plane's, for Prometheus' scrape of /metrics). The
        lab's signing key (the DX Centre's, in production on a token or in the vault) is made here too."""
        folder = self.home / "pull"
        web = folder / "web"
        ca.issue_web_certificates(self.home / "ca", web, {"pull-source": plan.pull_source_address})
        password = web / f"{PULL_USER}-password"
        if not password.exists():
            password.write_text(secrets.token_urlsafe(24) + "\n")
            password.chmod(0o600)
        users = {PULL_USER: bcrypt.hashpw(password.read_text().strip().encode(), bcrypt.gensalt(10)).decode()}
        # Prometheus scrapes its /metrics as the plane's monitoring user (the CounterConfigBehind alert).
        monitoring = self.home / "web" / "monitoring-password"
        if monitoring.exists():
            users["monitoring"] = bcrypt.hashpw(monitoring.read_text().strip().encode(), bcrypt.gensalt(10)).decode()
        (web / "web.yml").write_text(json.dumps({
            "tls_server_config": {"cert_file": str(web / "pull-source.crt"), "key_file": str(web / "pull-source.key")},
            "basic_auth_users": users}))  # fmt: skip
        (web / "source.yml").write_text(json.dumps({"root": str(folder)}))
        key = folder / "signing-key"
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", PULL_SIGNER, "-f", str(key)],
                           check=True)  # fmt: skip
        argv = [sys.executable, "-m", "motcua_exporters", "pull-source", "--config.file", str(web / "source.yml"),
                "--web.config.file", str(web / "web.yml"),
                "--web.listen-address", f"{plan.pull_source_address}:{PULL_SOURCE_PORT}"]  # fmt: skip
        return spawn("pull-source", "pull-source", argv, folder / "pull-source.log")

    def _start_ntp(self, plan: LabPlan) -> Proc:
        return self._service("ntp", "ntp", *[arg for a in plan.ntp_addresses for arg in ("--address", a)])

    def notifications(self) -> list[dict[str, object]]:
        """What the lab's monitoring has sent (Zalo, ZNS, SMS, e-mail, webhooks), oldest first."""
        path = self.home / "notifications" / "notifications.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def _wait(self, plan: LabPlan, timeout: float = 90.0) -> None:
        targets = [(h.address, 22, b"SSH-", h.name) for h in plan.hosts if not counters.is_vacant(h)]
        targets += [(d.address, 22, b"SSH-", d.name) for d in plan.gear]

        def check(item):
            address, port, prefix, name = item
            return name, wait_for_banner(address, port, prefix, timeout)

        with ThreadPoolExecutor(max_workers=32) as pool:
            results = list(pool.map(check, targets))
        web = wait_for_port(plan.dossier_address, DOSSIER_PORTS["https"], timeout)
        sink = wait_for_port(plan.sink_address, SINK_PORTS["smtp"], timeout)
        failed = [name for name, ok in results if not ok] + ([] if web else ["dossier"]) + ([] if sink else ["sink"])
        if failed:
            raise LabError(
                f"not reachable after {timeout:.0f} s: {', '.join(failed)} (logs under {self.home}; "
                "`motcua lab down && motcua lab up` restarts cleanly)"
            )

    def _check_boots(self, state: LabState, names: list[str]) -> None:
        """Hosts just started have finished booting and let users in; a unit that failed is named."""
        procs = [p for p in (state.proc(name) for name in names) if p is not None]
        with ThreadPoolExecutor(max_workers=16) as pool:
            booted = list(pool.map(lambda p: (p.name, *counters.boot_state(p.pid)), procs))
        for name, status, failed, _users in booted:
            if failed:
                self.progress(f"lab: {name} booted {status}; failed units: {', '.join(failed)}")
        shut = [f"{name} ({status}{': ' + ', '.join(failed) if failed else ''})"
                for name, status, failed, users in booted if not users]  # fmt: skip
        if shut:
            raise LabError(
                f"booted but not letting users log in (/run/nologin is still there): {'; '.join(shut)}; "
                f"console logs under {self.home}/hosts; `motcua lab down && motcua lab up` restarts cleanly"
            )

    def _write_ssh_files(self, plan: LabPlan, host_keys: dict[str, str]) -> None:
        lines = [f"{address} ssh-ed25519 {key}" for address, key in sorted(host_keys.items())]
        gear_keys = self.home / "gear" / "keys"
        for device in plan.gear:
            pub = gear_keys / f"{device.name}.pub"
            if pub.exists():
                lines.append(f"{device.address} {' '.join(pub.read_text().split()[:2])}")
        (self.ssh_dir / "known_hosts").write_text("\n".join(lines) + "\n")
        config = [
            "# Written by `motcua lab up`: ssh -F " + str(self.ssh_dir / "config") + " <lab host name>",
        ]
        # One connection per Linux host, shared by the commands that follow (testinfra's checks, `ssh -F`):
        # a new SSH handshake per command costs ~0.27 s against ~0.03 s through the master. The gear
        # devices are left out: each `ssh` to them is a login of its own, which the gear faults
        # (refuse-login, lockout-on-acl) act on.
        control = self.ssh_dir / "cp"
        control.mkdir(mode=0o700, exist_ok=True)
        for host in plan.hosts:
            config += [f"Host {host.name}", f"  HostName {host.address}", "  User root", "  ControlMaster auto",
                       f"  ControlPath {control}/%C", "  ControlPersist 60s"]  # fmt: skip
        for device in plan.gear:
            config += [f"Host {device.name}", f"  HostName {device.address}", f"  User {GEAR_USER}"]
        config += [
            "Host *",
            f"  IdentityFile {self.key}",
            f"  UserKnownHostsFile {self.ssh_dir / 'known_hosts'}",
            "  StrictHostKeyChecking yes",
            "  IdentitiesOnly yes",
        ]
        (self.ssh_dir / "config").write_text("\n".join(config) + "\n")
