"""motcua.ops.initial_password: an official's own initial password, derived from the DX Centre's secret."""

from __future__ import annotations

DOCUMENTATION = r"""
name: initial_password
short_description: An official's initial password and its SHA-512 crypt hash, from a secret and the user name
description:
  - Every new account gets a password of its own, derived from the DX Centre's initial secret (ansible-vault)
    and the account's user name with HMAC-SHA-256, so no two accounts share one and the controller can
    tell, on every run, whether an account still has it (its hash is derived the same way, with a salt
    of its own).
  - The password is 4 groups of 4 letters and digits without look-alikes (0/O, 1/l/I), for the hand-over sheet.
author: motcua-ops developers, HCMC Digital Transformation Centre (@motcua-ops)
options:
  _input:
    description: The account's user name.
    type: str
    required: true
  secret:
    description: The initial secret (16 characters or more; from ansible-vault, never in the repository).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: An official's account with its own initial password
  ansible.builtin.user:
    name: hoapt
    password: "{{ ('hoapt' | motcua.ops.initial_password(counter_accounts_initial_secret)).hash }}"
    update_password: on_create
"""

RETURN = r"""
_value:
  description: C(password) (for the hand-over sheet) and C(hash) (SHA-512 crypt, as in /etc/shadow).
  type: dict
"""

import hashlib
import hmac

from ansible.errors import AnsibleFilterError

try:  # passlib: SHA-512 crypt with a given salt (ansible's password_hash filter uses it too)
    from passlib.hash import sha512_crypt
except ImportError as exc:
    PASSLIB_ERROR: ImportError | None = exc
else:
    PASSLIB_ERROR = None

# Letters and digits that cannot be misread on a printed sheet.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_SALT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _digest(secret: str, purpose: str, username: str) -> bytes:
    return hmac.new(secret.encode(), f"motcua-initial-{purpose}:{username}".encode(), hashlib.sha256).digest()


def initial_password(username, secret):
    if PASSLIB_ERROR is not None:
        raise AnsibleFilterError(f"motcua.ops.initial_password needs passlib ({PASSLIB_ERROR}): run `make venv`")
    if not isinstance(secret, str) or len(secret) < 16:
        raise AnsibleFilterError("motcua.ops.initial_password: the secret must be 16 characters or more (vault it)")
    if not isinstance(username, str) or not username:
        raise AnsibleFilterError(f"motcua.ops.initial_password: {username!r} is not a user name")
    number = int.from_bytes(_digest(secret, "password", username), "big")
    chars = []
    for _position in range(16):
        number, index = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    password = "-".join("".join(chars[i : i + 4]) for i in range(0, 16, 4))
    salt_bits = int.from_bytes(_digest(secret, "salt", username), "big")
    salt = "".join(_SALT_ALPHABET[(salt_bits >> (6 * i)) & 63] for i in range(16))
    # rounds=5000: glibc's default, written without a rounds= field, as shadow(5) holds it.
    hashed = sha512_crypt.using(rounds=5000, salt=salt).hash(password)
    return {"password": password, "hash": hashed}


class FilterModule:
    def filters(self):
        return {"initial_password": initial_password}
