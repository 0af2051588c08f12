"""Write one benchmark's section into docs/benchmarks.md between its own markers."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, name: str, title: str, text: str) -> None:
    """Replace the block `<!-- NAME:begin -->...<!-- NAME:end -->` of `path` (append if absent)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n## {title}\n\n{text}\n{end}"
    if begin in doc:
        head, rest = doc.split(begin, 1)
        doc = head + block + rest.split(end, 1)[1]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc)
