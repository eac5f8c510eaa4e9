"""The certificate exporter's config file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..core.config import Section, load_yaml, unique
from .sources import FileSource, Source, TLSSource, TokenSource

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
SITE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass
class CertificateConfig:
    sources: list[Source]
    interval: float = 300.0
    timeout: float = 10.0


def load(path: str | Path) -> CertificateConfig:
    root = load_yaml(path)
    interval = root.duration("interval", 300.0, minimum=5.0)
    timeout = root.duration("timeout", 10.0, minimum=0.1)
    if timeout >= interval:
        raise root.error("timeout", f"must be shorter than the interval ({interval:g}s)")
    items = root.sections("sources")
    if not items:
        raise root.error("sources", "must list at least one source")
    if len(items) > root.int("max_sources", 2000, minimum=1):
        raise root.error("sources", "more sources than max_sources")
    sources = [_source(item) for item in items]
    unique(sources, lambda s: s.name, root, "sources")
    root.done()
    return CertificateConfig(sources, interval, timeout)


def _source(item: Section) -> Source:
    name = item.str("name")
    if not NAME.match(name):
        raise item.error("name", f"must be lower-case letters, digits, '_', '.', '-', not {name!r}")
    site = str(item.raw("site", ""))
    if not SITE.match(site):
        raise item.error("site", "is required: the site code (ward code, or 'city' for city-wide services)")
    kinds = [k for k in ("file", "pkcs11", "tls") if item.has(k)]
    if len(kinds) != 1:
        raise item.error(None, "needs exactly one of file:, pkcs11:, tls:")
    source: Source
    if kinds[0] == "file":
        source = FileSource(
            name,
            site,
            item.path("file", must_exist=True),
            item.path("password_file", None, must_exist=True),
        )
    elif kinds[0] == "pkcs11":
        token = item.section("pkcs11")
        source = TokenSource(name, site, token.str("module"), token.str("token_label", None))
        token.done()
    else:
        endpoint = item.str("tls")
        host, sep, port = endpoint.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise item.error("tls", f"must be HOST:PORT, not {endpoint!r}")
        source = TLSSource(name, site, host.strip("[]"), int(port), item.str("server_name", None))
    item.done()
    return source
