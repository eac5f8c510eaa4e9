#!/usr/bin/python
"""Ansible module: one CUPS print queue, idempotent, with check mode and diff."""

from __future__ import annotations

DOCUMENTATION = r"""
module: cups_queue
short_description: Manage one CUPS print queue
author: motcua-ops developers, HCMC Digital Transformation Centre (@motcua-ops)
description:
  - Creates, updates or removes a CUPS queue with C(lpadmin), reading its current state with
    C(lpoptions) and C(lpstat) so that a run with nothing to change changes nothing.
  - Supports check mode and diff.
options:
  name:
    description: Queue name (letters, digits, C(-), C(_)).
    type: str
    required: true
  state:
    description: Whether the queue exists.
    type: str
    choices: [present, absent]
    default: present
  uri:
    description: Device URI, for example C(ipp://10.79.77.221/ipp/print) or, in the lab, C(file:///var/spool/...).
    type: str
  model:
    description: Driver (PPD) as listed by C(lpinfo -m), for example C(drv:///cupsfilters.drv/pwgrast.ppd).
    type: str
  description:
    description: Human-readable description (printer-info).
    type: str
    default: ""
  location:
    description: Where the printer is (printer-location).
    type: str
    default: ""
  shared:
    description: Whether CUPS shares the queue on the network.
    type: bool
    default: false
  default:
    description: Make this queue the system default destination.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Site printer
  cups_queue:
    name: w26740-pr01
    uri: ipp://10.79.77.221/ipp/print
    model: drv:///cupsfilters.drv/pwgrast.ppd
    description: Máy in quầy một cửa
    default: true
"""

RETURN = r"""
queue:
  description: The queue's state after the run (or as it would be, in check mode).
  returned: always
  type: dict
"""

import os
import re
import shlex

from ansible.module_utils.basic import AnsibleModule

ENV = {"LC_ALL": "C", "LANG": "C"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,126}$")


def run(module: AnsibleModule, args: list[str], check: bool = True) -> str:
    rc, out, err = module.run_command(args, environ_update=ENV)
    if check and rc != 0:
        module.fail_json(msg=f"{' '.join(args)} failed (rc={rc}): {err.strip() or out.strip()}")
    return out if rc == 0 else ""


def model_name(module: AnsibleModule, model: str) -> str:
    """The make-and-model string CUPS records for a driver from `lpinfo -m`."""
    for line in run(module, ["lpinfo", "-m"]).splitlines():
        found, _sep, text = line.partition(" ")
        if found == model:
            return text.strip()
    module.fail_json(msg=f"queue {module.params['name']}: driver {model!r} is not installed (see `lpinfo -m`)")
    return ""


def current(module: AnsibleModule, name: str) -> dict[str, object] | None:
    rc, out, _err = module.run_command(["lpoptions", "-p", name], environ_update=ENV)
    if rc != 0 or not out.strip():
        return None
    options = dict(item.split("=", 1) for item in shlex.split(out) if "=" in item)
    default = run(module, ["lpstat", "-d"], check=False)
    return {
        "uri": options.get("device-uri", ""),
        "model": options.get("printer-make-and-model", ""),
        "description": options.get("printer-info", ""),
        "location": options.get("printer-location", ""),
        "shared": options.get("printer-is-shared", "false") == "true",
        "accepting": options.get("printer-is-accepting-jobs", "false") == "true",
        "enabled": options.get("printer-state", "5") != "5",
        "default": default.strip().endswith(f": {name}"),
    }


def render(state: dict[str, object] | None) -> str:
    if state is None:
        return ""
    return "".join(f"{key}: {state[key]}\n" for key in sorted(state))


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "uri": {"type": "str"},
            "model": {"type": "str"},
            "description": {"type": "str", "default": ""},
            "location": {"type": "str", "default": ""},
            "shared": {"type": "bool", "default": False},
            "default": {"type": "bool", "default": False},
        },
        required_if=[("state", "present", ("uri", "model"))],
        supports_check_mode=True,
    )
    p = module.params
    name = p["name"]
    if not NAME.match(name):
        module.fail_json(msg=f"queue name {name!r}: use letters, digits, '-' and '_' only")
    before = current(module, name)

    if p["state"] == "absent":
        if before is not None and not module.check_mode:
            run(module, ["lpadmin", "-x", name])
        module.exit_json(changed=before is not None, queue={}, diff={"before": render(before), "after": ""})

    wanted: dict[str, object] = {
        "uri": p["uri"],
        "model": model_name(module, p["model"]),
        "description": p["description"],
        "location": p["location"],
        "shared": p["shared"],
        "accepting": True,
        "enabled": True,
        "default": p["default"] or bool(before and before["default"]),
    }
    if before == wanted:
        module.exit_json(changed=False, queue=before)

    if not module.check_mode:
        args = ["lpadmin", "-p", name, "-E", "-v", p["uri"], "-D", p["description"], "-L", p["location"]]
        args += ["-o", f"printer-is-shared={'true' if p['shared'] else 'false'}"]
        if before is None or before["model"] != wanted["model"]:
            args += ["-m", p["model"]]
        run(module, args)
        run(module, ["cupsenable", name])
        run(module, ["cupsaccept", name])
        if p["default"]:
            run(module, ["lpadmin", "-d", name])
        after = current(module, name)
        if after != wanted:
            module.fail_json(msg=f"queue {name}: CUPS did not take the settings", wanted=wanted, found=after)
    module.exit_json(changed=True, queue=wanted, diff={"before": render(before), "after": render(wanted)})


if __name__ == "__main__":
    os.umask(0o022)
    main()
