"""motcua.ops.metric_value: one sample's value from a Prometheus /metrics page."""

from __future__ import annotations

DOCUMENTATION = r"""
name: metric_value
short_description: The value of a metric without labels in Prometheus' text exposition format
description:
  - Reads a C(/metrics) page (as C(ansible.builtin.uri) returns it with C(return_content)) and returns the
    value of the named metric's sample without labels, as a float; C(none) when the page has no such sample.
  - The roles use it to confirm that Prometheus and Alertmanager loaded a new config
    (C(prometheus_config_last_reload_successful), C(alertmanager_config_last_reload_successful)).
author: motcua-ops developers, HCMC Digital Transformation Centre (@motcua-ops)
options:
  _input:
    description: The page's text.
    type: str
    required: true
  name:
    description: The metric's name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Prometheus loaded its config
  ansible.builtin.assert:
    that: page.content | motcua.ops.metric_value('prometheus_config_last_reload_successful') == 1
"""

RETURN = r"""
_value:
  description: The sample's value, or C(none).
  type: float
"""

import re

from ansible.errors import AnsibleFilterError

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")


def metric_value(page, name):
    if not isinstance(name, str) or not _NAME.match(name):
        raise AnsibleFilterError(f"motcua.ops.metric_value: {name!r} is not a metric name")
    if not isinstance(page, str):
        return None
    # name, optionally `{}`, whitespace, the value, optionally a timestamp (exposition format 0.0.4).
    sample = re.compile(rf"^{re.escape(name)}(?:\{{\}})?[ \t]+(\S+)(?:[ \t]+-?\d+)?[ \t]*$", re.MULTILINE)
    match = sample.search(page)
    if match is None:
        return None
    try:
        return float(match.group(1))
    except ValueError:
        raise AnsibleFilterError(f"motcua.ops.metric_value: {name} has the value {match.group(1)!r}") from None


class FilterModule:
    def filters(self):
        return {"metric_value": metric_value}
