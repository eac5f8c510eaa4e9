"""motcua-pull-source: what the counters pull, served read-only over HTTPS with basic auth (docs/pull.md).

    python3 motcua-exporters.pyz pull-source --config.file /etc/motcua/pull-source.yml \\
        --web.listen-address 10.79.0.10:9443 --web.config.file /etc/motcua/web.yml

The config names one directory (``root: /var/lib/motcua-pull-source``) that holds the DX Centre's
signed repository (``repo.git``, a bare repository that ``motcua pull publish`` pushes to) and the
pinned Ansible's wheelhouse (``wheels/``). Its files are served as they are: git's "dumb" HTTP
protocol (``info/refs``, objects and packs) needs nothing more, so the server runs no git and
takes no write. The TLS certificate and the users come from the locked plane's web config (the
same file as the host's exporters), read again when it changes.

``/metrics`` says which commit each ring's branch names and since when
(``motcua_pull_source_ring_commit_info``, ``motcua_pull_source_ring_changed_timestamp_seconds``):
the alert on counters that stay on an old commit compares with it.
"""

from __future__ import annotations

import mimetypes
import re
import sys
import threading
from collections import Counter
from pathlib import Path

from ..core.config import load_yaml
from ..core.exposition import CONTENT_TYPE, Family, render_family
from ..core.runner import arguments, run, self_metrics
from ..core.web import Request, Response

NAME = "motcua-pull-source"
# What may be asked for: a path of plain names (no "..", no hidden file), under one of these.
_SERVED = ("repo.git/", "wheels/")
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
MAX_FILE = 256 << 20  # a file larger than this is refused (the wheelhouse is ~9 MB, a pack a few MB)

FAMILIES = {
    "ring": Family("motcua_pull_source_ring_commit_info", "gauge", "The commit a ring's branch names (ring/<name>)."),
    "changed": Family(
        "motcua_pull_source_ring_changed_timestamp_seconds", "gauge", "When the ring's branch last moved (Unix time)."
    ),
    "requests": Family("motcua_pull_source_requests_total", "counter", "Requests for files, by answer."),
    "bytes": Family("motcua_pull_source_sent_bytes_total", "counter", "Bytes of files sent."),
}


class PullSource:
    def __init__(self, root: Path):
        self.root = root
        self._lock = threading.Lock()
        self._answers: Counter[str] = Counter()
        self._sent = 0

    @classmethod
    def from_file(cls, path: Path) -> PullSource:
        config = load_yaml(path)
        root = config.path("root", must_exist=True)
        config.done()
        return cls(Path(root))

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def reload(self, path: Path) -> None:
        self.root = PullSource.from_file(path).root

    def routes(self):
        return {"/metrics": self.metrics, **{f"/{prefix}": self.file for prefix in _SERVED}}

    def _count(self, answer: str, sent: int = 0) -> None:
        with self._lock:
            self._answers[answer] += 1
            self._sent += sent

    def file(self, request: Request) -> Response:
        """A file under the root, by a path of plain names only; never a directory or a link out."""
        parts = request.path.lstrip("/").split("/")
        if not all(_PART.match(p) for p in parts):
            self._count("404")
            return Response(404, "Not found\n")
        path = self.root.joinpath(*parts)
        try:
            resolved = path.resolve(strict=True)
            inside = resolved.is_relative_to(self.root.resolve())
            if not inside or not resolved.is_file() or resolved.stat().st_size > MAX_FILE:
                raise FileNotFoundError(path)
            data = resolved.read_bytes()
        except OSError:
            self._count("404")
            return Response(404, "Not found\n")
        self._count("200", len(data))
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # Objects and packs never change under their name; refs and info/refs do.
        fixed = "/objects/" in request.path and "/objects/info/" not in request.path
        cache = "public, max-age=86400, immutable" if fixed else "no-cache"
        return Response(200, data, kind, {"Cache-Control": cache})

    def rings(self) -> dict[str, tuple[str, float]]:
        """{ring: (commit, when its branch last moved)} from the repository's refs (loose or packed)."""
        repo = self.root / "repo.git"
        found: dict[str, tuple[str, float]] = {}
        try:
            packed = (repo / "packed-refs").read_text(encoding="utf-8")
            packed_at = (repo / "packed-refs").stat().st_mtime
        except OSError:
            packed, packed_at = "", 0.0
        for line in packed.splitlines():
            commit, _, ref = line.partition(" ")
            if ref.startswith("refs/heads/ring/") and _COMMIT.match(commit):
                found[ref.removeprefix("refs/heads/ring/")] = (commit, packed_at)
        for ref in sorted((repo / "refs" / "heads" / "ring").glob("*")):
            try:
                commit = ref.read_text(encoding="utf-8").strip()
                when = ref.stat().st_mtime
            except OSError:
                continue
            if _COMMIT.match(commit):
                found[ref.name] = (commit, when)
        return found

    def metrics(self, _request: Request) -> Response:
        rings = self.rings()
        with self._lock:
            answers, sent = dict(self._answers), self._sent
        text = (
            render_family(FAMILIES["ring"], [({"ring": r, "commit": c}, 1.0) for r, (c, _) in sorted(rings.items())])
            + render_family(FAMILIES["changed"], [({"ring": r}, round(w, 3)) for r, (_, w) in sorted(rings.items())])
            + render_family(FAMILIES["requests"], [({"code": code}, float(n)) for code, n in sorted(answers.items())])
            + render_family(FAMILIES["bytes"], [({}, float(sent))])
        )
        return Response(200, self_metrics() + text, CONTENT_TYPE)


def main(argv: list[str] | None = None) -> int:
    parser = arguments(NAME, __doc__.splitlines()[0], "127.0.0.1:9443", "/etc/motcua/pull-source.yml")
    return run(NAME, parser.parse_args(argv), PullSource.from_file)


if __name__ == "__main__":
    sys.exit(main())
