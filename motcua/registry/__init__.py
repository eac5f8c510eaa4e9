"""The one Python model of the site registry.

Everything that needs sites, hosts or addresses imports from here::

    from motcua.registry import load_registry
    registry = load_registry("inventory/hcmc/registry")
"""

from .loader import FILES, check_registry, load_registry
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
from .problems import Problem, RegistryError

__all__ = [
    "FILES",
    "PHASES",
    "REGIONS",
    "ROLES",
    "Host",
    "NetworkPlan",
    "Problem",
    "Registry",
    "RegistryError",
    "Site",
    "Team",
    "check_registry",
    "load_registry",
]
