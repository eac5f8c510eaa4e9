"""The one Python model of the site registry.

Everything that needs sites, hosts or addresses imports from here::

    from motcua.registry import load_registry
    registry = load_registry("inventory/hcmc/registry")
"""

from .loader import FILES, RegistryError, check_registry, load_registry
from .model import (
    PHASES,
    REGIONS,
    ROLES,
    Host,
    NetworkPlan,
    Registry,
    Site,
    Team,
)

__all__ = [
    "FILES",
    "PHASES",
    "REGIONS",
    "ROLES",
    "Host",
    "NetworkPlan",
    "Registry",
    "RegistryError",
    "Site",
    "Team",
    "check_registry",
    "load_registry",
]
