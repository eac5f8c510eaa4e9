"""`motcua pull`: the counters' signed configuration (docs/pull.md), published ring by ring."""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

from ..access import PcAccess, lab_home, names, read_inventory_source, select_hosts
from ..errors import ToolError
from . import publish, status, wheelhouse

PRODUCTION_STATE = Path("/var/lib/motcua/pull")


def state_dir(lab: bool, given: str | None) -> Path:
    """Where the repository lives: --state, else the lab's home, else /var/lib/motcua/pull."""
    if given:
        return Path(given)
    return lab_home() / "pull" if lab else PRODUCTION_STATE


def signing_key(lab: bool, given: str | None, state: Path) -> Path:
    """--signing-key, else MOTCUA_PULL_SIGNING_KEY, else (the lab only) the lab's own key."""
    value = given or os.environ.get("MOTCUA_PULL_SIGNING_KEY")
    if value:
        return Path(value)
    if lab:
        return state / "signing-key"
    raise ToolError("give the DX Centre's signing key: --signing-key FILE or MOTCUA_PULL_SIGNING_KEY")


def cmd_publish(args: argparse.Namespace) -> int:
    source = read_inventory_source(Path(args.inventory))
    registry = source.load()
    rings = registry.pull.rings if registry.pull else ()
    state = state_dir(source.lab, args.state)
    key = signing_key(source.lab, args.signing_key, state)
    done = publish.publish(Path(args.inventory), state, key, rings, args.message, wheelhouse.CACHE,
                           extra_vars=args.extra_vars)  # fmt: skip
    if done.new:
        print(f"published / đã phát hành {done.commit[:12]} for {done.counters} counters: ring {done.ring} names it")
    else:
        print(f"unchanged / không đổi: {done.commit[:12]} already holds this configuration ({done.counters} counters)")
    return 0


def _pulls(args: argparse.Namespace):
    source = read_inventory_source(Path(args.inventory))
    registry = source.load()
    if registry.pull is None:
        raise ToolError(f"{source.registry_dir}: no pull.yml: the counters are configured by push only")
    targets = select_hosts(registry, source.lab, ("counter",), "counter PC", sites=names(args.sites))
    access = PcAccess.for_inventory(source, args.timeout)
    pulls = status.read_all(registry, targets, access, args.workers, progress=not args.quiet)
    repo = state_dir(source.lab, args.state) / "repo.git"
    return registry.pull.rings, pulls, status.ring_commits(repo, registry.pull.rings), repo


def cmd_status(args: argparse.Namespace) -> int:
    rings, pulls, commits, _repo = _pulls(args)
    print(status.table(pulls, commits, rings))
    behind = [p for p in pulls if status.state(p, commits.get(p.ring, "")) != "current"]
    return 1 if behind and not args.exit_zero else 0


def cmd_promote(args: argparse.Namespace) -> int:
    rings, pulls, commits, repo = _pulls(args)
    for before, after in itertools.pairwise(rings):
        if commits.get(before) and commits.get(before) != commits.get(after):
            status.gate(pulls, before, commits[before])
            publish.move_ring(repo, after, commits[before])
            print(f"ring/{after} -> {commits[before][:12]}: every counter of ring/{before} applied it "
                  f"/ đã chuyển sang vòng {after}")  # fmt: skip
            return 0
    print("nothing to promote / không có gì để chuyển: every ring names the latest commit")
    return 0


def add_parser(sub) -> None:
    pull = sub.add_parser("pull", help="counters that configure themselves: publish the signed configuration")
    pull_sub = pull.add_subparsers(dest="pull_command", required=True)
    p = pull_sub.add_parser(
        "publish",
        help="render each counter's view, commit the tree signed, point the first ring at it",
        description=publish.__doc__.split("\n\n")[0],
    )
    p.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
    p.add_argument(
        "--state", help="the repository's directory (default: the lab home's pull/, or /var/lib/motcua/pull)"
    )
    p.add_argument("--signing-key", help="the DX Centre's SSH private key (default: MOTCUA_PULL_SIGNING_KEY)")
    p.add_argument("-m", "--message", default="motcua pull publish", help="the commit's message")
    p.add_argument("-e", "--extra-vars", action="append", default=[],
                   help="as ansible-playbook's -e, into every counter's view (an urgent setting)")  # fmt: skip
    p.set_defaults(func=cmd_publish)
    for name, func, text in (
        ("status", cmd_status, "per ring and site, the commit each counter applied and how its last pull went"),
        ("promote", cmd_promote, "move the next ring to the commit every counter of the ring before applied"),
    ):
        p = pull_sub.add_parser(name, help=text, description=status.__doc__.split("\n\n")[0])
        p.add_argument("-i", "--inventory", default="inventory/lab", help="inventory (default: inventory/lab)")
        p.add_argument("--state", help="the repository's directory (as for publish)")
        p.add_argument("--sites", help="comma-separated site codes (default: every site)")
        p.add_argument("--workers", type=int, default=16, help="counters read at a time (default: 16)")
        p.add_argument("--timeout", type=float, default=30.0, help="seconds per connection (default: 30)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        if name == "status":
            p.add_argument("--exit-zero", action="store_true", help="exit 0 even when counters are behind")
        p.set_defaults(func=func)
