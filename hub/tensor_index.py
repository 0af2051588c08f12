"""Where each tensor of a model lies, and reading its windows: what every file source shares.

A source (a local folder, a Hub repo) finds its weight files (`hub.layout`), parses their
headers (`hub.safetensors_header`) and builds a `TensorIndex`; it then only has to read byte
ranges of its files (`read_range` on top of `locate_range`). Windows are read and decoded here
(`read_window`, through `hub.decode`), so every source satisfies
`fingerprint.protocol.TensorSource` the same way. Packed tensors (`hub.packed`: GGUF blocks,
GPTQ, bitsandbytes ...) are listed under their float names and read through their codec,
from the same `read_file`. `window_cost` and `limit_slots` keep a model's windows within the
plan's byte budget where a strided layout would pass it (docs/formats.md, "The read budget").
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from hub import decode, dtypes, formats, quant
from hub.errors import MalformedFileError
from hub.formats import ReadAt, SizeOf
from hub.layout import WeightGroup
from hub.packed import Packed, ReadCost, Recognized, cheapest_within, coalesce
from hub.records import ModelRecord, TensorInfo, TensorWindow
from hub.safetensors_header import SafetensorsHeader, TensorEntry

# Bytes of a float32 value: the plan's byte budget per window is `window` float32 values.
FLOAT_BYTES = 4


class _SlotLike(Protocol):
    """What `limit_slots` reads of a planned slot (`fingerprint.plan.Slot`; hub does not
    import fingerprint)."""

    @property
    def tensor(self) -> str: ...

    @property
    def n(self) -> int: ...


_S = TypeVar("_S", bound=_SlotLike)


class _ParamsLike(Protocol):
    """What `limit_slots` reads of the signature parameters."""

    @property
    def max_slots(self) -> int: ...

    @property
    def window(self) -> int: ...


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

    Subclasses set `record` and `_tensors` (and `_packed` for packed tensors, through
    `add_packed`) and implement `read_file`; `read_gap` is how many bytes between two ranges
    they would rather read than ask for twice.
    """

    record: ModelRecord
    _tensors: dict[str, Located]
    _packed: Mapping[str, Packed] = {}
    read_gap: int = 4096

    @property
    def model_id(self) -> str:
        return self.record.id

    def add_packed(self, found: Recognized) -> None:
        """List `found.packed` under their float names in place of the stored tensors they read."""
        self._tensors = {n: loc for n, loc in self._tensors.items() if n not in found.consumed}
        self._packed = {**self._packed, **found.packed}

    def tensor_infos(self) -> Sequence[TensorInfo]:
        """Every tensor, sorted by name: stored ones, and packed ones under their float names."""
        infos = [
            TensorInfo(
                name=n,
                dtype=loc.entry.dtype,
                shape=loc.entry.shape,
                decodable=decode.decodable(loc.entry.dtype),
            )
            for n, loc in self._tensors.items()
            if n not in self._packed
        ]
        infos += [
            TensorInfo(name=n, dtype=p.codec.dtype, shape=p.shape, decodable=True)
            for n, p in self._packed.items()
        ]
        return sorted(infos, key=lambda i: i.name)

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

    def read_file(self, file: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of a weight file (absolute offsets), exactly `end - start` of them.

        Raises:
            MalformedFileError: the file is shorter than its header says.
            HubError: the bytes could not be fetched (remote sources).
        """
        raise NotImplementedError

    def read_range(self, name: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of tensor `name`'s data, offsets relative to its first byte.

        Raises:
            KeyError: no such tensor.
            ValueError: the range is not within the tensor.
            MalformedFileError, HubError: see `read_file`.
        """
        return self.read_file(*self.locate_range(name, start, end))

    def read_window(self, name: str, n: int) -> TensorWindow:
        """The first `n` elements of tensor `name` (row-major), decoded to float32.

        Safe to call from several threads when `read_file` is.

        Raises:
            KeyError: no such tensor, or no decoder for its dtype (see `hub.decode.decodable`).
            ValueError: the tensor has fewer than `n` elements.
        """
        packed = self._packed.get(name)
        if packed is not None:
            return self._read_packed(packed, n)
        ((file, start, end),) = self.window_ranges(name, n)  # a plain tensor: one range
        return TensorWindow(raw=self.read_file(file, start, end), plain=self.entry(name).dtype)

    def _wanted(self, packed: Packed, n: int) -> list[tuple[str, int, int]]:
        """(file, absolute start, absolute end) of every range the codec asks for."""
        wanted: list[tuple[str, int, int]] = []
        for r in packed.codec.reads(n):
            part = packed.parts[r.part]
            if not 0 <= r.start <= r.end <= part.nbytes:
                raise MalformedFileError(
                    f"{packed.name!r} of {self.model_id} needs bytes [{r.start}, {r.end}) of its "
                    f"{r.part} in {part.file}, which holds {part.nbytes}; the file does not match "
                    "its header or config",
                    model_id=self.model_id,
                    path=part.file,
                )
            wanted.append((part.file, part.start + r.start, part.start + r.end))
        return wanted

    def _spans(self, wanted: Sequence[tuple[str, int, int]]) -> dict[str, list[tuple[int, int]]]:
        """The reads this source makes for `wanted`: per file, ranges merged across holes of at
        most `read_gap` bytes."""
        return {
            file: coalesce([(s, e) for f, s, e in wanted if f == file], self.read_gap)
            for file in sorted({w[0] for w in wanted})
        }

    def window_ranges(self, name: str, n: int) -> list[tuple[str, int, int]]:
        """(file, absolute start, absolute end) of every read the first `n` elements of tensor
        `name` take, holes merged as `read_window` merges them; reads nothing.

        Raises:
            KeyError: no such tensor, or no decoder for its dtype.
            ValueError: the window is not within the tensor, or not one its codec can read.
            MalformedFileError: a packed tensor's part is shorter than its codec needs.
        """
        packed = self._packed.get(name)
        if packed is None:
            dtype = self._locate(name).entry.dtype
            if not decode.decodable(dtype):
                raise KeyError(f"{name!r} of {self.model_id} is {dtype}, which is not decoded")
            return [self.locate_range(name, 0, n * dtypes.size(dtype))]
        spans = self._spans(self._wanted(packed, n))
        return [(file, s, e) for file, ranges in spans.items() for s, e in ranges]

    def window_cost(self, name: str, n: int) -> ReadCost:
        """What reading the first `n` elements of tensor `name` costs this source (bytes and
        requests of `window_ranges`), read nothing; raises as `window_ranges`."""
        ranges = self.window_ranges(name, n)
        return ReadCost(sum(e - s for _, s, e in ranges), len(ranges))

    def limit_slots(
        self, slots: Sequence[_S], params: _ParamsLike
    ) -> tuple[list[_S], list[tuple[str, str]]]:
        """The planned slots this source reads within the model's byte budget, and the others
        with the reason they are left out.

        The budget is what the plan allows a float model: `params.max_slots` windows of
        `params.window` float32 values. Rows stored contiguously never exceed it; a transposed
        layout (GPTQ, AWQ, ONNX MatMul) read from the Hub can, because its window's short
        ranges are merged into most of the matrix (`read_gap`). Then the cheapest slots are
        kept (small matrices first, spread over depth among equal costs) until the budget is
        spent. A kept slot's window is unchanged, so it meets the same slot of the float
        parent; only how many slots the two compare on shrinks.

        Args:
            slots: the plan's slots (`fingerprint.plan.Slot`: `tensor` and `n` are read).
            params: the signature parameters (`max_slots` and `window` are read).

        Returns:
            (kept slots in plan order, [(tensor, reason)] for each slot left out).
        """
        budget = params.max_slots * params.window * FLOAT_BYTES
        costs = [self.window_cost(s.tensor, s.n) for s in slots]
        if sum(c.nbytes for c in costs) <= budget:
            return list(slots), []
        kept = cheapest_within([c.nbytes for c in costs], budget)
        skipped = [
            (
                s.tensor,
                f"over the read budget: its window would read {_size(costs[i].nbytes)} in "
                f"{costs[i].requests} reads from this source (short ranges merged across "
                f"holes of {_size(self.read_gap)}), and the model's {_size(budget)} went to "
                "cheaper slots",
            )
            for i, s in enumerate(slots)
            if i not in kept
        ]
        return [s for i, s in enumerate(slots) if i in kept], skipped

    def _read_packed(self, packed: Packed, n: int) -> TensorWindow:
        """The first `n` elements of a packed tensor: the codec's ranges, read with small holes
        merged (`read_gap`), decoded. `raw` is the bytes the codec asked for, wherever they
        were read from, so a window's digest does not depend on the source."""
        wanted = self._wanted(packed, n)
        blocks: dict[str, tuple[list[int], list[bytes]]] = {}
        for file, spans in self._spans(wanted).items():
            blocks[file] = ([s for s, _ in spans], [self.read_file(file, s, e) for s, e in spans])
        chunks = []
        for file, start, end in wanted:
            starts, data = blocks[file]
            i = bisect.bisect_right(starts, start) - 1
            chunks.append(data[i][start - starts[i] : end - starts[i]])
        try:
            values = packed.codec.decode(n, chunks)
        except ValueError as err:
            raise MalformedFileError(
                f"{packed.name!r} of {self.model_id} ({packed.codec.method}) does not decode: "
                f"{err}; re-download or re-quantize the model",
                model_id=self.model_id,
                path=next(iter(packed.parts.values())).file,
            ) from err
        return TensorWindow(raw=b"".join(chunks), decoded=np.asarray(values, dtype=np.float32))


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} KB"


