"""File resolution: `HEAD`/`GET /{id}/resolve/{rev}/{path}`, whole or by byte range.

The answer carries what huggingface_hub reads: `X-Repo-Commit`, the `ETag` (LFS sha256 or git
oid), `X-Linked-Etag`/`X-Linked-Size` for LFS files, and `Content-Range` on a 206. A `Range`
starting past the end answers 416 with `Content-Range: bytes */size`.
"""

from __future__ import annotations

import re

from hub.emulator.access import check_gate, check_revision, open_repo
from hub.emulator.messages import Answer, ApiError, FileSpan, Request

__all__ = ["RangeNotSatisfiable", "parse_range", "resolve"]


class RangeNotSatisfiable(Exception):
    """A `Range` that starts past the end of the body: the answer is 416."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range `[start, end]` (inclusive) a `Range` header asks of a body of `size` bytes.

    Supports `bytes=a-b`, `bytes=a-` and `bytes=-n`; returns None when the whole body should be
    sent (no header, a malformed one, or several ranges, which RFC 9110 lets a server ignore).

    Raises:
        RangeNotSatisfiable: the range starts past the end (the server answers 416).
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    match = re.fullmatch(r"\s*(\d*)\s*-\s*(\d*)\s*", spec)
    if unit.strip().lower() != "bytes" or match is None or match.group(0).strip() == "-":
        return None
    first, last = match.groups()
    if not first:
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(int(last), size - 1) if last else size - 1


def resolve(req: Request, repo_id: str, rev: str, path: str) -> Answer:
    """A file of a repo at a revision: headers, and for GET its bytes (or the asked range)."""
    snap = open_repo(req, repo_id)
    check_gate(req, snap, path)
    check_revision(snap, rev)
    file = snap.by_path.get(path)
    if file is None:
        raise ApiError(
            404, "EntryNotFound", f"{path} does not exist on {rev}", **{"X-Repo-Commit": snap.sha}
        )
    headers = {
        "X-Repo-Commit": snap.sha,
        "ETag": f'"{file.etag}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
    if file.sha256 is not None:
        headers["X-Linked-Etag"] = f'"{file.sha256}"'
        headers["X-Linked-Size"] = str(file.size)
    try:
        span = parse_range(req.headers.get("Range"), file.size)
    except RangeNotSatisfiable:
        raise ApiError(
            416,
            None,
            f"Range not satisfiable for {path} of {file.size} bytes",
            **{"Content-Range": f"bytes */{file.size}", "X-Repo-Commit": snap.sha},
        ) from None
    if span is None:
        return Answer(200, headers, file=FileSpan(file.abspath, 0, file.size))
    headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{file.size}"
    return Answer(206, headers, file=FileSpan(file.abspath, span[0], span[1] - span[0] + 1))
