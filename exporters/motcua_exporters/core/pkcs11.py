"""Certificates on PKCS#11 tokens, read with OpenSC's pkcs11-tool (public objects: no PIN needed)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

_SLOT = re.compile(r"^Slot (\d+) \((0x[0-9a-fA-F]+)\):")
_TOKEN_LABEL = re.compile(r"^\s+token label\s*:\s*(.*?)\s*$")
_CERT_ID = re.compile(r"^\s+ID:\s*([0-9a-fA-F]+)\s*$")
# Tools run in the C locale (their output is parsed); token modules keep their own settings.
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C", "LANG": "C"} | {
    k: v for k, v in os.environ.items() if k in ("SOFTHSM2_CONF", "OPENSC_CONF", "PCSCLITE_CSOCK_NAME")
}
MAX_TOKENS = MAX_CERTS = 8  # bounded: these become label values


class ToolError(Exception):
    """A command that did not answer; ``str()`` is one line for the log."""


def command(argv: list[str], timeout: float, ok_codes: tuple[int, ...] = (0,)) -> str:
    """Run a local tool in the C locale with a timeout; ToolError with its last line of output if it fails."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=ENV, check=False)
    except FileNotFoundError:
        raise ToolError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"{argv[0]} did not answer within {timeout:g}s") from None
    if result.returncode not in ok_codes:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise ToolError(f"{argv[0]} exited {result.returncode}: {message[-1] if message else 'no output'}")
    return result.stdout


@dataclass(frozen=True)
class TokenCertificate:
    token: str
    object_id: str
    cert: x509.Certificate


def tokens(module: str, timeout: float) -> list[tuple[str, str]]:
    """(slot id, token label) of every slot with a token in it."""
    if not Path(module).exists():
        raise ToolError(f"PKCS#11 module {module} is missing")
    found, slot = [], None
    for line in command(["pkcs11-tool", "--module", module, "--list-token-slots"], timeout).splitlines():
        match = _SLOT.match(line)
        if match:
            slot = match.group(2)
            continue
        match = _TOKEN_LABEL.match(line)
        if match and slot is not None:
            found.append((slot, match.group(1)))
    return found[:MAX_TOKENS]


def certificates(module: str, slot: str, label: str, timeout: float) -> list[TokenCertificate]:
    base = ["pkcs11-tool", "--module", module, "--slot", slot]
    ids = []
    for line in command([*base, "--list-objects", "--type", "cert"], timeout).splitlines():
        match = _CERT_ID.match(line)
        if match:
            ids.append(match.group(1))
    out = []
    for object_id in ids[:MAX_CERTS]:
        with tempfile.NamedTemporaryFile(prefix="motcua-token-") as der:
            command([*base, "--read-object", "--type", "cert", "--id", object_id, "--output-file", der.name], timeout)
            out.append(TokenCertificate(label, object_id, x509.load_der_x509_certificate(Path(der.name).read_bytes())))
    return out
