#!/usr/bin/env python3
"""Benchmark: how fast the lab comes up, and what a counter PC costs.

Prints:
  - image build time (recorded when the cached image was built, or measured now with --rebuild-image);
    target <= 3 min; and the counters' layer over it (the roles' packages, unpacked once), likewise
  - `lab up` of the default lab (3 wards + city centre, 2 counters each, their gear, the dossier
    stand-in) with the image cached: median of N up/down cycles; target <= 30 s
  - 50 counter PCs (25 wards x 2) up and reachable over SSH: total time, time and memory per host

Runs in its own lab home (/var/lib/motcua-lab-bench) and stops everything it started. Needs root,
and refuses to run while another lab holds the same loopback addresses.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motcua.access import lab_cache  # noqa: E402
from motcua.lab import Lab, LabError  # noqa: E402
from motcua.lab.image import ensure_counter_layer, ensure_image  # noqa: E402
from motcua.lab.lab import mem_available_mb  # noqa: E402
from motcua.registry import load_registry  # noqa: E402

HOME = Path("/var/lib/motcua-lab-bench")
TARGET_UP, TARGET_IMAGE = 30.0, 180.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def image_seconds(rebuild: bool, apt_cache: Path) -> tuple[float, float, str]:
    """Seconds to build the image and the counters' layer over it (packages from the lab's pool, ``apt_cache``)."""
    if rebuild:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as cache:
            started = time.monotonic()
            rootfs = ensure_image(Path(cache), say)
            built = time.monotonic()
            ensure_counter_layer(Path(cache), rootfs, apt_cache, say)
            return built - started, time.monotonic() - built, "measured now"
    rootfs = ensure_image(lab_cache(), say)
    layer = ensure_counter_layer(lab_cache(), rootfs, apt_cache, say)
    return recorded(rootfs.parent), recorded(layer.parent), f"recorded at build ({rootfs.parent.name})"


def recorded(folder: Path) -> float:
    text = (folder / "complete").read_text() if (folder / "complete").exists() else ""
    return float(text.split()[2]) if text.startswith("built in") else float("nan")


def fifty_counter_inventory(directory: Path) -> Path:
    registry = load_registry(ROOT / "inventory" / "hcmc" / "registry")
    wards = [s.code for s in registry.ward_sites][:25]
    (directory / "motcua.yml").write_text(
        "plugin: motcua.ops.registry\n"
        f"registry: {ROOT / 'inventory' / 'hcmc' / 'registry'}\n"
        "address_space: lab\n"
        f"sites: [{', '.join(repr(c) for c in wards)}]\n"
        "max_counters: 2\n"
    )
    return directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--rebuild-image", action="store_true", help="time a fresh debootstrap (~1 min)")
    args = parser.parse_args()

    default = Lab(ROOT / "inventory" / "lab", HOME, lab_cache(), progress=say)
    image_time, layer_time, image_note = image_seconds(args.rebuild_image, default.apt_cache)

    ups = []
    try:
        for cycle in range(args.cycles):
            say(f"default lab: cycle {cycle + 1}/{args.cycles}")
            ups.append(default.up()["seconds"])
            default.down()
    except LabError as exc:
        default.down()
        raise SystemExit(f"bench: {exc}") from None

    with tempfile.TemporaryDirectory() as tmp:
        big = Lab(fifty_counter_inventory(Path(tmp)), HOME, lab_cache(), progress=say)
        before = mem_available_mb()
        say("50 counter PCs: up")
        try:
            result = big.up()
            time.sleep(5)  # let the hosts' boot settle before reading memory
            used = before - mem_available_mb()
        finally:
            big.down()
    count = result["counters"]

    print()
    print("Lab benchmark (this machine, image cached unless stated)")
    print(f"  {'image build':<44} {image_time:7.1f} s   target <= {TARGET_IMAGE:.0f} s ({image_note})")
    print(f"  {'  the counters layer over it':<44} {layer_time:7.1f} s   (the roles' packages, unpacked once)")
    print(
        f"  {'lab up: 3 wards + centre, 8 PCs, gear, dossier':<44} {statistics.median(ups):7.1f} s   "
        f"target <= {TARGET_UP:.0f} s (median of {len(ups)}: {', '.join(f'{u:.1f}' for u in ups)})"
    )
    print(f"  {f'lab up: {count} counter PCs reachable over SSH':<44} {result['seconds']:7.1f} s")
    print(f"  {'  time per counter PC':<44} {result['seconds'] / count:7.2f} s")
    print(f"  {'  memory per counter PC (incl. gear, dossier)':<44} {used / count:7.1f} MB   ({used:.0f} MB in all)")
    met = statistics.median(ups) <= TARGET_UP and image_time <= TARGET_IMAGE
    print(f"  verdict: {'MET' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
