"""Two adapters (or two fine-tunes of one base) compared by what they learnt: the library entry.

`compare_adapters` reads both adapters' LoRA factors (`hub.adapters`) and scores the Grassmann
similarity of their updates' top singular subspaces (`fingerprint.subspace`): 1 when they write
and read the same directions, about k / d (the `baseline`) for unrelated updates.
`compare_finetunes` does the same for two full fine-tunes of one base, on the first rows of
their block matrices (child - base). Models are given opened, or as the references
`lineage compare` takes (a model id in the store, a folder, a Hub id `org/name[@rev]`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fingerprint.plan import normalize_name
from fingerprint.subspace import SubspaceResult, compare_deltas, compare_factors
from hub.adapters import MAX_FACTOR_BYTES, AdapterFactors, read_factors
from hub.errors import HubError
from hub.local import open_local_model
from hub.tensor_index import TensorIndex
from lineage.errors import LineageError, UnknownModelError
from lineage.store import Store

# The same Hub reference `lineage.pipeline.resolve_signature` accepts.
_HUB_REF = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}(@[\w./-]{1,128})?")
# A fine-tune's window: the first rows of a block matrix that fit in this many elements, as a
# signature's slot (fingerprint.plan).
WINDOW = 2**18
# A layer in `layers.3.` / `h.3.` / `layer.3.`: only block matrices carry a fine-tune's update
# in directions a few singular vectors can hold (embeddings move only on the rows seen).
_IN_BLOCK = re.compile(r"(?:^|\.)\d+\.")

Model = TensorIndex | str


def open_ref(store: Store | None, ref: str) -> TensorIndex:
    """An opened model for a reference as `lineage compare` takes it.

    Raises:
        UnknownModelError: neither a stored model, a folder, nor a Hub id the endpoint has.
    """
    record = store.get_model(ref) if store is not None else None
    if record is not None:
        from lineage.pipeline import open_source

        opened = open_source(record)
        if isinstance(opened, TensorIndex):
            return opened
    if Path(ref).is_dir():
        return open_local_model(ref, model_id=ref)
    if _HUB_REF.fullmatch(ref):
        from hub.hubsource import open_hub_model

        repo_id, _, revision = ref.partition("@")
        try:
            return open_hub_model(repo_id, revision=revision or None)
        except HubError as err:
            raise UnknownModelError(
                ref, f"{ref!r}: not a folder, and the Hub could not give it ({err})"
            ) from None
    raise UnknownModelError(
        ref, f"{ref!r} is neither a model in the database, a folder nor a Hub id (org/name)"
    )


def _opened(store: Store | None, model: Model) -> TensorIndex:
    return open_ref(store, model) if isinstance(model, str) else model


def adapter_factors(
    model: Model, *, store: Store | None = None, max_bytes: int = MAX_FACTOR_BYTES
) -> AdapterFactors:
    """The LoRA factors of one adapter (see `hub.adapters.read_factors`).

    Raises:
        LineageError: the model holds no LoRA factors.
    """
    got = read_factors(_opened(store, model), max_bytes=max_bytes)
    if not got.factors:
        why = "; ".join(got.notes) or "no LoRA factors"
        raise LineageError(f"{got.model_id} is not a readable LoRA adapter ({why})")
    return got


def compare_adapters(
    a: Model,
    b: Model,
    *,
    store: Store | None = None,
    k: int | None = None,
    max_bytes: int = MAX_FACTOR_BYTES,
) -> SubspaceResult:
    """Grassmann similarity of two LoRA adapters' updates, module by module.

    Args:
        a, b: opened models, or references (store id, folder, Hub id).
        store: where ids are looked up (optional).
        k: directions per module (default the smaller rank of the two).
        max_bytes: factor bytes read per adapter at most.

    Raises:
        LineageError: either model holds no LoRA factors, or they share no module.
    """
    fa = adapter_factors(a, store=store, max_bytes=max_bytes)
    fb = adapter_factors(b, store=store, max_bytes=max_bytes)
    result = compare_factors(fa.factors, fb.factors, k=k)
    if not result.modules:
        raise LineageError(
            f"{fa.model_id} and {fb.model_id} adapt no module in common "
            f"({result.only_a} and {result.only_b} modules, {len(result.skipped)} not comparable)"
        )
    return result


def fits_base(
    adapter: AdapterFactors, base: Model, *, store: Store | None = None
) -> tuple[int, int]:
    """How many of the adapter's modules have a weight of their update's shape in `base`.

    (matched, modules): every module matched is what an adapter trained on that base (or on a
    model of its architecture) shows; it is a shape check, a necessary condition only.
    """
    model = _opened(store, base)
    shapes = {normalize_name(i.name): tuple(i.shape) for i in model.tensor_infos()}
    matched = 0
    for module, (a, b) in adapter.factors.items():
        shape = shapes.get(normalize_name(module) + ".weight")
        # torch Linear stores (out, in); GPT-2's Conv1D (in, out)
        matched += shape in ((b.shape[0], a.shape[1]), (a.shape[1], b.shape[0]))
    return matched, len(adapter.factors)


def _window(model: TensorIndex, name: str, shape: tuple[int, ...]) -> np.ndarray:
    rows, cols = shape[0], int(np.prod(shape[1:]))
    take = max(1, min(rows, WINDOW // cols))
    return model.read_window(name, take * cols).values.reshape(take, cols).astype(np.float64)


def compare_finetunes(
    base: Model,
    a: Model,
    b: Model,
    *,
    store: Store | None = None,
    k: int = 8,
    max_tensors: int = 32,
) -> SubspaceResult:
    """Two full fine-tunes of one base, compared by the top-k subspaces of their updates.

    Each update is child - base on the first rows of a block matrix (a signature's window);
    up to `max_tensors` matrices that all three hold with one shape, evenly spread by name.
    Reads 3 x max_tensors windows (about 3 MB each in fp32).

    Raises:
        LineageError: no block matrix is shared by the three with one shape.
    """
    mb, ma, mc = (_opened(store, m) for m in (base, a, b))
    shapes = [{normalize_name(i.name): (i.name, i.shape) for i in m.tensor_infos() if i.decodable}
              for m in (mb, ma, mc)]  # fmt: skip
    common = sorted(
        n
        for n, (_, shape) in shapes[0].items()
        if len(shape) >= 2
        and _IN_BLOCK.search(n)
        and all(n in s and s[n][1] == shape for s in shapes[1:])
    )
    if not common:
        raise LineageError(
            f"{mb.model_id}, {ma.model_id} and {mc.model_id} share no block matrix of one shape"
        )
    picked: Sequence[str] = common
    if len(common) > max_tensors:
        picked = [
            common[round(i * (len(common) - 1) / (max_tensors - 1))] for i in range(max_tensors)
        ]
    da: dict[str, np.ndarray] = {}
    db: dict[str, np.ndarray] = {}
    for n in dict.fromkeys(picked):
        name0, shape = shapes[0][n]
        w0 = _window(mb, name0, shape)
        da[n] = _window(ma, shapes[1][n][0], shape) - w0
        db[n] = _window(mc, shapes[2][n][0], shape) - w0
    return compare_deltas(da, db, k=k)
