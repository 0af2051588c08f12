"""Models on a Hugging Face Hub (or any Hub-compatible endpoint), opened for fingerprinting.

What is read, and what it costs:

- **Listing** (`hub.listing.iter_models`): `HfApi.list_models` with `expand=` only the fields a
  `ModelRecord` needs (`EXPAND`), paged by the API's cursor links.
- **Opening a model** (`open_hub_model`): one `paths-info` call for its weight files (sizes and
  content hashes), then the first `HEADER_PREFIX` bytes of each safetensors file by an HTTP
  Range request (a second request only when a header is longer; a file of at most
  `WHOLE_FILE` bytes is read whole), validated by `hub.safetensors_header`. A sharded
  checkpoint also costs its small index JSON.
- **Windows** (`HubModel.read_window`): one Range request per slot window, at the pinned commit,
  through `hub.remote` (HF cache snapshot, window cache, then the network). Strided windows
  (GPTQ, AWQ, ONNX MatMul) merge holes up to 256 KiB; where that would take a model past the
  plan's byte budget, `limit_slots` keeps the cheapest slots (docs/formats.md, "The read
  budget"), so such a model's Hub signature can hold fewer slots than its local one.

Which weights a repo holds is `hub.layout`'s decision, the same as for a local folder, and
tensor names are qualified the same way (`hub.tensor_index`), so a Hub signature is
bit-identical to the signature of the same files in a local folder. Pickle checkpoints are never
downloaded.

Errors are `hub.errors` classes, each with its status code: gated (401/403, `GatedRepo`) ->
`gated`; missing repo -> `not_found`; only `.bin`/`.pt` -> `no_safetensors`; a header that does
not parse -> `malformed`; retries exhausted -> `network`.

The client, listing and record helpers live in `hub.client`, `hub.listing` and
`hub.hub_record`; their public names stay importable from here.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from hub import bounded_json, layout
from hub.client import EXPAND, SORTS, HubClient, is_commit, is_repo_id
from hub.errors import HubError, MalformedFileError
from hub.hub_record import record_from_info, sibling_names
from hub.listing import children_filter, iter_models, parse_since
from hub.records import ModelRecord
from hub.remote import MODEL_DEADLINE_S, ReadStats, RemoteFile, RemoteReader, hf_snapshot
from hub.safetensors_header import SafetensorsHeader, header_length, parse_header
from hub.tensor_index import Located, TensorIndex, read_weights
from hub.window_cache import WindowCache, is_content_hash

__all__ = [
    "EXPAND",
    "HEADER_PREFIX",
    "WHOLE_FILE",
    "SORTS",
    "HubClient",
    "HubModel",
    "ReadStats",
    "children_filter",
    "iter_models",
    "open_hub_model",
    "parse_since",
    "record_from_info",
]

# First bytes read of every safetensors file: the 8-byte length and, nearly always, the whole
# JSON header (a 70B shard's header is a few tens of KB). Longer headers cost one more request.
HEADER_PREFIX = 64 * 1024
# Files up to this size are read whole by that first request: one request instead of one per
# window, and no byte fetched twice. The bytes are held in memory while the model is open.
WHOLE_FILE = 1024 * 1024
SMALL_FILE_MAX = layout.SMALL_FILE_MAX


class HubModel(TensorIndex):
    """A model on the Hub at one commit; satisfies `fingerprint.protocol.TensorSource`.

    Attributes:
        record: the model's record (parameter count from its headers, `extra["adapter"]`).
        revision: the commit every byte is read at.
        headers: parsed safetensors headers by file path.
        files: weight files read, repo-relative.
        stats: bytes read so far by where they came from (network, window cache, HF cache).
        bytes_fetched: `stats.fetched`, the network bytes (headers, index files, windows).
    """

    def __init__(
        self,
        record: ModelRecord,
        headers: dict[str, SafetensorsHeader],
        tensors: dict[str, Located],
        reader: RemoteReader,
    ):
        self.record = record
        self.headers = headers
        self.files: tuple[str, ...] = tuple(headers)
        self._tensors = tensors
        self._reader = reader
        # a request costs about what a quarter megabyte does: merge strided ranges closer than that
        self.read_gap = 256 * 1024

    @property
    def revision(self) -> str:
        return self._reader.revision

    @property
    def stats(self) -> ReadStats:
        return self._reader.stats

    @property
    def bytes_fetched(self) -> int:
        return self._reader.stats.fetched

    def read_small(self, path: str) -> bytes:
        """A whole small file of the repo (adapter_config.json ...) that the open listed.

        Raises:
            MalformedFileError: not listed, or too large for what it should be.
            HubError: it could not be fetched.
        """
        return _small_file(self._reader, path)

    def read_file(self, file: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of weight file `file` of the repo (absolute offsets).

        Raises:
            HubError: the bytes could not be read (gated, network, ...).
        """
        return self._reader.read(file, start, end)

    def __repr__(self) -> str:
        return f"HubModel({self.model_id!r}, revision={self.revision!r}, files={len(self.files)})"


