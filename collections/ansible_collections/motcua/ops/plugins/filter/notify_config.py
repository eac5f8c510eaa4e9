"""motcua.ops.notify_config: motcua-notify's config from the role's settings and the roster's recipients."""

from __future__ import annotations

DOCUMENTATION = r"""
name: notify_config
short_description: The notification bridge's config, its secret files, and the same config for a check on the controller
description:
  - Takes the bridge's settings (C(monitoring_exporters_notify)) whose credentials are files on the controller
    (vault-encrypted in production) and the recipients the duty roster compiles to
    (C(lookup('motcua.ops.monitoring', 'bridge', ...))).
  - Returns C(host), the config as the monitoring host reads it (credentials under O(etc_dir)),
    C(controller), the same config naming the controller's files (the bridge's own check runs on the
    controller before the host changes), and C(files), the credentials to copy (C(src), C(dest)).
author: motcua-ops developers, HCMC Digital Transformation Centre (@motcua-ops)
options:
  _input:
    description: The bridge's settings (public_url, zalo, zns, sms and the optional tuning keys).
    type: dict
    required: true
  recipients:
    description: Alertmanager receiver name to person (name, channels, zalo, phone).
    type: dict
    required: true
  etc_dir:
    description: Where the credentials go on the host.
    type: str
    default: /etc/motcua/notify
  state_dir:
    description: The bridge's state directory on the host.
    type: str
    default: /var/lib/motcua-notify
  cluster:
    description:
      - The monitoring pair as this bridge sees it - C(name) (this host), C(peers) (name to the peer bridge's URL,
        or a list of host names with C(peer_addresses) and the bridges' C(port)), C(wait).
    type: dict
    default: {}
  heartbeat:
    description:
      - The dead man's switch - C(timeout), C(alertmanager) (this host's), C(runbook_url),
        C(external) ({url, method}).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: The bridge's config
  ansible.builtin.set_fact:
    notify: "{{ monitoring_exporters_notify | motcua.ops.notify_config(recipients) }}"
"""

RETURN = r"""
_value:
  description: C(host), C(controller) (configs as mappings) and C(files) (list of C(src), C(dest)).
  type: dict
"""

import copy

from ansible.errors import AnsibleFilterError
from ansible_collections.motcua.ops.plugins.plugin_utils.project import plain

# (section, key) of each credential file and the name it gets on the host.
CREDENTIALS = (
    (("zalo", "app_secret_file"), "zalo-app-secret"),
    (("zalo", "refresh_token_file"), "zalo-refresh-token"),
    (("sms", "auth", "value_file"), "sms-auth"),
)


def _get(tree, path):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _set(tree, path, value):
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def notify_config(
    settings, recipients, etc_dir="/etc/motcua/notify", state_dir="/var/lib/motcua-notify", cluster=None, heartbeat=None
):
    if not isinstance(settings, dict) or not isinstance(recipients, dict):
        raise AnsibleFilterError("motcua.ops.notify_config: settings and recipients must be mappings")
    for name, value in (("cluster", cluster), ("heartbeat", heartbeat)):
        if value is not None and not isinstance(value, dict):
            raise AnsibleFilterError(f"motcua.ops.notify_config: {name} must be a mapping")
    base = plain(settings)
    base["state_dir"] = state_dir
    base["recipients"] = plain(recipients)
    if cluster:
        base["cluster"] = plain(cluster)
        peers = base["cluster"].get("peers") or {}
        addresses = base["cluster"].pop("peer_addresses", None)
        port = base["cluster"].pop("port", None)
        scheme = base["cluster"].pop("scheme", "http")
        if isinstance(peers, list):  # host names, with their addresses and the bridges' port
            if not isinstance(addresses, list) or len(addresses) != len(peers) or not port:
                raise AnsibleFilterError(
                    "motcua.ops.notify_config: cluster.peers as a list needs peer_addresses (one each) and port"
                )
            peers = {str(name): f"{scheme}://{address}:{port}/" for name, address in zip(peers, addresses, strict=True)}
        base["cluster"]["peers"] = peers
    if cluster and heartbeat:
        base["heartbeat"] = {k: v for k, v in plain(heartbeat).items() if v not in (None, "", {})}
    host, controller, files = copy.deepcopy(base), copy.deepcopy(base), []
    paths = [(path, name) for path, name in CREDENTIALS if _get(base, path)]
    for field in sorted(_get(base, ("sms", "secret_fields")) or {}):
        paths.append((("sms", "secret_fields", field), f"sms-field-{field}"))
    for path, name in paths:
        source = str(_get(base, path))
        dest = f"{etc_dir.rstrip('/')}/{name}"
        _set(host, path, dest)
        files.append({"src": source, "dest": dest})
    return {"host": host, "controller": controller, "files": files}


class FilterModule:
    def filters(self):
        return {"notify_config": notify_config}
