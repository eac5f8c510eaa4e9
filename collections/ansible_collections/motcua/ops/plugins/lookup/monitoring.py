"""Lookup plugin: Prometheus rules and the Alertmanager config, built from the registry."""

from __future__ import annotations

DOCUMENTATION = r"""
name: monitoring
short_description: Alert rules and Alertmanager routing from the site registry and the duty roster
description:
  - C(rules) returns the Prometheus rules file (as a mapping) - the site-information series of every
    site of the inventory and every motcua alert, with the given pace.
  - C(alertmanager) reads and validates the duty roster against the registry (unknown sites,
    overlapping shifts and uncovered hours fail the lookup, naming file, line and shift) and returns
    the Alertmanager config (as a mapping) - receivers, time intervals, routes, topology inhibition.
  - C(bridge) reads the roster the same way and returns the notification bridge's recipients
    (receiver name to person, channels, Zalo id, phone).
  - C(board) reads the roster the same way and returns the duty board's data file (as a mapping) - the
    inventory's sites with their devices, regions and teams, and each span of each shift.
  - Vault-encrypted roster files are decrypted through Ansible's loader.
options:
  _terms:
    description: C(rules), C(alertmanager), C(bridge) or C(board).
    required: true
  registry:
    description: Site registry directory (the inventory exports it as C(motcua_registry_dir)).
    type: str
    required: true
  sites:
    description: Site codes of this inventory (the lab runs a few); all sites when empty.
    type: list
    elements: str
    default: []
  durations:
    description: (rules) C(for) of each pace class - fast, short, medium, long, escalate.
    type: dict
    default: {}
  dossier_thresholds:
    description: >-
      (rules) The dossier processing alerts' thresholds, any of overdue, growth, usual_intake,
      on_time_target, on_time_minimum, stale_hours (docs/dossiers.md); the others keep their defaults.
    type: dict
    default: {}
  opening_hours:
    description: >-
      (rules) Site code to opening hours (weekdays to C(HH:MM-HH:MM), as sites.yml writes them) that
      replace the registry's for those sites.
    type: dict
    default: {}
  runbook_base:
    description: (rules) Base URL of the runbooks; each alert links to C(<base>/<alert-slug>.md).
    type: str
    default: docs/runbooks
  roster:
    description: (alertmanager, bridge, board) The duty roster file.
    type: str
  settings:
    description: (alertmanager) smtp, telegram, webhooks, bridge, pace - see motcua.monitoring.alertmanager.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Rules
  ansible.builtin.copy:
    content: "{{ lookup('motcua.ops.monitoring', 'rules', registry=motcua_registry_dir) | to_nice_yaml }}"
    dest: /etc/prometheus/rules.d/motcua.yml
    mode: "0644"
"""

RETURN = r"""
_raw:
  description: A one-element list holding the rules file or the Alertmanager config.
  type: list
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.motcua.ops.plugins.plugin_utils import project


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        project.require("motcua.ops.monitoring", AnsibleLookupError)
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1 or terms[0] not in ("rules", "alertmanager", "bridge", "board"):
            raise AnsibleLookupError("motcua.ops.monitoring takes one term: rules, alertmanager, bridge or board")
        try:
            registry = project.registry.load_registry(self.get_option("registry"))
            registry = registry.subset(self.get_option("sites") or None)
        except (project.validation.InputError, project.registry.UnknownSiteError) as exc:
            raise AnsibleLookupError(str(exc)) from None
        if terms[0] == "rules":
            try:
                durations, runbooks = self.get_option("durations"), self.get_option("runbook_base")
                thresholds = self.get_option("dossier_thresholds")
                return [project.rules.rule_groups(registry, durations, runbook_base=runbooks,
                                                  dossier_thresholds=thresholds,
                                                  opening_hours=self.get_option("opening_hours"))]  # fmt: skip
            except ValueError as exc:
                raise AnsibleLookupError(str(exc)) from None
        roster = self.get_option("roster")
        with project.decrypted(self._loader, roster, "duty roster file", AnsibleLookupError) as real:
            try:
                parsed = project.duty.load_duty_roster(real, registry, label=str(roster))
                if terms[0] == "bridge":
                    return [project.alertmanager.bridge_recipients(parsed)]
                if terms[0] == "board":
                    return [project.alertmanager.board_data(registry, parsed)]
                return [project.alertmanager.compile_alertmanager(parsed, self.get_option("settings"))]
            except project.validation.InputError as exc:
                raise AnsibleLookupError(str(exc)) from None
            except (KeyError, TypeError, ValueError) as exc:
                raise AnsibleLookupError(f"alertmanager settings: {exc}") from None
