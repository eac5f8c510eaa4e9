"""The routers and switches a ``motcua netgear`` command works on, each with its intent from the registry.

Devices come from an inventory's registry (the same model the inventory plugin serves), so
``motcua netgear`` and ``playbooks/network.yml`` see the same devices at the same addresses;
credentials are :class:`motcua.access.GearAccess`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..access import Target, select_hosts
from ..errors import ToolError
from ..inventory.gear import device_intent
from ..registry import Registry

GEAR_ROLES = ("router", "switch")


class NetgearError(ToolError):
    """A netgear command refused its input or could not go on."""


@dataclass(frozen=True)
class Device(Target):
    intent: dict = field(default_factory=dict, compare=False, repr=False)


def select_devices(
    registry: Registry, lab: bool, hosts: Iterable[str] | None = None, sites: Iterable[str] | None = None
) -> list[Device]:
    """Routers and switches of the registry, optionally only some hosts or sites (unknown ones refused)."""
    targets = select_hosts(registry, lab, GEAR_ROLES, "router or switch", hosts=hosts, sites=sites)
    return [
        Device(t.name, t.site, t.role, t.address, device_intent(registry, registry.sites[t.site].host(t.name), lab))
        for t in targets
    ]
