"""The locked monitoring plane (docs/monitoring.md, "The locked plane"): TLS and basic auth on Prometheus,
Alertmanager, the bridge and every exporter, each through its own ``--web.config.file``.

Two sides live here, so that nothing works them out twice:

- the servers' side, for the ``motcua.ops.web_config`` filter: the exporter-toolkit web config of one host
  (bcrypt hashes of the users' passwords) and the host-local check user;
- the clients' side, for ``motcua silence``, the relocation tool, the lab and the tests: whose credentials,
  which CA, and a urllib opener that uses them.

Users: ``monitoring`` is the plane's own services calling each other (Prometheus scraping, Prometheus and
the bridges calling Alertmanager, the bridges calling each other); ``operator`` is people and the tools
they run. Both passwords are vaulted in production (``motcua_web_users``); the lab keeps them in
``<lab home>/web/<user>-password``. Each host also accepts ``local``, a password of its own derived from the
monitoring password (HMAC-SHA-256 with the host's name), kept root-only on the host for checks run there
(the go-live readiness probe): a host that leaks it leaks nothing that opens another host.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

MONITORING, OPERATOR, LOCAL = "monitoring", "operator", "local"
WEB_USERS = (MONITORING, OPERATOR)
MIN_PASSWORD = 16
# bcrypt's cost in the web configs: exporter-toolkit (and motcua's exporters) check a password once and
# remember it, so the cost is paid once per client, not per scrape.
BCRYPT_ROUNDS = 10
_BCRYPT_ALPHABET = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_BCRYPT64 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", _BCRYPT_ALPHABET)


class WebAuthError(ValueError):
    """A credential or web-config input that cannot be used; the message names what and where."""


def check_users(users: object, where: str = "motcua_web_users") -> dict[str, str]:
    """{user: password} with the monitoring and operator users, each password 16 characters or more."""
    if not isinstance(users, dict):
        raise WebAuthError(f"{where}: must be a mapping of user name to password (vaulted), got {type(users).__name__}")
    out: dict[str, str] = {}
    for user, password in users.items():
        if not isinstance(user, str) or not user or ":" in user or user == LOCAL:
            raise WebAuthError(f"{where}: {user!r} is not a usable user name (no ':', and '{LOCAL}' is reserved)")
        if not isinstance(password, str) or len(password.strip()) < MIN_PASSWORD:
            raise WebAuthError(f"{where}.{user}: the password must be {MIN_PASSWORD} characters or more")
        out[user] = password.strip()
    missing = [u for u in WEB_USERS if u not in out]
    if missing:
        raise WebAuthError(f"{where}: no password for {', '.join(missing)} (the plane needs {' and '.join(WEB_USERS)})")
    return out


def local_password(users: dict[str, str], host: str) -> str:
    """The host-local check user's password: HMAC-SHA-256 of the host's name under the monitoring password."""
    digest = hmac.new(users[MONITORING].encode(), f"motcua-local\0{host}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def bcrypt_hash(password: str, host: str, user: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """bcrypt of the password with a salt fixed per host and user, so that a second run writes the same file.

    The salt is public in the hash and only has to differ between hosts and users (it does: it is derived
    from their names); deriving it from the password would leak a fast hash of the password.
    """
    raw = hashlib.sha256(f"motcua-web-salt\0{host}\0{user}".encode()).digest()[:16]
    salt22 = base64.b64encode(raw).translate(_BCRYPT64)[:22]
    # The 22nd character carries the last 2 bits only; its canonical form has the other 4 at zero.
    last = _BCRYPT_ALPHABET.index(salt22[21:])
    salt22 = salt22[:21] + _BCRYPT_ALPHABET[last & 0b110000 : (last & 0b110000) + 1]
    return bcrypt.hashpw(password.encode(), b"$2b$%02d$" % rounds + salt22).decode()


def web_config(users: dict[str, str], host: str, tls: dict[str, str] | None) -> dict[str, object]:
    """One host's exporter-toolkit web config: TLS (cert_file, key_file) and every user's bcrypt hash."""
    users = check_users(users)
    hashes = {user: bcrypt_hash(password, host, user) for user, password in sorted(users.items())}
    hashes[LOCAL] = bcrypt_hash(local_password(users, host), host, LOCAL)
    config: dict[str, object] = {}
    if tls:
        config["tls_server_config"] = {"cert_file": tls["cert_file"], "key_file": tls["key_file"],
                                       "min_version": "TLS12"}  # fmt: skip
    config["basic_auth_users"] = hashes
    return config


# ---------------------------------------------------------------- clients


@dataclass(frozen=True)
class Credentials:
    """Who a tool is to the plane: a basic-auth user, its password and the CA the plane's certificates chain to."""

    username: str
    password: str = field(repr=False)
    ca_file: Path | None = None

    @classmethod
    def from_files(cls, username: str, password_file: Path, ca_file: Path | None) -> Credentials:
        try:
            password = password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise WebAuthError(f"{password_file}: cannot read the {username} password: {exc.strerror}") from None
        if not password:
            raise WebAuthError(f"{password_file}: empty")
        if ca_file is not None and not ca_file.is_file():
            raise WebAuthError(f"{ca_file}: no such CA file")
        return cls(username, password, ca_file)

    @classmethod
    def for_tools(cls, lab_home: Path | None = None, env: dict[str, str] | None = None) -> Credentials | None:
        """$MOTCUA_WEB_USER (default operator), $MOTCUA_WEB_PASSWORD_FILE and $MOTCUA_WEB_CA_FILE; else, for the
        lab, the lab home's operator password and the lab CA; else None (an open plane)."""
        env = os.environ if env is None else env
        if env.get("MOTCUA_WEB_PASSWORD_FILE"):
            ca = env.get("MOTCUA_WEB_CA_FILE")
            return cls.from_files(env.get("MOTCUA_WEB_USER", OPERATOR), Path(env["MOTCUA_WEB_PASSWORD_FILE"]),
                                  Path(ca) if ca else None)  # fmt: skip
        if lab_home is not None and (lab_home / "web" / f"{OPERATOR}-password").exists():
            return cls.from_files(OPERATOR, lab_home / "web" / f"{OPERATOR}-password", lab_home / "ca" / "ca.pem")
        return None

    def authorization(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


def open_url(request: urllib.request.Request | str, credentials: Credentials | None, timeout: float):
    """urllib's urlopen with the credentials' Authorization header and CA (plain urlopen without them)."""
    if isinstance(request, str):
        request = urllib.request.Request(request)  # noqa: S310 - callers pass http(s) URLs
    if credentials is None:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
    request.add_header("Authorization", credentials.authorization())
    return urllib.request.urlopen(request, timeout=timeout, context=credentials.context())  # noqa: S310
