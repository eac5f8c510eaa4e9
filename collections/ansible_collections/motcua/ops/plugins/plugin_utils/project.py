"""What the motcua.ops plugins share: the motcua package (the project's one model of the registry,
installed in the venv beside ansible-core) and input files that Ansible Vault may encrypt."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

try:
    from motcua import inventory, registry, spreadsheet, validation, webauth
    from motcua.monitoring import alertmanager, rules
    from motcua.rosters import duty, officials
except ImportError as exc:
    IMPORT_ERROR: ImportError | None = exc
else:
    IMPORT_ERROR = None

__all__ = [
    "alertmanager",
    "decrypted",
    "duty",
    "inventory",
    "officials",
    "plain",
    "registry",
    "require",
    "rules",
    "spreadsheet",
    "validation",
    "webauth",
]


def require(plugin: str, error: type[Exception]) -> None:
    """Stop with ``error`` naming the plugin when the motcua package cannot be imported."""
    if IMPORT_ERROR is not None:
        raise error(
            f"{plugin}: the motcua package is not importable ({IMPORT_ERROR}): "
            "run `make venv` and the .venv's ansible-* commands"
        )


@contextmanager
def decrypted(loader, path: str | None, what: str, error: type[Exception]):
    """The file's path, decrypted by Ansible's loader when vault-encrypted (the copy is removed after)."""
    if not path or not Path(path).exists():
        raise error(f"{what} {path} not found")
    real = loader.get_real_file(str(path), decrypt=True)
    try:
        yield real
    finally:
        if real != str(path):
            loader.cleanup_tmp_file(real)


def plain(value):
    """Plain dicts, lists and scalars. A filter's arguments may be ansible-core's lazily templated containers;
    deep-copying those copies what they refer to (hostvars, the plugin loaders: ansible-core's loader
    does not survive that), so they are read into plain data first."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value
