"""The one Python model of the site registry.

Everything that needs sites, hosts or addresses imports from here::

    from motcua.registry import load_registry
    registry = load_registry("inventory/hcmc/registry")
"""

from .loader import FILES, RegistryError, check_registry, load_registry
from .model import (
    ADDRESS_SPACES,
    PHASES,
    REGIONS,
    ROLES,
    Host,
    NetworkPlan,
    Registry,
    Site,
    Team,
    UnknownSiteError,
)

__all__ = [
    "ADDRESS_SPACES",
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
    "UnknownSiteError",
    "check_registry",
    "load_registry",
]
