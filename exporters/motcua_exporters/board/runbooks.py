"""The runbooks (docs/runbooks/*.md) as HTML pages of the board: the subset of Markdown they are written in -
headings, paragraphs, numbered and bulleted lists (with continuation lines), fenced code, pipe tables, **bold**,
`code` and [links](url). Everything else is shown as text, escaped: a runbook can never inject markup."""

from __future__ import annotations

import html
import re
from pathlib import Path

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")
_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text: str) -> str:
    out, last = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[last : m.start()]))
        code, bold, label, url = m.groups()
        if code is not None:
            out.append(f"<code>{html.escape(code)}</code>")
        elif bold is not None:
            out.append(f"<strong>{html.escape(bold)}</strong>")
        else:
            if url.endswith(".md") and "/" not in url:  # another runbook
                url = url[:-3]
            safe = url if re.match(r"^(https?://|[a-z0-9-]+$|#)", url) else "#"
            out.append(f'<a href="{html.escape(safe)}">{html.escape(label)}</a>')
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def render(markdown: str) -> tuple[str, str]:
    """(the title: the first heading's text, the body as HTML)."""
    lines = markdown.splitlines()
    out: list[str] = []
    title = ""
    i = 0
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            out.append(f"<pre><code>{html.escape(chr(10).join(block))}</code></pre>")
        elif m := re.match(r"^(#{1,4})\s+(.*)$", stripped):
            flush()
            level = len(m.group(1))
            title = title or m.group(2)
            out.append(f"<h{level + 1}>{_inline(m.group(2))}</h{level + 1}>")
        elif re.match(r"^(\d+\.|[-*])\s+", stripped):
            flush()
            ordered = stripped[0].isdigit()
            items: list[list[str]] = []
            while i < len(lines):
                current = lines[i]
                if m := re.match(r"^\s*(\d+\.|[-*])\s+(.*)$", current):
                    items.append([m.group(2)])
                elif current.startswith((" ", "\t")) and current.strip() and items:
                    items[-1].append(current.strip())
                else:
                    break
                i += 1
            tag = "ol" if ordered else "ul"
            out.append(
                f"<{tag}>" + "".join(f"<li>{'<br>'.join(_inline(x) for x in it)}</li>" for it in items) + f"</{tag}>"
            )
            continue
        elif stripped.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                    rows.append(cells)
                i += 1
            head, *body = rows or [[]]
            out.append(
                "<table><tr>"
                + "".join(f"<th>{_inline(c)}</th>" for c in head)
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
                + "</table>"
            )
            continue
        elif not stripped:
            flush()
        else:
            para.append(stripped)
        i += 1
    flush()
    return title, "\n".join(out)


class Runbooks:
    """The runbooks of a directory, rendered once at start (and again on reload)."""

    def __init__(self, directory: Path | None):
        self.pages: dict[str, tuple[str, str]] = {}
        if directory is None:
            return
        for path in sorted(directory.glob("*.md")):
            slug = path.stem.lower()
            if SLUG.match(slug) and slug != "readme":
                self.pages[slug] = render(path.read_text(encoding="utf-8"))

    def get(self, slug: str) -> tuple[str, str] | None:
        return self.pages.get(slug) if SLUG.match(slug) else None
