"""Lookup plugin: the officials' roster, validated against the site registry."""

from __future__ import annotations

DOCUMENTATION = r"""
name: roster
short_description: Officials' accounts per site from a roster file, validated against the registry
description:
  - Reads a roster (YAML with a C(staff) list, or CSV with C(staff_id,full_name,site,role[,username]))
    with the project's roster model and checks it against the site registry. Unknown sites,
    duplicate staff IDs, unknown roles, malformed names and clashing user names fail the lookup with
    file and line for every problem.
  - Vault-encrypted roster files are decrypted through Ansible's loader.
  - Returns one mapping, site code -> list of accounts (username, full_name, staff_id, role,
    role_label, group, admin).
options:
  _terms:
    description: Path of the roster file.
    required: true
  registry:
    description: Site registry directory (the inventory exports it as C(motcua_registry_dir)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Accounts of this host's site
  ansible.builtin.set_fact:
    _accounts: "{{ lookup('motcua.ops.roster', roster_file, registry=motcua_registry_dir)[motcua_site] | default([]) }}"
"""

RETURN = r"""
_raw:
  description: A one-element list holding the mapping site code -> accounts.
  type: list
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.motcua.ops.plugins.plugin_utils import project


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        project.require("motcua.ops.roster", AnsibleLookupError)
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleLookupError("motcua.ops.roster takes exactly one roster file")
        with project.decrypted(self._loader, terms[0], "roster file", AnsibleLookupError) as real:
            try:
                registry = project.registry.load_registry(self.get_option("registry"))
                officials = project.officials.load_roster(real, registry, label=str(terms[0]))
            except project.validation.InputError as exc:
                raise AnsibleLookupError(str(exc)) from None
        return [project.officials.accounts_by_site(officials)]
