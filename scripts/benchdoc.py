"""What every benchmark script does with its results: Markdown tables, printed and written into
docs/benchmarks.md between the script's own markers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown pipe table as lines: the header, the rule, one line per row of cells."""

    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows)]


def replace_block(path: Path, name: str, text: str, *, new_doc: str = "") -> None:
    """Replace the block `<!-- NAME:begin -->...<!-- NAME:end -->` of `path` with `text`
    (appended when absent; a missing file starts as `new_doc`)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    doc = path.read_text() if path.exists() else new_doc
    block = f"{begin}\n{text}\n{end}"
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        doc = head + block + rest.split(end, 1)[1]
    else:
        doc = doc.rstrip() + ("\n\n" if doc.strip() else "") + block + "\n"
    path.write_text(doc)


def write_section(path: Path, name: str, title: str, text: str) -> None:
    """`replace_block` with a `## title` heading, in docs/benchmarks.md style."""
    replace_block(path, name, f"## {title}\n\n{text}", new_doc="# Benchmarks\n")


def publish(out: Path | None, name: str, title: str, lines: Sequence[str]) -> int:
    """Print the lines and, when `out` is given, write them as section `name` of that file.

    Returns:
        0, the script's exit code.
    """
    text = "\n".join(lines)
    print(text)
    if out:
        write_section(out, name, title, text)
    return 0