def _small_file(reader: RemoteReader, path: str) -> bytes:
    """A whole small file (shard index, adapter config) of the repo."""
    f = reader.files.get(path)
    if f is None:
        raise MalformedFileError(
            f"{path} of {reader.repo_id} is listed but has no file info; the repo is "
            "incomplete, check it on the Hub",
            model_id=reader.repo_id,
            path=path,
        )
    if f.size > SMALL_FILE_MAX:
        raise MalformedFileError(
            f"{path} of {reader.repo_id} is {f.size} bytes, too large for what it should be",
            model_id=reader.repo_id,
            path=path,
        )
    return reader.read(path, 0, f.size)


def _check_ids(repo_id: object, sha: object) -> None:
    """The server's repo id and commit sha, checked before either reaches a path or a URL."""
    if not is_repo_id(repo_id) or not is_commit(sha):
        shown = repr(repo_id)[:100]
        raise MalformedFileError(
            f"the Hub answered the repo id {shown} with the commit {repr(sha)[:60]}, not a "
            "repo id and a 40-hex commit sha; check the endpoint",
            model_id=repo_id if isinstance(repo_id, str) else None,
        )


def _remote_file(repo_id: str, path: str, f: Any) -> RemoteFile:
    """A file of the paths-info answer, its size and content hash checked (they key the cache)."""
    lfs = getattr(f, "lfs", None)
    key = (getattr(lfs, "sha256", None) if lfs is not None else None) or getattr(f, "blob_id", None)
    size = getattr(f, "size", None)
    if not is_content_hash(key) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise MalformedFileError(
            f"the Hub describes {path} of {repo_id} with the size {repr(size)[:30]} and the "
            f"content id {repr(key)[:80]}, not a size and a hash; check the repo on the Hub",
            model_id=repo_id,
            path=path,
        )
    return RemoteFile(path, size, key)


def _header(reader: RemoteReader, path: str, whole_file: int) -> SafetensorsHeader:
    """The parsed header of one weight file: its first bytes in one request (kept for later
    reads), a second request only for a longer header."""
    if path not in reader.files:
        _small_file(reader, path)  # raises: listed, but paths-info does not know it
    f = reader.files[path]
    where = f"{reader.repo_id}/{path}"
    first = f.size if f.size <= whole_file else HEADER_PREFIX
    prefix = reader.read(path, 0, first)
    reader.hold(path, prefix)
    n = header_length(prefix[:8], file_size=f.size, where=where, model_id=reader.repo_id)
    if 8 + n <= len(prefix):
        header_json = prefix[8 : 8 + n]
    else:
        header_json = prefix[8:] + reader.read(path, len(prefix), 8 + n)
    return parse_header(
        prefix[:8], header_json, file_size=f.size, where=where, model_id=reader.repo_id
    )


