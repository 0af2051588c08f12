"""Models in local folders laid out like a Hub repo (config.json, *.safetensors, README.md).

Which files hold the weights is decided by `hub.layout` (the same rules as for a Hub repo);
this module lists the folder, reads headers and byte ranges from disk. Tensor names are kept as
stored (see `hub.tensor_index` for names that clash across subfolders). Pickle checkpoints are
never opened. Data is read with seek + read of the asked range only; files are never loaded
whole.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from hub import layout
from hub.errors import MalformedFileError, ModelNotFoundError
from hub.folders import find_model_dirs, folder_id
from hub.layout import ADAPTER_NAME, PICKLE_SUFFIXES
from hub.local_record import build_record, content_id_bytes, read_json
from hub.records import ModelRecord
from hub.safetensors_header import SafetensorsHeader, read_header
from hub.tensor_index import Located, TensorIndex, read_weights

# find_model_dirs, ADAPTER_NAME and PICKLE_SUFFIXES moved (hub.folders, hub.layout); they stay
# importable from here.
__all__ = [
    "ADAPTER_NAME",
    "PICKLE_SUFFIXES",
    "LocalModel",
    "find_model_dirs",
    "open_local_model",
]


def list_files(root: Path) -> list[str]:
    """Every file below `root` (symlinks followed to files, not into folders), relative POSIX
    paths; hidden folders (`.git`, `.cache`) are not entered."""
    out: list[str] = []
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            for e in entries:
                if e.is_file():
                    out.append(prefix + e.name)
                elif e.is_dir(follow_symlinks=False) and not e.name.startswith("."):
                    stack.append((Path(e.path), f"{prefix}{e.name}/"))
    return sorted(out)


class LocalModel(TensorIndex):
    """A model in a local folder; satisfies `fingerprint.protocol.TensorSource`.

    Attributes:
        path: the model folder.
        record: what the folder says about the model (card, config, headers).
        revision: `record.revision`: the commit for cached Hub snapshots, else a content id
            from the weight files' headers and sizes.
        files: the weight files read, relative to `path`, POSIX separators.
        bytes_read: bytes read from disk so far, headers included.
        reads: window reads made so far (`read_file` calls; headers not counted).
    """

    def __init__(
        self,
        path: Path,
        record: ModelRecord,
        headers: dict[str, SafetensorsHeader],
        tensors: dict[str, Located],
    ):
        self.path = path
        self.record = record
        self.headers = headers
        self.files: tuple[str, ...] = tuple(headers)
        self._tensors = tensors
        self._lock = threading.Lock()
        # each weight file's path, joined once (`_where`: a window's read is otherwise a pathlib
        # join and a str() each time, a tenth of a window's Python, measured)
        self._paths = {f: os.fsencode(path / f) for f in headers}
        self.bytes_read = sum(8 + h.header_len for h in headers.values())
        self.reads = 0

    @property
    def revision(self) -> str:
        return self.record.revision or ""

    def prefetch(self, windows: Sequence[tuple[str, int]]) -> None:
        """Ask the kernel to start reading these (tensor, n) windows (POSIX_FADV_WILLNEED), so
        a cold disk reads ahead while the first windows are signed on the calling thread
        (`fingerprint.signature.compute_signature`); where the platform has no fadvise, or a
        window cannot be located, nothing happens here and `read_window` says what is wrong."""
        advise = getattr(os, "posix_fadvise", None)
        if advise is None:
            return
        by_file: dict[str, list[tuple[int, int]]] = {}
        for name, n in windows:
            try:
                ranges = self.window_ranges(name, n)
            except (KeyError, ValueError, MalformedFileError):
                continue
            for file, start, end in ranges:
                by_file.setdefault(file, []).append((start, end))
        for file, spans in by_file.items():
            try:
                fd = os.open(self._where(file), os.O_RDONLY)
            except OSError:
                continue
            try:
                for start, end in spans:
                    advise(fd, start, end - start, os.POSIX_FADV_WILLNEED)
            except OSError:
                pass  # advice only: the reads themselves report a real problem
            finally:
                os.close(fd)

    def read_file(self, file: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of weight file `file` (absolute offsets, relative path).

        Raises:
            MalformedFileError: the file is shorter than its header says (changed on disk).
        """
        # one pread on a bare descriptor: no buffered file object, no seek (a file kept open
        # across windows saved no more than this, measured, and would outlive the model)
        fd = os.open(self._where(file), os.O_RDONLY)
        try:
            data = os.pread(fd, end - start, start)
            while 0 < len(data) < end - start:  # Linux reads at most ~2 GiB a call
                more = os.pread(fd, end - start - len(data), start + len(data))
                if not more:
                    break
                data += more
        finally:
            os.close(fd)
        with self._lock:
            self.bytes_read += len(data)
            self.reads += 1
        if len(data) != end - start:
            raise MalformedFileError(
                f"{file} of {self.model_id} ends before byte {end} that its header points at; "
                "re-download the file or re-export it.",
                model_id=self.model_id,
                path=str(self.path / file),
            )
        return data

    def _where(self, file: str) -> bytes | Path:
        """The path of weight file `file` (relative to the folder)."""
        where = self._paths.get(file)
        return self.path / file if where is None else where

    def __repr__(self) -> str:
        return f"LocalModel({self.model_id!r}, path={str(self.path)!r}, files={len(self.files)})"


