"""A real HF cache layout built in a test's tmp_path (blobs, symlinked snapshots, refs), shared
by the cache source's tests (tests/hub/test_cache.py) and `lineage add --hf-cache`'s
(tests/lineage/cli/test_cli_hf_cache.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """A private HF_HOME (never the user's real cache); its hub cache is `hf_home / "hub"`."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return home


def add_snapshot(
    cache: Path,
    repo_id: str,
    sha: str,
    files: dict[str, bytes],
    *,
    ref: str | None = None,
    kind: str = "models",
    mtime: float | None = None,
) -> Path:
    """One snapshot as huggingface_hub lays it out: files are symlinks into blobs/ (with
    `mtime` on the blobs when given), `refs/<ref>` names the commit when given."""
    repo = cache / f"{kind}--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        if mtime is not None:
            os.utime(blob, (mtime, mtime))
        link = repo / "snapshots" / sha / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(sha)
    return repo / "snapshots" / sha
