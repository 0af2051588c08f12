"""The record of a local model folder: its card, config and a content id as revision."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path

from hub import bounded_json
from hub.card import declared_bases, read_card
from hub.records import ModelRecord, storable
from hub.safetensors_header import SafetensorsHeader

# samples of the data section hashed into a local revision: catches weights changed in place
REVISION_SAMPLES = 64
REVISION_SAMPLE_BYTES = 1024
# config.json and friends: a larger file is no config (read as "no metadata").
CONFIG_MAX_BYTES = 16 * 2**20


def content_id(root: Path, headers: dict[str, SafetensorsHeader]) -> str:
    """sha1 over each weight file's name, size, header and 64 KiB sampled across its data.

    Deterministic (two copies of a model get the same id) and cheap (64 small reads per
    file), and it changes when weights are rewritten in place with the same shapes, which a
    header-only id would miss.
    """
    h = hashlib.sha1()
    for rel in sorted(headers):
        hd = headers[rel]
        h.update(f"{rel}\0{hd.file_size}\0{hd.digest}\n".encode())
        size = hd.file_size or 0
        start = hd.data_start
        span = max(0, size - start - REVISION_SAMPLE_BYTES)
        fd = os.open(root / rel, os.O_RDONLY)  # one pread a sample: no buffered read-ahead
        try:
            for i in range(REVISION_SAMPLES):
                at = start + span * i // max(1, REVISION_SAMPLES - 1)
                h.update(os.pread(fd, REVISION_SAMPLE_BYTES, at))
        finally:
            os.close(fd)
    return h.hexdigest()


def content_id_bytes(headers: dict[str, SafetensorsHeader]) -> int:
    """Bytes `content_id` reads from the weight files."""
    return sum(
        min(REVISION_SAMPLES * REVISION_SAMPLE_BYTES, (h.file_size or 0) - h.data_start)
        for h in headers.values()
    )


def read_json(path: Path) -> dict:
    """A JSON object from a file; {} when it is missing or broken (metadata never blocks)."""
    try:
        with open(path, "rb") as f:
            data = f.read(CONFIG_MAX_BYTES + 1)  # never more than the bound, whatever the size
        doc = bounded_json.loads(data, max_bytes=CONFIG_MAX_BYTES)
    except (OSError, bounded_json.JsonBoundError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, date):  # YAML turns bare dates into date/datetime
        return value.isoformat()
    return None


def _library(card: dict, root: Path, config: dict, adapter: bool) -> str | None:
    if _text(card.get("library_name")):
        return _text(card.get("library_name"))
    if adapter or (root / "adapter_config.json").is_file():
        return "peft"
    if "_diffusers_version" in config or (root / "model_index.json").is_file():
        return "diffusers"
    if "transformers_version" in config or "architectures" in config:
        return "transformers"
    return None


def build_record(
    root: Path,
    model_id: str,
    headers: dict[str, SafetensorsHeader],
    *,
    adapter: bool,
    adapter_base: str | None,
    source: str,
    revision: str | None,
    extra: dict | None = None,
) -> ModelRecord:
    """What a folder says about its model: card (README.md front matter), config.json, headers.

    `record.path` is the folder's resolved absolute path.

    Args:
        root: the model folder.
        model_id: the id to give it.
        headers: the parsed headers of its weight files, by path relative to `root`.
        adapter: the weights are an adapter's (`extra["adapter"]`).
        adapter_base: the adapter's declared base repo (`extra["adapter_base"]`), if any.
        source: `record.source`.
        revision: the revision when known; None computes `content_id`.
        extra: more facts for `record.extra` (the quantization, variants: `hub.tensor_index`).
    """
    card = read_card(root / "README.md")
    raw_tags = card.get("tags")
    tags = (
        [raw_tags] if isinstance(raw_tags, str) else raw_tags if isinstance(raw_tags, list) else []
    )
    tags = [t.strip() for t in tags if isinstance(t, str) and t.strip()]
    config = read_json(root / "config.json")
    extra = {**(extra or {}), "adapter": adapter}
    if adapter_base:
        extra["adapter_base"] = adapter_base
    record = ModelRecord(
        id=model_id,
        revision=revision or content_id(root, headers),
        author=model_id.split("/", 1)[0] if "/" in model_id else None,
        created_at=_text(card.get("created_at") or card.get("createdAt")),
        last_modified=_text(card.get("last_modified") or card.get("lastModified")),
        library=_library(card, root, config, adapter),
        pipeline_tag=_text(card.get("pipeline_tag")),
        license=_text(card.get("license")),
        tags=tuple(tags),
        declared_bases=declared_bases(card, tags),
        parameter_count=sum(h.parameter_count for h in headers.values()),
        source=source,
        # absolute and resolved: the store reads it again from any working directory
        path=str(root.resolve()),
        extra=extra,
    )
    return storable(record)