def open_local_model(
    path: str | os.PathLike[str],
    *,
    model_id: str | None = None,
    source: str = "local",
    revision: str | None = None,
) -> LocalModel:
    """Open a model folder, reading only its safetensors headers, card and config.

    Args:
        path: the model folder.
        model_id: id to give the model; default `hub.folders.folder_id` (`org/name` from the
            path unless the card names it).
        source: `record.source` ("local"; the cache source passes "cache").
        revision: `record.revision` when known (a cached snapshot's commit); default a content id.

    Raises:
        ModelNotFoundError: no such folder.
        NoSafetensorsError: no safetensors, GGUF or ONNX weights (pickle-only folders included).
        MalformedFileError: a weight file or shard index that does not parse, a missing shard,
            or a tensor stored twice.
    """
    root = Path(path)
    mid = model_id or folder_id(root)
    if not root.is_dir():
        raise ModelNotFoundError(
            f"{mid}: no model folder at {root}; check the path.", model_id=mid, path=str(root)
        )
    names = list_files(root)

    def read_small(rel: str) -> bytes:
        with open(root / rel, "rb") as f:  # a bigger file is refused by its parser, unread
            return f.read(layout.SMALL_FILE_MAX + 1)

    groups = layout.weight_groups(
        names, read_small, model_id=mid, voice=layout.LOCAL_VOICE, root=str(root)
    )

    def read_at(rel: str, start: int, end: int) -> bytes:
        with open(root / rel, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        if len(data) != end - start:
            raise MalformedFileError(
                f"{rel} of {mid} ends before byte {end}; re-download or re-export the file.",
                model_id=mid,
                path=str(root / rel),
            )
        return data

    weights = read_weights(
        groups,
        lambda rel: read_header(root / rel, model_id=mid),
        read_at,
        lambda rel: (root / rel).stat().st_size,
        names,
        lambda: read_json(root / layout.CONFIG_NAME),
        mid,
    )
    headers, tensors = weights.headers, weights.tensors
    adapter = any(g.adapter for g in groups)
    record = build_record(
        root,
        mid,
        headers,
        adapter=adapter,
        adapter_base=layout.adapter_base(names, read_small) if adapter else None,
        source=source,
        revision=revision,
        extra=weights.extra(),
    )
    model = LocalModel(root, record, headers, tensors)
    weights.apply(model)
    if revision is None:  # the content id sampled the data: count those reads too
        model.bytes_read += content_id_bytes(headers)
    return model
