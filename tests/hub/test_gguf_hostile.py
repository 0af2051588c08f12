"""Hostile and broken GGUF files: every one a MalformedFileError naming the file, never a crash,
a hang or a large allocation (hub.gguf.header, hub.gguf.opener)."""

from __future__ import annotations

import contextlib
import random
import struct
from pathlib import Path

import pytest

from hub.errors import MalformedFileError
from hub.gguf import cursor as gc
from hub.gguf import header as gh
from hub.gguf.opener import open_gguf
from hub.local import open_local_model
from lineage.lab import zoo_nets as zn
from lineage.lab.formats_gguf import write_gguf
from lineage.lab.zoo_weights import _config

TINY = zn.Arch("llama", hidden=64, layers=1, vocab=128, intermediate=128, heads=2)


def _s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str, vtype: int, value: bytes) -> bytes:
    return _s(key) + struct.pack("<I", vtype) + value


def _tensor(name: str, ne: tuple[int, ...], type_id: int = 0, offset: int = 0) -> bytes:
    dims = b"".join(struct.pack("<Q", d) for d in ne)
    return _s(name) + struct.pack("<I", len(ne)) + dims + struct.pack("<IQ", type_id, offset)


def _file(kvs=(), tensors=(), *, version=3, n_tensors=None, n_kv=None, data=4096) -> bytes:
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)  # fmt: skip
    body = head + b"".join(kvs) + b"".join(tensors)
    return body + bytes(-len(body) % 32) + bytes(data)


def _open(data: bytes, name: str = "m.gguf"):
    return open_gguf(name, lambda _r, s, e: data[s:e], lambda _r: len(data), [name], "org/m")


ARCH = _kv("general.architecture", 8, _s("llama"))
GOOD_TENSOR = _tensor("token_embd.weight", (64, 4))


def test_a_minimal_hand_made_file_opens():
    opened = _open(_file([ARCH], [GOOD_TENSOR]))
    (entry,) = opened.header.entries
    assert entry.name == "model.embed_tokens.weight" and entry.shape == (4, 64)
    assert opened.header.data_start == 96 or opened.header.data_start % 32 == 0


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"GGML" + bytes(100), "magic"),
        (_file([ARCH], version=1), "version 1"),
        (_file([ARCH], version=3 << 24), "big-endian"),
        (_file([ARCH], version=9), "version is 9"),
        (_file([ARCH], n_tensors=2**40), "tensors, over the limit"),
        (_file([ARCH], n_kv=2**40), "metadata keys, over the limit"),
        (_file([struct.pack("<Q", 2**40)]), "metadata key is"),
        (_file([b"\x03\x00\x00\x00\x00\x00\x00\x00k\xff\xfe"]), "not UTF-8"),
        (_file([_kv("k", 8, struct.pack("<Q", 2**40))]), "metadata string"),
        (_file([_kv("k", 9, struct.pack("<IQ", 0, 2**40))]), "metadata array holds"),
        (_file([_kv("k", 9, struct.pack("<IQ", 9, 1) * 6)]), "nests arrays deeper"),
        (_file([_kv("k", 99, b"")]), "unknown type 99"),
        (_file([_kv("k", 9, struct.pack("<IQ", 77, 1))]), "unknown element type 77"),
        (_file([ARCH, ARCH]), "repeats the metadata key"),
        (_file([_kv("general.alignment", 4, struct.pack("<I", 3))]), "not a power of two"),
        (_file([_kv("general.alignment", 4, struct.pack("<I", 0))]), "not a power of two"),
        (_file([ARCH], [GOOD_TENSOR, GOOD_TENSOR]), "stores the tensor"),
        (_file([ARCH], [_tensor("x\n", (4,))]), "not printable"),
        (_file([ARCH], [_tensor("", (4,))]), "empty"),
        (_file([ARCH], [_tensor("t", ())]), "0 dimensions"),
        (_file([ARCH], [_tensor("t", (1, 1, 1, 1, 1))]), "5 dimensions"),
        (_file([ARCH], [_tensor("t", (2**40, 2**40))]), "elements"),
        (_file([ARCH], [_tensor("t", (4,), offset=7)]), "not a multiple of 32"),
        (_file([ARCH], [_tensor("token_embd.weight", (64, 4), offset=2**20)]), "past the end"),
        (_file([ARCH], [_tensor("token_embd.weight", (33, 4), type_id=8)]), "whole Q8_0 blocks"),
        (_file([ARCH], [_tensor("t", (4,))], data=0)[:-8], "past its end"),
        (_file([ARCH], [_tensor("t", (4,))], data=0)[:-40], "ends .* inside its header"),
    ],
)
def test_hostile_headers_are_malformed(data, says):
    with pytest.raises(MalformedFileError, match=says) as info:
        _open(data)
    assert "m.gguf" in str(info.value) and info.value.model_id == "org/m"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("gguf")
    params = zn.init_params(TINY, zn.generator(0))
    return write_gguf(params, _config(TINY, "float32"), folder, qtype="Q8_0").read_bytes()


def test_every_truncation_of_the_header_is_malformed(written):
    end = gh.parse_header("f", lambda _r, s, e: written[s:e], len(written)).info_end
    for cut in [*range(0, 64), *range(64, end, 97)]:
        with pytest.raises(MalformedFileError):
            _open(written[:cut])


def test_a_file_cut_inside_its_data_is_malformed(written):
    with pytest.raises(MalformedFileError, match="past the end of the file"):
        _open(written[:-100])


def test_a_header_over_the_byte_cap_is_refused(written, monkeypatch):
    monkeypatch.setattr(gc, "MAX_HEADER_BYTES", 1000)
    with pytest.raises(MalformedFileError, match="runs past 1000 bytes"):
        _open(written)


def test_reads_grow_geometrically_and_stay_within_the_header(written):
    calls: list[tuple[int, int]] = []

    def read_at(_rel: str, start: int, end: int) -> bytes:
        calls.append((start, end))
        return written[start:end]

    h = gh.parse_header("f", read_at, len(written))
    assert calls[0] == (0, min(gc.FIRST_READ, len(written)))
    assert all(s == e0 for (_, e0), (s, _) in zip(calls, calls[1:], strict=False))
    assert len(calls) <= 1 + max(0, (h.info_end // gc.FIRST_READ).bit_length())


def test_random_corruption_never_escapes_as_another_error(written):
    """Byte flips anywhere in the header: the file opens or is malformed, nothing else."""
    end = gh.parse_header("f", lambda _r, s, e: written[s:e], len(written)).info_end
    rng = random.Random(7)
    for _ in range(300):
        data = bytearray(written)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(end)] = rng.randrange(256)
        with contextlib.suppress(MalformedFileError):
            _open(bytes(data))


def test_a_hostile_file_in_a_folder_names_the_file(tmp_path: Path):
    (tmp_path / "model-Q4_K_M.gguf").write_bytes(_file([ARCH], n_tensors=2**40))
    with pytest.raises(MalformedFileError, match="model-Q4_K_M.gguf"):
        open_local_model(tmp_path, model_id="org/m")
