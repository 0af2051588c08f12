"""Where a model's tensors come from: a stored record's source opened, a signature stored,
and a reference (stored id, folder or Hub id) resolved to its signature.
"""

from __future__ import annotations

import re
from pathlib import Path

from fingerprint.signature import Signature, SignatureParams, compute_signature
from hub.errors import HubError
from hub.local import open_local_model
from hub.records import ModelRecord
from lineage.catalogue import Catalogue
from lineage.engine import OpenedModel, one_line
from lineage.errors import UnknownModelError
from lineage.store import Store


def open_source(record: ModelRecord) -> OpenedModel:
    """A tensor source for a stored model, from where the record says it lives."""
    if record.source in ("local", "cache") and record.path:
        return open_local_model(
            record.path,
            model_id=record.id,
            source=record.source,
            revision=record.revision if record.source == "cache" else None,
        )
    if record.source == "hub":
        # The default endpoint ($HF_ENDPOINT) and token: records never hold either. Reading at
        # the stored commit keeps the signature consistent with the record.
        from hub.hubsource import HubClient, open_hub_model
        from hub.window_cache import WindowCache

        return open_hub_model(
            record.id, client=HubClient(), revision=record.revision, cache=WindowCache()
        )
    raise UnknownModelError(
        record.id,
        f"{record.id}: no readable source recorded (source={record.source!r}); "
        "add it again with `lineage add PATH` or `lineage crawl`",
    )


def store_signature(store: Store, record: ModelRecord, sig: Signature) -> None:
    """Store `sig` as the signature of `record` (see `lineage.catalogue.Catalogue.put`)."""
    Catalogue(store, sig.params).put(record, sig)


# A Hub reference where a path could go: org/name, optionally @revision (a branch, tag or sha).
_HUB_REF = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}(@[\w./-]{1,128})?")


def resolve_signature(
    store: Store | None,
    ref: str,
    *,
    device: str = "auto",
    params: SignatureParams | None = None,
) -> Signature:
    """The signature of `ref`: a model id in the store, else a local model folder, else a Hub
    repo id (`org/name`, or `org/name@REVISION`) read from the configured endpoint.

    A stored model without a current signature (`lineage.catalogue`: its revision and these
    parameters) is fingerprinted and the signature stored; a folder or a Hub model that is not
    in the store is fingerprinted without storing anything (a Hub model reads only its windows,
    and reuses the HF cache's snapshot when there is one).
    """
    params = params or SignatureParams()
    record = store.get_model(ref) if store is not None else None
    if store is not None and record is not None:
        catalogue = Catalogue(store, params)
        sig = catalogue.load(record)
        if sig is None:
            sig = compute_signature(open_source(record), params=params, device=device)
            catalogue.put(record, sig)
        return sig
    if Path(ref).is_dir():
        model = open_local_model(ref, model_id=ref)
        return compute_signature(model, params=params, device=device)
    if _HUB_REF.fullmatch(ref):
        from hub.hubsource import open_hub_model

        repo_id, _, revision = ref.partition("@")
        try:
            hub_model = open_hub_model(repo_id, revision=revision or None)
        except HubError as err:
            raise UnknownModelError(
                ref,
                f"{ref!r} is neither a model in the database nor a folder, and the Hub could "
                f"not give it ({one_line(str(err), 300)}); pass a folder path or a repo id the "
                "endpoint has, or `lineage add` it first",
            ) from None
        return compute_signature(hub_model, params=params, device=device)
    raise UnknownModelError(
        ref,
        f"{ref!r} is neither a model in the database, a model folder nor a Hub id (org/name); "
        "pass a folder path or a repo id, or `lineage add` it first",
    )
