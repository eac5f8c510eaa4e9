"""motcua.ops.web_config: one host's web config for the locked monitoring plane."""

from __future__ import annotations

DOCUMENTATION = r"""
name: web_config
short_description: One host's exporter-toolkit web config (TLS and bcrypt basic-auth users) from the vaulted passwords
description:
  - The file Prometheus, Alertmanager, node_exporter, blackbox_exporter and motcua's exporters and bridge
    read with C(--web.config.file) (docs/monitoring.md, "The locked plane").
  - Every user of C(motcua_web_users) (monitoring and operator at least, 16 characters or more) and the
    host's own C(local) user get a bcrypt hash with a salt fixed per host and user, so a second run
    writes the same file (changed=0).
  - The passwords come from ansible-vault in production; nothing but their hashes reaches the host.
author: motcua-ops developers, HCMC Digital Transformation Centre (@motcua-ops)
options:
  _input:
    description: "The users' passwords, C({user: password})."
    type: dict
    required: true
  host:
    description: The host's inventory name (the salts and the local user's password depend on it).
    type: str
    required: true
  tls:
    description: "C({cert_file, key_file}) on the host; empty for no TLS."
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Web config
  ansible.builtin.copy:
    content: "{{ motcua_web_users | motcua.ops.web_config(inventory_hostname, tls) | to_nice_yaml }}"
    dest: /etc/motcua/web/web-config.yml
    mode: "0640"
"""

RETURN = r"""
_value:
  description: The web config as a mapping (tls_server_config, basic_auth_users).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.motcua.ops.plugins.plugin_utils import project


def web_config(users, host, tls=None):
    project.require("motcua.ops.web_config", AnsibleFilterError)
    try:
        return project.webauth.web_config(project.plain(users), str(host), project.plain(tls) or None)
    except project.webauth.WebAuthError as exc:
        raise AnsibleFilterError(f"{host}: {exc}") from None


class FilterModule:
    def filters(self):
        return {"web_config": web_config}
