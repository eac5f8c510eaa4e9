"""motcua.ops.registry: hosts and groups from the motcua site registry (the project's one model of it)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: registry
short_description: Inventory of HCMC one-stop shops from the motcua site registry
description:
  - Reads the site registry (network.yml, teams.yml, sites.yml, wards.csv) with the
    project's one Python model of it, validates it, and builds groups by site,
    role, region, go-live phase and support team.
  - Any registry problem fails the inventory with every problem listed (file, line,
    site, field), so no play runs against a wrong registry.
  - The config file name must end in C(motcua.yml) or C(motcua.yaml).
options:
  plugin:
    description: Name of the plugin.
    required: true
    choices: [motcua.ops.registry]
  registry:
    description: Registry directory, relative to this config file.
    type: str
    required: true
  address_space:
    description:
      - C(production) uses the IP plan's supernet; C(lab) maps every address onto
        loopback (127.0.0.0/8) so the lab runs on one machine.
    type: str
    default: production
    choices: [production, lab]
  sites:
    description: Only these site codes (all sites when empty).
    type: list
    elements: str
    default: []
  max_counters:
    description: At most this many counter PCs per site (the lab runs fewer).
    type: int
  certificates:
    description:
      - The certificate ledger (C(motcua certs)), relative to this config file. In the
        lab address space it defaults to the lab home's ledger, seeded by C(motcua lab up).
      - The inventory does not read it; C(playbooks/certificates.yml) and C(motcua certs) do.
    type: str
"""

EXAMPLES = r"""
# inventory/hcmc/motcua.yml
plugin: motcua.ops.registry
registry: registry
"""

from pathlib import Path

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.template import trust_as_template
from ansible_collections.motcua.ops.plugins.plugin_utils import project


def _trusted(value):
    """Mark registry strings as trusted.

    The registry is a reviewed file in this repository and the validator
    refuses Jinja delimiters in it, so its text cannot carry a template.
    Untrusted strings would be exported by ``ansible-inventory --list`` as
    ``{"__ansible_unsafe": ...}`` objects instead of plain JSON strings.
    """
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


class InventoryModule(BaseInventoryPlugin):
    NAME = "motcua.ops.registry"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("motcua.yml", "motcua.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        project.require("motcua.ops.registry", AnsibleParserError)
        self._read_config_data(path)

        registry_dir = Path(path).parent / self.get_option("registry")
        try:
            registry = project.registry.load_registry(registry_dir)
            registry = registry.subset(self.get_option("sites") or None, self.get_option("max_counters"))
        except project.registry.RegistryError as exc:
            raise AnsibleParserError(str(exc)) from None
        except project.registry.UnknownSiteError as exc:
            raise AnsibleParserError(f"{path}: option sites: {exc}") from None
        built = project.inventory.build_inventory(registry, self.get_option("address_space"))

        for name in built.groups:
            self.inventory.add_group(name)
        for group in built.groups.values():
            for host in group.hosts:
                self.inventory.add_host(host, group=group.name)
            for child in group.children:
                self.inventory.add_child(group.name, child)
            for key, value in group.vars.items():
                self.inventory.set_variable(group.name, key, _trusted(value))
        for host, variables in built.hostvars.items():
            for key, value in variables.items():
                self.inventory.set_variable(host, key, _trusted(value))
