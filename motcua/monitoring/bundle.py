"""The exporters as one zip file that Debian's python3 runs (zipapp), for counter PCs.

Counter PCs get the exporters' pure-Python code as a single file and their
dependencies from Debian (python3-prometheus-client, -yaml, -cryptography,
-bcrypt): no pip, no PyPI access needed on a counter. The archive is
byte-for-byte reproducible (sorted entries, fixed timestamps, no bytecode), so
copying it is idempotent: a playbook run changes it only when the code did.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from ..durable import write_atomic

PACKAGE = Path(__file__).resolve().parents[2] / "exporters" / "motcua_exporters"
MAIN = b"import sys\nfrom motcua_exporters.__main__ import main\nsys.exit(main())\n"
EPOCH = (1980, 1, 1, 0, 0, 0)


def bundle_bytes(package: Path = PACKAGE) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = [("__main__.py", MAIN)]
        # The code, and the duty board's page templates (read with importlib.resources, which reads a zip).
        for path in sorted([*package.rglob("*.py"), *package.rglob("templates/*.html")]):
            entries.append((f"motcua_exporters/{path.relative_to(package).as_posix()}", path.read_bytes()))
        for name, data in entries:
            info = zipfile.ZipInfo(name, EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return b"#!/usr/bin/python3\n" + buffer.getvalue()


def write_bundle(output: Path) -> bool:
    """Write the bundle if its content differs; True if the file changed."""
    data = bundle_bytes()
    if output.exists() and output.read_bytes() == data:
        return False
    write_atomic(output, data)
    return True
