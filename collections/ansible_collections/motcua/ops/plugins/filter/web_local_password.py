"""motcua.ops.web_local_password: the host-local check user's password on the locked monitoring plane."""

from __future__ import annotations

DOCUMENTATION = r"""
name: web_local_password
short_description: The host's own C(local) user's password, derived from the monitoring password
description:
  - HMAC-SHA-256 of the host's name under the C(monitoring) user's password (docs/monitoring.md,
    "The locked plane"). The roles keep it root-only on the host for checks that run there (the
    go-live readiness probe reads the counter exporter with it); it opens that host's services only.
author: motcua-ops developers, HCMC Digital Transformation Centre (@motcua-ops)
options:
  _input:
    description: "The users' passwords, C({user: password}), as for P(motcua.ops.web_config#filter)."
    type: dict
    required: true
  host:
    description: The host's inventory name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Local check password
  ansible.builtin.copy:
    content: "{{ motcua_web_users | motcua.ops.web_local_password(inventory_hostname) }}"
    dest: /etc/motcua/web/local.password
    mode: "0600"
"""

RETURN = r"""
_value:
  description: The password.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.motcua.ops.plugins.plugin_utils import project


def web_local_password(users, host):
    project.require("motcua.ops.web_local_password", AnsibleFilterError)
    try:
        return project.webauth.local_password(project.webauth.check_users(project.plain(users)), str(host))
    except project.webauth.WebAuthError as exc:
        raise AnsibleFilterError(f"{host}: {exc}") from None


class FilterModule:
    def filters(self):
        return {"web_local_password": web_local_password}
