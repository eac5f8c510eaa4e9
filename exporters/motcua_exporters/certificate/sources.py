"""Where certificates are read from: one class per kind of source, each returning certificates or raising."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from ..core import certs, pkcs11

MAX_PER_SOURCE = 20  # a CA bundle has a handful; more would be a mistake and a cardinality risk


class SourceError(Exception):
    """Why a source could not be read (one line for the log)."""


@dataclass(frozen=True)
class Source:
    name: str
    site: str

    @property
    def kind(self) -> str:
        raise NotImplementedError

    def read(self, timeout: float) -> list[x509.Certificate]:
        raise NotImplementedError


@dataclass(frozen=True)
class FileSource(Source):
    path: Path
    password_file: Path | None = None

    @property
    def kind(self) -> str:
        return "file"

    def read(self, timeout: float) -> list[x509.Certificate]:
        try:
            password = self.password_file.read_bytes().strip() if self.password_file else None
            return certs.load_file(self.path, password)[:MAX_PER_SOURCE]
        except OSError as exc:
            raise SourceError(f"{self.path}: {exc.strerror}") from None
        except ValueError as exc:
            raise SourceError(f"{self.path}: {exc}") from None


@dataclass(frozen=True)
class TokenSource(Source):
    module: str
    token_label: str | None = None  # None: every token the module sees

    @property
    def kind(self) -> str:
        return "pkcs11"

    def read(self, timeout: float) -> list[x509.Certificate]:
        try:
            found = [t for t in pkcs11.tokens(self.module, timeout) if self.token_label in (None, t[1])]
            if self.token_label and not found:
                raise SourceError(f"no token labelled {self.token_label!r} is present")
            out = []
            for slot, label in found:
                out += [item.cert for item in pkcs11.certificates(self.module, slot, label, timeout)]
            return out[:MAX_PER_SOURCE]
        except pkcs11.ToolError as exc:
            raise SourceError(str(exc)) from None


@dataclass(frozen=True)
class TLSSource(Source):
    host: str
    port: int
    server_name: str | None = None

    @property
    def kind(self) -> str:
        return "tls"

    def read(self, timeout: float) -> list[x509.Certificate]:
        try:
            return [certs.from_tls(self.host, self.port, self.server_name, timeout)]
        except (OSError, ValueError) as exc:
            raise SourceError(f"{self.host}:{self.port}: {exc}") from None
