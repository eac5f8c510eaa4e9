"""``motcua inventory``: the Ansible inventory the registry builds, as the inventory plugin serves it."""

from __future__ import annotations

import argparse
import json

from ..registry import ADDRESS_SPACES
from ..registry.cli import add_registry_arg, registry_or_report
from . import build_inventory


def cmd_inventory(args: argparse.Namespace) -> int:
    registry = registry_or_report(args.registry)
    if registry is None:
        return 1
    inventory = build_inventory(registry, args.address_space)
    if args.host:
        print(json.dumps(inventory.hostvars.get(args.host, {}), ensure_ascii=False, indent=2))
    else:
        print(json.dumps(inventory.as_ansible_json(), ensure_ascii=False, indent=2 if args.pretty else None))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("inventory", help="print the Ansible inventory as JSON (script-inventory format)")
    add_registry_arg(p)
    p.add_argument("--address-space", choices=ADDRESS_SPACES, default="production")
    p.add_argument("--list", action="store_true", help="the whole inventory (default)")
    p.add_argument("--host", help="the variables of one host")
    p.add_argument("--pretty", action="store_true", help="indent the JSON")
    p.set_defaults(func=cmd_inventory)
