"""IOS secret hashes, so that the vault holds hashes and never a device password.

``username NAME privilege N secret 9 <hash>`` takes a type 9 (scrypt) hash
made anywhere; IOS prints it back unchanged, which keeps the playbook
idempotent. ``motcua netgear hash-secret`` prints one for the vault.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_CISCO = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TO_CISCO = str.maketrans(_STD, _CISCO)
TYPE9 = re.compile(r"\$9\$[./0-9A-Za-z]{14}\$[./0-9A-Za-z]{43}")


def type9_hash(password: str, salt: str | None = None) -> str:
    """Cisco type 9: scrypt (N=16384, r=1, p=1) over a 14-character salt, in Cisco's base64 alphabet."""
    if not password:
        raise ValueError("an empty password cannot be hashed")
    if salt is None:
        salt = base64.b64encode(os.urandom(12)).decode().translate(_TO_CISCO)[:14]
    if not re.fullmatch(r"[./0-9A-Za-z]{14}", salt):
        raise ValueError("the salt must be 14 characters of ./0-9A-Za-z")
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=16384, r=1, p=1, dklen=32)
    return f"$9${salt}${base64.b64encode(digest).decode().translate(_TO_CISCO).rstrip('=')}"