@dataclass(frozen=True, slots=True)
class Weights:
    """A model's weight files as read by its source, before its record is made.

    Attributes:
        headers: each weight file's header (safetensors, or the one a `hub.formats` opener
            made), by path relative to the repo root.
        tensors: stored tensor name -> where it lies.
        found: the packed float tensors of each file format or quantization found.
        variants: other files holding the same model (`WeightGroup.variants`).
    """

    headers: dict[str, SafetensorsHeader]
    tensors: dict[str, Located]
    found: tuple[Recognized, ...]
    variants: tuple[str, ...]

    @property
    def method(self) -> str:
        """The quantization or format the model is read through (`gguf:Q4_K`), "" for plain
        float safetensors."""
        return ",".join(dict.fromkeys(f.method for f in self.found if f.method))

    def extra(self) -> dict[str, object]:
        """What the record keeps of it: `quantization` and `variants`, when there are any."""
        out: dict[str, object] = {}
        if self.method:
            out["quantization"] = self.method
        if self.variants:
            out["variants"] = list(self.variants)
        return out

    def apply(self, index: TensorIndex) -> None:
        """List the packed tensors on the model's index."""
        for f in self.found:
            index.add_packed(f)


def read_weights(
    groups: Sequence[WeightGroup],
    safetensors_header: Callable[[str], SafetensorsHeader],
    read_at: ReadAt,
    size_of: SizeOf,
    names: Collection[str],
    read_config: Callable[[], Mapping],
    model_id: str,
) -> Weights:
    """Headers, tensor index and packed tensors of a model's weight groups: what a local folder
    and a Hub repo do alike once they can read bytes.

    Args:
        groups: the weight groups (`hub.layout.weight_groups`).
        safetensors_header: parses one safetensors file's header.
        read_at: reads bytes of a repo file (format openers parse from it).
        size_of: a repo file's size.
        names: every file of the repo.
        read_config: config.json as a dict ({} when absent); called only when stored names
            look quantized.
        model_id: for messages.

    Raises:
        MalformedFileError: a file that does not parse (see `index_tensors` and the openers).
    """
    headers: dict[str, SafetensorsHeader] = {}
    found: list[Recognized] = []
    for g in groups:
        open_file = formats.opener(g.layout)
        for rel in g.files:
            if open_file is None:
                headers[rel] = safetensors_header(rel)
            else:
                opened = open_file(rel, read_at, size_of, names, model_id)
                headers[rel] = opened.header
                found.append(opened.found)
    tensors = index_tensors(groups, headers, model_id)
    if quant.looks_packed(list(tensors)):
        found.append(quant.recognize(tensors, read_config(), model_id))
    variants = tuple(v for g in groups for v in g.variants)
    return Weights(headers, tensors, tuple(found), variants)
