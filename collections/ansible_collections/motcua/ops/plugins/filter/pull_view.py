"""Filter for the counter_pull role's render: one counter's own inventory view, without its secrets."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import PurePosixPath

from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable
from jinja2 import Undefined
from jinja2.exceptions import UndefinedError

DOCUMENTATION = r"""
name: pull_view
short_description: A counter's variables as the PC itself will read them when it pulls
description:
  - Evaluates, on the controller, the variables of one host whose names match C(pattern), so that
    the PC that pulls reads plain values (no lookup of the controller's files, no registry).
  - A variable named in C(secrets) is never evaluated into the view; it becomes a lookup of a file
    that the counter_pull role put on the PC over push (root only). A variable named in
    C(secret_files) becomes the path of such a file.
  - A variable named in C(files) holds paths of the controller's public files (a string or a
    list); the view names their copies under C(files/<host>/) in the pulled tree, and the result's
    C(files) says which file to copy where.
  - Refuses (fails) when the value of a secret, evaluated here only for this check, appears in the
    view, that is when a variable that is not declared secret carries one.
options:
  _input:
    description: The host's variables (C(hostvars[inventory_hostname])), evaluated on access.
    type: dict
    required: true
  host:
    description: The host's inventory name.
    type: str
    required: true
  pattern:
    description: Regular expression (re.match) of the variable names the view takes.
    type: str
    required: true
  exclude:
    description: Names left out of the view (controller-only settings).
    type: list
    elements: str
    default: []
  secrets:
    description: Names whose values stay out of the view (read from C(secrets_dir)/<name>.json on the PC).
    type: list
    elements: str
    default: []
  secret_files:
    description: Names of paths of secret files (found as C(secrets_dir)/files/<name> on the PC).
    type: list
    elements: str
    default: []
  files:
    description: Names of paths (a string or a list of strings) of the controller's public files.
    type: list
    elements: str
    default: []
  secrets_dir:
    description: Where the PC keeps the secrets the role put there.
    type: str
    required: true
  min_secret_length:
    description: Secrets shorter than this are not searched for in the view (too likely to match by chance).
    type: int
    default: 8
"""

RETURN = r"""
_value:
  description: C(vars) (name to value) and C(files) (C(src) on the controller, C(dest) relative to the tree).
  type: dict
"""


def _strings(value):
    """Every string inside ``value`` (dicts' values, not their keys: user names; lists' items)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _plain(value):
    """The value as plain data (JSON's types): what the view file is written from."""
    return json.loads(json.dumps(value, default=str))


def _evaluated(hostvars, name):
    """The variable evaluated here; one that needs a role's default (which the PC has, and the
    controller's inventory does not) is left as written, for the PC to evaluate."""
    try:
        value = hostvars[name]
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return _plain(value)
    except (AnsibleUndefinedVariable, UndefinedError):
        raw = getattr(hostvars, "_vars", {}).get(name)
        if raw is None:
            raise
        return _plain(raw)


def pull_view(hostvars, host, pattern, secrets_dir, exclude=(), secrets=(), secret_files=(), files=(),
              min_secret_length=8):  # fmt: skip
    try:
        match = re.compile(pattern).match
    except re.error as exc:
        raise AnsibleFilterError(f"motcua.ops.pull_view: pattern {pattern!r}: {exc}") from None
    names = sorted(n for n in hostvars if match(n) and n not in set(exclude))
    view, copies = {}, []
    for name in names:
        if name in secrets:
            view[name] = f"{{{{ lookup('ansible.builtin.file', '{secrets_dir}/{name}.json') | from_json }}}}"
        elif name in secret_files:
            view[name] = f"{secrets_dir}/files/{name}"
        elif name in files:
            value = _plain(hostvars[name])
            paths = value if isinstance(value, list) else [value]
            named = []
            for index, path in enumerate(paths):
                if not isinstance(path, str) or not path:
                    raise AnsibleFilterError(f"motcua.ops.pull_view: {host}: {name} must hold file paths, got {path!r}")
                dest = f"files/{host}/{name}/{index}/{PurePosixPath(path).name}"
                copies.append({"src": path, "dest": dest})
                named.append(f"{{{{ inventory_dir }}}}/../{dest}")
            view[name] = named if isinstance(value, list) else named[0]
        else:
            view[name] = _evaluated(hostvars, name)
    text = json.dumps(view, ensure_ascii=False)
    for name in secrets:
        if name not in hostvars:
            continue
        for secret in _strings(_plain(hostvars[name])):
            if len(secret) >= int(min_secret_length) and (secret in text or json.dumps(secret)[1:-1] in text):
                carriers = sorted(n for n in view if secret in json.dumps(view[n], ensure_ascii=False))
                raise AnsibleFilterError(
                    f"motcua.ops.pull_view: {host}: the value of the secret {name} is in "
                    f"{', '.join(carriers) or 'the view'}: declare those secret too (counter_pull_secret_vars)"
                )
    return {"vars": view, "files": copies}


class FilterModule:
    def filters(self):
        return {"pull_view": pull_view}