def open_hub_model(
    model: Any,
    *,
    client: HubClient | None = None,
    revision: str | None = None,
    cache: WindowCache | None = None,
    hf_cache: str | os.PathLike[str] | None | bool = True,
    stats: ReadStats | None = None,
    whole_file: int = WHOLE_FILE,
    deadline_s: float = MODEL_DEADLINE_S,
) -> HubModel:
    """Open a Hub model for fingerprinting: its file list, index and safetensors headers.

    Args:
        model: a repo id, or a `ModelInfo` from a listing with `EXPAND` fields (saves a call).
        client: the endpoint, token and retries (default `HubClient()`).
        revision: the commit to read when `model` is an id (default the current one).
        cache: the window cache; None reads every range from the network.
        hf_cache: the HF hub cache folder to read snapshots from; True finds it as
            huggingface_hub does (HF_HUB_CACHE, HF_HOME); False or None never looks.
        stats: counters to add this model's bytes to (also counts a model that fails to open).
        whole_file: weight files up to this many bytes are read whole by the header request
            (0: read every file window by window).
        deadline_s: network time the model may take in all, windows included
            (`hub.remote.MODEL_DEADLINE_S`); past it, reads fail with `NetworkError`.

    Raises:
        GatedModelError, ModelNotFoundError, NoSafetensorsError, MalformedFileError,
        NetworkError: see the module docstring.
    """
    client = client or HubClient()
    info = client.model_info(model, revision) if isinstance(model, str) else model
    names = sibling_names(info)
    if info.sha is None or names is None:  # a listing without sha/siblings: ask for them
        info = client.model_info(info.id, revision)
        names = sibling_names(info) or []
    repo_id, sha = info.id, info.sha
    _check_ids(repo_id, sha)
    record = record_from_info(info)
    if hf_cache is True:
        from hub.cache import default_cache_dir

        hf_cache = default_cache_dir()
    snapshot = hf_snapshot(repo_id, sha, Path(hf_cache) if hf_cache else None)
    reader = RemoteReader(client, repo_id, sha, cache, snapshot, stats, deadline_s)
    voice = layout.HUB_VOICE
    if not layout.has_weights(names):  # before any file request: pickles are never fetched
        raise layout.no_safetensors(names, model_id=repo_id, voice=voice)
    wanted = layout.candidates(names)  # names that stay inside the repo (`layout.safe_path`)
    for path, f in client.paths_info(repo_id, wanted, sha).items():
        if path in wanted:  # the server may answer more than was asked: never followed
            reader.files[path] = _remote_file(repo_id, path, f)

    def read_small(path: str) -> bytes:
        return _small_file(reader, path)

    groups = layout.weight_groups(names, read_small, model_id=repo_id, voice=voice)

    def read_config() -> dict:
        if layout.CONFIG_NAME not in reader.files:
            return {}
        try:
            doc = bounded_json.loads(read_small(layout.CONFIG_NAME), max_bytes=SMALL_FILE_MAX)
        except (HubError, bounded_json.JsonBoundError):
            return {}  # metadata never blocks: the model is read as stored
        return doc if isinstance(doc, dict) else {}

    def size_of(path: str) -> int | None:
        f = reader.files.get(path)
        return f.size if f is not None else None

    weights = read_weights(
        groups,
        lambda rel: _header(reader, rel, whole_file),
        reader.read,
        size_of,
        names,
        read_config,
        repo_id,
    )
    headers, tensors = weights.headers, weights.tensors
    adapter = any(g.adapter for g in groups)
    extra = {**record.extra, **weights.extra(), "adapter": adapter}
    base = layout.adapter_base(reader.files, read_small) if adapter else None
    if base:
        extra["adapter_base"] = base
    record = replace(
        record,
        parameter_count=sum(h.parameter_count for h in headers.values()),
        extra=extra,
    )
    model = HubModel(record, headers, tensors, reader)
    weights.apply(model)
    return model
