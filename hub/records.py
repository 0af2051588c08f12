"""Records that describe a model as its source knows it (metadata, declared lineage)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hub import decode

# Relations a card may declare in `base_model_relation` or in `base_model:<relation>:<id>` tags.
RELATIONS = ("finetune", "adapter", "quantized", "merge")


@dataclass(frozen=True, slots=True)
class DeclaredBase:
    """One `base_model` entry of a model card.

    Attributes:
        id: repo id of the declared parent.
        relation: `finetune`, `adapter`, `quantized`, `merge`, or None when the card does not say.
    """

    id: str
    relation: str | None = None


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """What a source knows about one model, before any weights are read.

    `status` is "ok" for a readable model, else a short reason code (`gated`, `not_found`,
    `no_safetensors`, `malformed`, `network`, ...) with a human sentence in `reason`.
    """

    id: str
    revision: str | None = None
    author: str | None = None
    downloads: int = 0
    downloads_all_time: int | None = None
    likes: int = 0
    created_at: str | None = None
    last_modified: str | None = None
    library: str | None = None
    pipeline_tag: str | None = None
    license: str | None = None
    gated: bool = False
    tags: tuple[str, ...] = ()
    declared_bases: tuple[DeclaredBase, ...] = ()
    parameter_count: int | None = None
    source: str = "local"
    path: str | None = None
    status: str = "ok"
    reason: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def _utf8(text: str) -> str:
    # a lone surrogate (from a JSON or YAML escape) cannot be stored as UTF-8: it becomes "?"
    return text.encode("utf-8", "replace").decode("utf-8")


def storable(record: ModelRecord) -> ModelRecord:
    """`record` with every text field UTF-8 clean (lone surrogates replaced by `?`), so that what
    a card or a server wrote can always be stored."""
    texts: dict[str, Any] = {
        name: _utf8(value)
        for name in (
            "id",
            "revision",
            "author",
            "created_at",
            "last_modified",
            "library",
            "pipeline_tag",
            "license",
            "path",
            "reason",
        )  # fmt: skip
        if isinstance(value := getattr(record, name), str)
    }
    return replace(
        record,
        **texts,
        tags=tuple(_utf8(t) for t in record.tags),
        declared_bases=tuple(
            DeclaredBase(_utf8(b.id), b.relation and _utf8(b.relation))
            for b in record.declared_bases
        ),
    )


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One stored tensor of a model, as its source lists it.

    Attributes:
        name: the tensor's name (qualified `subfolder/name` where two components clash).
        dtype: safetensors dtype code (`F32`, `BF16`, `I8` ...; see `hub.dtypes`).
        shape: dimensions, outermost first.
        decodable: whether `hub.decode` can decode its elements to float values.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    decodable: bool


@dataclass(frozen=True, eq=False)
class TensorWindow:
    """The first elements of a tensor (row-major): the bytes read and their float32 values.

    Attributes:
        raw: the stored bytes (hashed into the slot's digest, counted as bytes read).
        decoded: the float32 values, for a window a codec decoded (packed formats); None when
            `plain` says how to decode `raw`.
        plain: the dtype code of `raw` when it holds the elements themselves (`F32`, `BF16`,
            ...): `values` is then decoded from it on first use, and a reader that can use
            the stored bits (`fingerprint.signature`) never pays for the decode.
    """

    raw: bytes
    decoded: np.ndarray | None = None
    plain: str | None = None

    @property
    def values(self) -> np.ndarray:
        """float32 values, one per element (decoded on first use, then kept).

        Not `functools.cached_property`: before Python 3.12 it holds one lock for every
        instance while it computes, so windows decoded on several threads would wait for each
        other. Two threads racing here decode twice, which is harmless.
        """
        if self.decoded is not None:
            return self.decoded
        kept = self.__dict__.get("_values")
        if kept is None:
            if self.plain is None:
                raise ValueError("a window needs its decoded values or a plain dtype")
            kept = decode.decode(self.raw, self.plain)
            self.__dict__["_values"] = kept  # frozen: the cache bypasses __setattr__
        return kept
