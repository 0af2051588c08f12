"""Which id each local folder of an add may be stored under: the claims of ids.

A folder gets its id from `hub.folders.folder_id`, or keeps the id it is stored under; an id two
folders would share, or one a stored model from another place holds, is refused with one
failure, never stored over (the rules are `lineage.pipeline.add_local`'s docstring).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hub.errors import HubError
from hub.folders import find_model_dirs
from hub.records import ModelRecord
from lineage.errors import LineageError
from lineage.pipeline_records import Failure
from lineage.store import Store

_ID_HINT = "add it alone with `lineage add PATH --id ORG/NAME` to name it"
_IDS_HINT = "add each alone with `lineage add PATH --id ORG/NAME` to name it"


@dataclass(frozen=True, slots=True)
class Claim:
    """A folder that may be stored under `model_id`; `moved`: the record of its old place."""

    model_id: str
    folder: Path
    moved: ModelRecord | None = None


def moved_other(claim: Claim) -> str:
    """Why a folder may not take over a vanished folder's id: a move keeps the same weights
    (revision), and this folder holds others."""
    old = claim.moved.path if claim.moved else "?"
    return (
        f"{claim.model_id}: stored from {old}, which is gone, with other weights than "
        f"{claim.folder}, so it was not replaced; {_ID_HINT}"
    )


def found_folders(
    paths: Iterable[str | os.PathLike[str]], model_id: str | None
) -> tuple[list[tuple[str, Path]], list[Failure]]:
    """(id, resolved folder) of every model folder below `paths`, once each; and failures."""
    paths = list(paths)
    if model_id is not None and len(paths) != 1:
        raise LineageError(f"--id {model_id} names one model: pass exactly one model folder")
    found: dict[Path, str] = {}
    failed: list[Failure] = []
    for path in paths:
        try:
            dirs = find_model_dirs(path)
        except HubError as e:
            failed.append(Failure(str(path), e.status, str(e)))
            continue
        if not dirs:
            failed.append(
                Failure(str(path), "not_found", f"{path}: no model folders found below it")
            )
        if model_id is not None and [d for _, d in dirs] != [Path(path)]:
            raise LineageError(
                f"--id {model_id} names one model, and {path} is not a model folder; "
                "pass the model folder itself"
            )
        for mid, folder in dirs:
            found.setdefault(folder.resolve(), model_id or mid)
    return [(mid, folder) for folder, mid in found.items()], failed


def _stored_elsewhere(store: Store, mid: str, folder: Path) -> tuple[str | None, Claim]:
    """Where stored `mid` lives when that is another place (None: free or this folder), and
    the claim of `folder` to it (moved when the stored folder is gone)."""
    rec = store.get_model(mid)
    if rec is None:
        return None, Claim(mid, folder)
    if rec.source != "local" or not rec.path:
        return f"the {rec.source}", Claim(mid, folder)
    stored = Path(rec.path).resolve()
    if stored == folder:
        return None, Claim(mid, folder)
    if not stored.is_dir():
        return None, Claim(mid, folder, moved=rec)
    return str(stored), Claim(mid, folder)


def claim_ids(
    store: Store,
    candidates: list[tuple[str, Path]],
    model_id: str | None,
    failed: list[Failure],
) -> list[Claim]:
    """The folders that may be stored, under which id; each refused id becomes one failure."""
    # a folder already stored keeps its id, whatever the rule says today
    stored_ids = {
        Path(r.path).resolve(): r.id for r in store.models() if r.source == "local" and r.path
    }
    by_id: dict[str, list[Path]] = {}
    for mid, folder in candidates:
        known = stored_ids.get(folder)
        if known is not None and model_id is not None and known != model_id:
            failed.append(
                Failure(
                    model_id,
                    "duplicate_id",
                    f"{folder} is already stored as {known}; not added again as {model_id}",
                )
            )
            continue
        by_id.setdefault(known or mid, []).append(folder)
    accepted: list[Claim] = []
    for mid, folders in sorted(by_id.items()):
        if len(folders) > 1 and not any(stored_ids.get(f) == mid for f in folders):
            both = " and ".join(str(f) for f in folders)
            failed.append(
                Failure(
                    mid,
                    "duplicate_id",
                    f"{mid}: {both} would both get this id, so neither was added; {_IDS_HINT}",
                )
            )
            continue
        for folder in folders:  # the stored folder stays; any other one is refused
            taken, claim = _stored_elsewhere(store, mid, folder)
            if taken is None:
                accepted.append(claim)
                continue
            failed.append(
                Failure(
                    mid,
                    "duplicate_id",
                    f"{mid}: already stored from {taken}, so {folder} was not added; {_ID_HINT}",
                )
            )
    return accepted
