"""Which repos and revisions a request may see: private and disabled repos, gating, revisions.

As on the Hub: a private repo is hidden (404 RepoNotFound) without a valid token; a disabled one
answers 403; gating (manifest `gated` not false) guards file downloads only, README.md excepted.
The only revisions are `main` (also `refs/heads/main`) and the repo's current sha.
"""

from __future__ import annotations

from hub.emulator.messages import ApiError, Request
from hub.emulator.repos import RepoSnapshot

__all__ = ["MAIN_REFS", "check_gate", "check_revision", "open_repo"]

MAIN_REFS = ("main", "refs/heads/main")


def open_repo(req: Request, repo_id: str) -> RepoSnapshot:
    """The repo as it is now, if the request may see it.

    Raises:
        ApiError: 404 RepoNotFound (unknown, or private without a valid token), 403 disabled.
    """
    store = req.hub.store
    meta = store.meta(repo_id)
    if meta is None or (meta.get("private") and not req.authorized):
        raise ApiError(404, "RepoNotFound", "Repository not found")
    if meta.get("disabled"):
        raise ApiError(403, None, "Access to this resource is disabled.")
    snap = store.snapshot(repo_id)
    assert snap is not None  # meta was found just above
    return snap


def check_revision(snap: RepoSnapshot, rev: str) -> None:
    """Raise 404 RevisionNotFound unless `rev` names the repo's current state."""
    if rev not in (*MAIN_REFS, snap.sha):
        raise ApiError(404, "RevisionNotFound", f"Invalid rev id: {rev}")


def check_gate(req: Request, snap: RepoSnapshot, path: str) -> None:
    """Raise GatedRepo (401 without a token, 403 with a wrong one) for a gated file download."""
    gated = snap.meta.get("gated") not in (None, False, "false")
    if not gated or path == "README.md" or req.authorized:
        return
    if req.bearer:
        message = f"Access to model {snap.id} is restricted and you are not in the authorized list."
        raise ApiError(403, "GatedRepo", message)
    raise ApiError(
        401,
        "GatedRepo",
        f"Access to model {snap.id} is restricted. You must have access to it and be"
        " authenticated to access it. Please log in.",
    )
