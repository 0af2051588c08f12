"""Where each tensor of a model lies, and reading its windows: what every file source shares.

A source (a local folder, a Hub repo) finds its weight files (`hub.layout`), parses their
headers (`hub.safetensors_header`) and builds a `TensorIndex`; it then only has to read byte
ranges of its files (`read_range` on top of `locate_range`). Windows are read and decoded here
(`read_window`, through `hub.decode`), so every source satisfies
`fingerprint.protocol.TensorSource` the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hub import decode, dtypes
from hub.errors import MalformedFileError
from hub.layout import WeightGroup
from hub.records import ModelRecord, TensorInfo, TensorWindow
from hub.safetensors_header import SafetensorsHeader, TensorEntry


@dataclass(frozen=True, slots=True)
class Located:
    """A tensor's place: its file (relative to the repo root) and its header entry."""

    file: str
    entry: TensorEntry


def index_tensors(
    groups: Sequence[WeightGroup], headers: dict[str, SafetensorsHeader], model_id: str
) -> dict[str, Located]:
    """Tensor name -> where it lies, over the folders (`groups`) that hold weights.

    Names are kept as stored; a name found in two folders (two text encoders of one pipeline)
    is qualified as `folder/name`, just for those names.

    Raises:
        MalformedFileError: a tensor stored twice in one folder, or a shard index that puts a
            tensor in a file that does not hold it.
    """
    per_group: list[tuple[str, dict[str, Located]]] = []
    for group in groups:
        seen: dict[str, Located] = {}
        for rel in group.files:
            for e in headers[rel].entries:
                if e.name in seen:
                    raise MalformedFileError(
                        f"{model_id} stores the tensor {e.name!r} in both {seen[e.name].file} and "
                        f"{rel}; remove the stray file or re-save the model.",
                        model_id=model_id,
                        path=rel,
                    )
                seen[e.name] = Located(rel, e)
        for name, rel in group.weight_map.items():
            if name not in seen or seen[name].file != rel:
                raise MalformedFileError(
                    f"the index of {model_id} puts the tensor {name!r} in {rel}, which does not "
                    "hold it; re-download the shards or re-save the model.",
                    model_id=model_id,
                    path=rel,
                )
        per_group.append((group.folder, seen))
    counts: dict[str, int] = {}
    for _, seen in per_group:
        for name in seen:
            counts[name] = counts.get(name, 0) + 1
    out: dict[str, Located] = {}
    for prefix, seen in per_group:
        for name, loc in seen.items():
            out[f"{prefix}/{name}" if counts[name] > 1 else name] = loc
    return out


class TensorIndex:
    """The tensors of one model and where each lies; a `fingerprint.protocol.TensorSource`.

    Subclasses set `record` and `_tensors` and implement `read_range` on top of `locate_range`.
    """

    record: ModelRecord
    _tensors: dict[str, Located]

    @property
    def model_id(self) -> str:
        return self.record.id

    def tensor_infos(self) -> Sequence[TensorInfo]:
        """Every tensor, sorted by name."""
        return [
            TensorInfo(
                name=n,
                dtype=loc.entry.dtype,
                shape=loc.entry.shape,
                decodable=decode.decodable(loc.entry.dtype),
            )
            for n, loc in sorted(self._tensors.items())
        ]

    def entry(self, name: str) -> TensorEntry:
        """Where tensor `name` lies in its file (absolute offsets); KeyError if unknown."""
        return self._locate(name).entry

    def _locate(self, name: str) -> Located:
        try:
            return self._tensors[name]
        except KeyError:
            raise KeyError(f"{self.model_id} has no tensor named {name!r}") from None

    def locate_range(self, name: str, start: int, end: int) -> tuple[str, int, int]:
        """(file, absolute start, absolute end) of bytes [start, end) of tensor `name`.

        Raises:
            KeyError: no such tensor.
            ValueError: the range is not within the tensor.
        """
        loc = self._locate(name)
        size = loc.entry.nbytes
        if not (0 <= start <= end <= size):
            raise ValueError(
                f"range [{start}, {end}) is outside tensor {name!r} of {self.model_id} ({size} bytes)"
            )
        return loc.file, loc.entry.start + start, loc.entry.start + end

    def read_range(self, name: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of tensor `name`'s data, offsets relative to its first byte."""
        raise NotImplementedError

    def read_window(self, name: str, n: int) -> TensorWindow:
        """The first `n` elements of tensor `name` (row-major), decoded to float32.

        Safe to call from several threads when `read_range` is.

        Raises:
            KeyError: no such tensor, or no decoder for its dtype (see `hub.decode.decodable`).
            ValueError: the tensor has fewer than `n` elements.
        """
        dtype = self._locate(name).entry.dtype
        if not decode.decodable(dtype):
            raise KeyError(f"{name!r} of {self.model_id} is {dtype}, which is not decoded")
        raw = self.read_range(name, 0, n * dtypes.size(dtype))
        return TensorWindow(values=decode.decode(raw, dtype), raw=raw)
