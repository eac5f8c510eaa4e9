"""The lab's "ward line cut" fault: every packet to a site's lab block is dropped.

The lab's hosts share this machine's loopback: each site has its own block
(127.79.<net>.0/24, the registry's lab mapping) holding its routers, switches
and counter PCs. Cutting a site drops, in this machine's own nftables table
``inet motcua_lab_faults`` (output hook), everything sent to that block: SSH
to the gear and the counters, blackbox's probes and the scrapes time out, as
when a ward's line is cut — not refused, which would still be an answer.

The table holds only the lab's cut sites and is removed when none is left
(and by ``motcua lab down``); nothing outside 127.0.0.0/8 is ever named.
"""

from __future__ import annotations

import json
import subprocess
from ipaddress import IPv4Network
from pathlib import Path

TABLE = "motcua_lab_faults"
LOOPBACK = IPv4Network("127.0.0.0/8")


class LineCutError(RuntimeError):
    pass


def _state(home: Path) -> Path:
    return home / "faults" / "line-cut.json"


def cut_sites(home: Path) -> dict[str, str]:
    """Site code -> its lab block, for the sites cut now."""
    path = _state(home)
    return json.loads(path.read_text()) if path.exists() else {}


def _apply(blocks: list[str]) -> None:
    for block in blocks:
        if not IPv4Network(block).subnet_of(LOOPBACK):
            raise LineCutError(f"refusing to cut {block}: not a lab (loopback) block")
    rules = [f"table inet {TABLE}", f"delete table inet {TABLE}"]  # created empty first: delete never fails
    if blocks:
        rules += [
            f"table inet {TABLE} {{",
            "  chain output {",
            "    type filter hook output priority 0; policy accept;",
            f"    ip daddr {{ {', '.join(sorted(blocks))} }} drop",
            "  }",
            "}",
        ]
    result = subprocess.run(["nft", "-f", "-"], input="\n".join(rules) + "\n", capture_output=True, text=True,
                            check=False)  # fmt: skip
    if result.returncode != 0:
        raise LineCutError(f"nft refused the lab's line-cut table: {result.stderr.strip()}")


def set_cut(home: Path, site: str, block: IPv4Network | None) -> dict[str, str]:
    """Cut a site's line (``block``) or mend it (``None``); returns the sites cut afterwards."""
    cut = cut_sites(home)
    if block is None:
        cut.pop(site, None)
    else:
        cut[site] = str(block)
    _apply(list(cut.values()))
    path = _state(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cut, indent=1) + "\n")
    return cut


def mend_all(home: Path) -> list[str]:
    """Every cut mended (``motcua lab down``): the sites that were cut."""
    cut = cut_sites(home)
    if cut or _table_exists():
        _apply([])
    _state(home).unlink(missing_ok=True)
    return sorted(cut)


def _table_exists() -> bool:
    result = subprocess.run(["nft", "list", "table", "inet", TABLE], capture_output=True, text=True, check=False)
    return result.returncode == 0
