"""Filter for playbooks/network.yml: batches of whole sites."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: site_batches
short_description: Batch sizes (for C(serial)) that keep every site's devices in one batch
description:
  - Given the play's hosts and the inventory's C(groups), returns the list of batch sizes, each
    holding C(sites) whole sites, for a play with C(order=sorted) - host names start with their
    site, so sorting by name puts a site's devices side by side.
options:
  _input:
    description: The play's hosts (C(ansible_play_hosts)), in play order.
    type: list
    required: true
  groups:
    description: The inventory's C(groups) (site groups are C(site_<code>)).
    type: dict
    required: true
  sites:
    description: Sites per batch.
    type: int
    default: 5
"""


def site_batches(hosts, groups, sites=5):
    """[n1, n2, ...]: the number of hosts in each run of ``sites`` consecutive sites."""
    try:
        sites = int(sites)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"motcua.ops.site_batches: sites must be a number, got {sites!r}") from None
    if sites < 1:
        raise AnsibleFilterError(f"motcua.ops.site_batches: sites must be at least 1, got {sites}")
    site_of = {}
    for name, members in groups.items():
        if name.startswith("site_"):
            for host in members:
                site_of[host] = name
    sizes, seen, current = [], [], None
    for host in sorted(hosts):  # the order of `order: sorted`
        site = site_of.get(host, host)
        if site != current:
            if current is not None and site in seen:
                raise AnsibleFilterError(
                    f"motcua.ops.site_batches: {host} sorts apart from the rest of {site} "
                    "(names must start with the site)"
                )
            seen.append(site)
            current = site
            if (len(seen) - 1) % sites == 0:
                sizes.append(0)
        sizes[-1] += 1
    return sizes or [1]


class FilterModule:
    def filters(self):
        return {"site_batches": site_batches}
