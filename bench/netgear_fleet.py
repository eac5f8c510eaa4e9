#!/usr/bin/env python3
"""Benchmark: backup plus drift check of one switch per ward, 168 devices; one safe change at 5 sites.

Starts the lab's gear simulator with the 168 wards' switches, each on its own
loopback address in 127.80.0.0/16 (apart from any lab), configures them as
the registry intends, then measures `motcua netgear` backup (with its git
history) + diff (the same functions the CLI runs) concurrently (--workers,
default 32) and one device at a time, in the same run. Prints the medians and
the ratio; target <= 30 s for 168 devices concurrent. Then one change under
the devices' revert timers at 5 sites at once, as the playbook makes it
(backup, journal and timers, the change, verify in new sessions, confirm and
save): the time from start to confirmed. Stops the simulator it started.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motcua.access import GearAccess as Access  # noqa: E402
from motcua.lab.procs import spawn, stop, wait_for_banner  # noqa: E402
from motcua.netgear import ops, safety  # noqa: E402
from motcua.netgear.config import intent_commands  # noqa: E402
from motcua.netgear.devices import Device, select_devices  # noqa: E402
from motcua.netgear.secrets import type9_hash  # noqa: E402
from motcua.parallel import run_each  # noqa: E402
from motcua.registry import load_registry  # noqa: E402

TARGET = 30.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_address(lab_address: str) -> str:
    """127.79.x.y -> 127.80.x.y: the same plan, clear of the lab's addresses."""
    return str(IPv4Address(int(IPv4Address(lab_address)) + (1 << 16)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="concurrent runs (median); sequential runs once")
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args()

    registry = load_registry(ROOT / "inventory" / "hcmc" / "registry")
    wards = [s.code for s in registry.ward_sites]
    switches = [d for d in select_devices(registry, lab=True, sites=wards) if d.role == "switch"]
    devices = [Device(d.name, d.site, d.role, bench_address(d.address), d.intent) for d in switches]
    say(f"{len(devices)} ward switches")
    with tempfile.TemporaryDirectory(prefix="motcua-bench-gear-") as tmp:
        home = Path(tmp)
        key = home / "id_ed25519"
        os.system(f"ssh-keygen -q -t ed25519 -N '' -f {key}")  # noqa: S605 - a fixed command, our own path
        (home / "password").write_text(os.urandom(8).hex())
        (home / "secret").write_text(os.urandom(8).hex())
        config = {
            "user": "dxadmin",
            "authorized_key": str(key) + ".pub",
            "password_file": str(home / "password"),
            "enable_secret_file": str(home / "secret"),
            "devices": [{"name": d.name, "address": d.address, "role": "switch", "ports": 24} for d in devices],
        }
        (home / "devices.json").write_text(json.dumps(config))
        argv = [sys.executable, "-m", "motcua.lab.gear", "serve", "--config", str(home / "devices.json"),
                "--state", str(home / "state")]  # fmt: skip
        proc = spawn("bench-gear", "gear", argv, home / "gear.log")
        try:
            if not all(wait_for_banner(d.address, 22, b"SSH-", 60) for d in devices[:1] + devices[-1:]):
                say((home / "gear.log").read_text())
                return 1
            keys = home / "state" / "keys"
            (home / "known_hosts").write_text(
                "".join(f"{d.address} {' '.join((keys / f'{d.name}.pub').read_text().split()[:2])}\n" for d in devices)
            )
            access = Access("dxadmin", (home / "secret").read_text(), home / "known_hosts", key_file=key)
            say("configuring every switch as the registry intends ...")
            configure(devices, access, args.workers)
            figures = {}
            for label, workers, runs in (("concurrent", args.workers, args.runs), ("sequential", 1, 1)):
                times = []
                for _ in range(runs):
                    started = time.monotonic()
                    backup = ops.backup(devices, access, home / "backups", workers=workers, progress=False)
                    diff = ops.diff(devices, access, workers=workers, progress=False)
                    times.append(time.monotonic() - started)
                    failed = len(backup.failed) + sum(1 for o in diff if not o.ok)
                    drifted = sum(1 for o in diff if o.ok and o.value)
                    say(f"  {label}: {times[-1]:.1f} s ({failed} failed, {drifted} drifted)")
                    errors = [o for o in [*backup.outcomes, *diff] if not o.ok]
                    if errors:
                        say(f"    e.g. {errors[0].device.name} after {errors[0].seconds:.1f} s: {errors[0].error}")
                figures[label] = statistics.median(times)
            say("one change under revert timers at 5 sites ...")
            five = devices[:5]
            changes = []
            for _ in range(args.runs):
                started = time.monotonic()
                pre = ops.backup(five, access, home / "backups", "pre-change", workers=args.workers, progress=False)
                armed = safety.arm(five, access, home / "backups", pre.directory, 10, args.workers, progress=False)
                configure(five, access, args.workers)
                checked = ops.verify(five, access, args.workers, progress=False)
                confirmed = safety.confirm(five, access, home / "backups", args.workers, progress=False)
                changes.append(time.monotonic() - started)
                bad = [o for o in [*pre.outcomes, *armed, *checked, *confirmed] if not o.ok]
                bad += [o for o in checked if o.ok and o.value]  # a verification that found problems
                if bad:
                    say(f"    {bad[0].device.name}: {bad[0].error or bad[0].value}")
                    return 1
            figures["change"] = statistics.median(changes)
        finally:
            stop([proc])
    concurrent, sequential = figures["concurrent"], figures["sequential"]
    print(f"netgear backup + drift check, {len(devices)} simulated switches (workers {args.workers}):")
    print(f"  concurrent: median {concurrent:.1f} s over {args.runs} runs (target <= {TARGET:.0f} s: "
          f"{'met' if concurrent <= TARGET else 'MISSED'})")  # fmt: skip
    print(f"  sequential: {sequential:.1f} s; concurrent is {sequential / concurrent:.1f}x faster")
    print("one change at 5 sites under the devices' revert timers (backup, journal and timers, change, verify,")
    print(f"  confirm and save): median {figures['change']:.1f} s from start to confirmed over {args.runs} runs")
    return 0


def configure(devices: list[Device], access: Access, workers: int) -> None:
    """The intent pushed with netmiko (the playbook's result, without running Ansible 168 times)."""
    secret = type9_hash("bench-password")

    def one(device: Device) -> None:
        conn = ops.connect(device, access)
        try:
            conn.send_config_set(
                intent_commands(device.intent, secret, "bench-auth-pass", "bench-priv-pass"), cmd_verify=False
            )
        finally:
            conn.disconnect()

    outcomes = run_each(devices, one, workers, label="configure")
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"{len(failed)} devices not configured, e.g. {failed[0].device.name}: {failed[0].error}")


if __name__ == "__main__":
    sys.exit(main())
