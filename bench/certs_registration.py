#!/usr/bin/env python3
"""Benchmark: keys and CSRs for all 168 wards on the controller, then the registration export.

Each ward gets its own SoftHSM2 token (a token directory of its own, as each
ward's token sits in its own PC). The key and the request are made on it by
the same token tool the playbook runs on a counter
(roles/ward_certificates/files/motcua-cert-token: GnuTLS p11tool and
certtool over PKCS#11), --workers at a time. The requests go into a copy of
the production ledger's store, the token serials are recorded, and
`motcua certs export` writes the batch. Prints the time of each phase and
the per-ward median; target <= 60 s for key + CSR generation plus export.
Token set-up (what the national CA's tokens come with) is timed apart.
Everything is in a temporary directory; no network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motcua.certs import ops  # noqa: E402
from motcua.registry import load_registry  # noqa: E402
from motcua.registry.certificates import load_ledger  # noqa: E402

TOOL = ROOT / "roles" / "ward_certificates" / "files" / "motcua-cert-token"
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "246810"
TARGET = 60.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "SOFTHSM2_CONF": str(home / "softhsm2.conf"), "MOTCUA_TOKEN_PIN": PIN}


def make_token(home: Path, label: str) -> None:
    (home / "tokens").mkdir(parents=True)
    (home / "softhsm2.conf").write_text(
        f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "13579111"],
                   env=env_for(home), check=True, capture_output=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    for tool in ("softhsm2-util", "p11tool", "certtool"):
        if not shutil.which(tool):
            say(f"{tool} is missing: make host installs softhsm2 and gnutls-bin (requirements-apt.txt)")
            return 1
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    registry = load_registry(ROOT / "inventory" / "hcmc" / "registry")
    with tempfile.TemporaryDirectory(prefix="motcua-bench-certs-") as tmp:
        base = Path(tmp)
        ledger_file = base / "store" / "certificates.yml"
        ledger_file.parent.mkdir()
        shutil.copy(ROOT / "inventory" / "hcmc" / "certificates" / "certificates.yml", ledger_file)
        ledger = load_ledger(ledger_file, registry)
        wards = [c for c in ledger.certificates if c.type == "signing"]
        say(f"{len(wards)} wards' signing certificates, {args.workers} at a time")

        started = time.monotonic()
        for cert in wards:
            make_token(base / "pcs" / cert.site, f"motcua-{cert.site}")
        setup = time.monotonic() - started
        say(f"  token set-up (not counted): {setup:.1f} s")

        def request(cert, label: str | None = None, csr: Path | None = None) -> tuple[str, float, dict]:
            t0 = time.monotonic()
            done = subprocess.run(
                [python, str(TOOL), "request", "--module", SOFTHSM, "--label", f"motcua-{cert.site}",
                 "--object", label or cert.label, "--dn", ops.dn_string(cert),
                 "--csr", str(csr or ledger.csr_path(cert))],
                env=env_for(base / "pcs" / cert.site), capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            return cert.key, time.monotonic() - t0, {**json.loads(done.stdout or "{}"), "rc": done.returncode}

        # Baseline in the same run: one ward at a time (another key label, so the measured pass starts afresh).
        started = time.monotonic()
        for cert in wards:
            request(cert, "baseline-1", base / "baseline" / f"{cert.site}.csr.pem")
        sequential = time.monotonic() - started
        say(f"  one at a time (baseline): {sequential:.1f} s")

        started = time.monotonic()
        latencies, serials, failed = [], [], []
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(request, c) for c in wards]
            for count, future in enumerate(as_completed(futures), 1):
                key, seconds, result = future.result()
                latencies.append(seconds)
                if result["rc"] != 0 or not result.get("changed"):
                    failed.append((key, result.get("error")))
                else:
                    serials.append({"key": key, "token_serial": result["token_serial"]})
                if count % 24 == 0 or count == len(wards):
                    say(f"  keys and CSRs: {count}/{len(wards)} ({len(failed)} failed)")
        generation = time.monotonic() - started

        started = time.monotonic()
        ledger, _changes = ops.record(ledger, serials)
        batch, problems = ops.export_batch(registry, ledger)
        out = base / "store" / "exports" / "batch.csv"
        out.parent.mkdir()
        out.write_text(batch.csv(), encoding="utf-8", newline="")
        out.with_suffix(".xlsx").write_bytes(batch.xlsx())
        export = time.monotonic() - started
        rows = len(batch.rows)

    total = generation + export
    verdict = "met" if total <= TARGET and not failed and not problems else "MISSED"
    print(f"certificate registration, {len(wards)} wards (workers {args.workers}):")
    print(f"  keys + CSRs on the tokens: {generation:.1f} s (median {statistics.median(latencies):.2f} s per ward)")
    print(f"  record + registration export: {export:.2f} s ({rows} rows, {len(problems)} problems)")
    print(f"  total: {total:.1f} s (target <= {TARGET:.0f} s: {verdict}); token set-up apart: {setup:.1f} s")
    ratio = sequential / generation
    print(f"  one ward at a time, same run: {sequential:.1f} s; {args.workers} at a time is {ratio:.1f}x faster")
    if failed:
        print(f"  {len(failed)} failed, e.g. {failed[0]}")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
