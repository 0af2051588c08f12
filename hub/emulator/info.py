"""One repo's metadata: model info, its file tree and paths-info.

GET  /api/models/{id}[/revision/{rev}]        model info (expand, blobs)
GET  /api/models/{id}/tree/{rev}[/{path}]     recursive, expand; paged like /api/models
POST /api/models/{id}/paths-info/{rev}        form or JSON: paths (repeated), expand
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from hub.emulator.access import check_revision, open_repo
from hub.emulator.messages import Answer, ApiError, Request, json_answer
from hub.emulator.query import expand_fields, flag, offset, page_answer
from hub.emulator.records import INFO_DEFAULT_FIELDS, model_record, tree_children, tree_entry

__all__ = ["model_info", "paths_info", "tree"]


def model_info(req: Request, repo_id: str, rev: str) -> Answer:
    """The model record: the fields `expand` names, or model_info's defaults."""
    check_revision(open_repo(req, repo_id), rev)
    fields = expand_fields(req.query) or list(INFO_DEFAULT_FIELDS)
    blobs = flag(dict(req.query).get("blobs"))
    return json_answer(model_record(req.hub.store, repo_id, fields, blobs=blobs))


def tree(req: Request, repo_id: str, rev: str, folder: str) -> Answer:
    """One page of the entries under `folder` (all levels with `recursive`)."""
    snap = open_repo(req, repo_id)
    check_revision(snap, rev)
    folder = folder.strip("/")
    if folder and folder not in snap.dirs:
        raise ApiError(404, "EntryNotFound", f"{folder} does not exist on {rev}")
    q = dict(req.query)
    paths = tree_children(snap, folder, recursive=flag(q.get("recursive")))
    start = offset(q.get("cursor"))
    size = req.hub.page_size
    expand = flag(q.get("expand"))
    page = [tree_entry(snap, p, expand=expand) for p in paths[start : start + size]]
    return page_answer(req, page, start + size, len(paths))


def paths_info(req: Request, repo_id: str, rev: str) -> Answer:
    """The entries of the paths named in the body (JSON or form); absent ones are left out."""
    snap = open_repo(req, repo_id)
    check_revision(snap, rev)
    if (req.headers.get("Content-Type") or "").startswith("application/json"):
        data = json.loads(req.body or b"{}")
        paths, expand = data.get("paths", []), bool(data.get("expand"))
        paths = [paths] if isinstance(paths, str) else paths
    else:
        form = parse_qsl(req.body.decode(), keep_blank_values=True)
        paths = [v for k, v in form if k in ("paths", "paths[]")]
        expand = flag(dict(form).get("expand"))
    entries = [tree_entry(snap, p.strip("/"), expand=expand) for p in paths]
    return json_answer([e for e in entries if e is not None])
