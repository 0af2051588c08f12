"""hub.onnx's walker and opener on files written byte by byte: valid, truncated and hostile.
Never a crash, a hang or an allocation the file asks for: a MalformedFileError naming the file.
Needs no onnx package."""

from __future__ import annotations

import contextlib
import random
import struct

import numpy as np
import pytest

from hub.errors import MalformedFileError
from hub.onnx import proto
from hub.onnx.codec import OnnxCodec, Values
from hub.onnx.opener import open_onnx
from hub.onnx.wire import BLOCK

# ---- a protobuf writer, just enough for ModelProto ------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    return varint(num << 3 | 2) + varint(len(value)) + value


def tensor(name: str, dims, data: bytes = b"", data_type: int = 1, **extra: bytes) -> bytes:
    body = b"".join(field(1, d) for d in dims) + field(2, data_type) + field(8, name.encode())
    if data:
        body += field(9, data)
    return body + b"".join(extra.values())


def node(name: str, op: str, inputs, outputs=("y",), ints=()) -> bytes:
    body = b"".join(field(1, i.encode()) for i in inputs)
    body += b"".join(field(2, o.encode()) for o in outputs)
    body += field(3, name.encode()) + field(4, op.encode())
    for key, value in ints:
        body += field(5, field(1, key.encode()) + field(3, value) + field(20, 2))
    return body


def model(nodes=(), tensors=(), extra: bytes = b"") -> bytes:
    graph = b"".join(field(1, n) for n in nodes) + b"".join(field(5, t) for t in tensors)
    return field(1, 8) + field(2, b"test") + field(7, graph) + extra


W = np.arange(12, dtype=np.float32).reshape(3, 4)  # stored [in=3, out=4] for MatMul


def good() -> bytes:
    return model(
        nodes=[node("/enc/layer.0/q/MatMul", "MatMul", ["x", "onnx::MatMul_7"])],
        tensors=[
            tensor("onnx::MatMul_7", [3, 4], W.tobytes()),
            tensor("enc.norm.weight", [4], np.ones(4, np.float32).tobytes()),
        ],
    )


class Files:
    """A repo in memory that counts what is read."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.read = 0

    def read_at(self, rel: str, start: int, end: int) -> bytes:
        assert 0 <= start <= end <= len(self.files[rel]), (start, end)
        self.read += end - start
        return self.files[rel][start:end]

    def size_of(self, rel: str) -> int | None:
        return len(self.files[rel]) if rel in self.files else None

    def open(self, rel: str = "onnx/model.onnx"):
        return open_onnx(rel, self.read_at, self.size_of, list(self.files), "org/m")


def test_a_valid_file_is_named_and_read_transposed():
    opened = Files({"onnx/model.onnx": good()}).open()
    packed = opened.found.packed
    assert set(packed) == {"enc.layer.0.q.weight", "enc.norm.weight"}
    q = packed["enc.layer.0.q.weight"]
    assert q.shape == (4, 3) and q.codec.transposed and opened.found.method == "onnx:fp32"
    data = good()
    chunks = [
        data[q.parts["data"].start + r.start : q.parts["data"].start + r.end]
        for r in q.codec.reads(2 * 3)
    ]
    assert np.array_equal(q.codec.decode(6, chunks), W.T[:2].reshape(-1))
    assert [e.name for e in opened.header.entries] == ["enc.layer.0.q.weight", "enc.norm.weight"]
    assert opened.header.file_size == len(data) and opened.header.digest


def test_tensor_data_is_stepped_over_unread():
    big = np.zeros((512, 1024), np.float32).tobytes()  # 2 MiB
    data = model(
        nodes=[node("/a/MatMul", "MatMul", ["x", "w1"]), node("/b/MatMul", "MatMul", ["x", "w2"])],
        tensors=[tensor("w1", [512, 1024], big), tensor("w2", [512, 1024], big)],
    )
    files = Files({"onnx/model.onnx": data})
    files.open()
    assert files.read <= BLOCK + 8 * 1024  # the first block, one small read after the jump


def _fails(data: bytes, *text: str) -> None:
    with pytest.raises(MalformedFileError) as info:
        Files({"onnx/model.onnx": data}).open()
    message = str(info.value)
    assert message.startswith("onnx/model.onnx of org/m ") and "re-export" in message
    assert info.value.path == "onnx/model.onnx" and info.value.model_id == "org/m"
    for t in text:
        assert t in message


def test_the_digest_covers_descriptions_not_data():
    def digest(data: bytes) -> str:
        return Files({"onnx/model.onnx": data}).open().header.digest

    other_data = good().replace(W.tobytes(), (W + 1).tobytes())
    renamed = good().replace(b"enc.norm.weight", b"enc.norm.weigh2")
    assert digest(good()) == digest(good()) == digest(other_data) != digest(renamed)


def test_every_truncation_is_refused_or_read_never_a_crash():
    data = good()
    for n in range(len(data)):
        with contextlib.suppress(MalformedFileError):
            Files({"onnx/model.onnx": data[:n]}).open()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "has no graph"),
        (field(2, b"x"), "has no graph"),
        (model() + field(7, b""), "two graphs"),
        (b"\x3a" + b"\xff" * 11, "varint longer"),
        (b"\x3a\x80\x80\x80\x80\x10", "runs past"),  # a graph longer than the file
        (b"\x00\x01", "invalid field key"),
        (b"\x3b", "invalid field key"),  # a group
        (model(tensors=[tensor("t", [2**40, 2**40])]), "2^48 elements"),
        (model(tensors=[tensor("t", [-1])]), "dimension -1"),
        (model(tensors=[tensor("t", [1] * 65)]), "more than 64 dimensions"),
        (model(tensors=[field(8, b"\xff\xfe")]), "not UTF-8"),
        (model(tensors=[field(8, b"n" * 5000)]), "over the 4096-byte limit"),
        (model(tensors=[tensor("a.weight", [4, 4], b"\0" * 12)]), "needs 64"),
        (model(nodes=[field(5, field(1, b"\xff"))]), "not UTF-8"),
    ],
)
def test_hostile_files_are_refused_with_a_reason(data, why):
    _fails(data, why)


def test_counts_and_parsed_bytes_are_capped(monkeypatch):
    monkeypatch.setattr(proto, "MAX_NODES", 3)
    _fails(model(nodes=[node(f"/n{i}", "Relu", ["x"]) for i in range(4)]), "more than 3 nodes")
    monkeypatch.setattr(proto, "MAX_FIELDS", 50)
    _fails(model(nodes=[node("/a/Relu", "Relu", ["x"] * 60)]), "more than 50 fields")
    monkeypatch.setattr(proto, "MAX_FIELDS", 10**6)
    monkeypatch.setattr(proto, "MAX_PARSED", 1000)
    _fails(model(nodes=[node(f"/n{i}/Relu", "Relu", ["x"]) for i in range(100)]), "1000 bytes")


def test_random_corruptions_never_crash():
    rng = random.Random(7)
    data = good()
    for _ in range(400):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        with contextlib.suppress(MalformedFileError):
            Files({"onnx/model.onnx": bytes(b)}).open()


def test_external_data_must_be_a_repo_file_beside_it():
    def ext(location: str, offset: str = "0", length: str = "48") -> bytes:
        entries = b"".join(
            field(13, field(1, k.encode()) + field(2, v.encode()))
            for k, v in (("location", location), ("offset", offset), ("length", length))
        )
        t = tensor("onnx::MatMul_7", [3, 4], b"", x=entries + field(14, 1))
        return model(nodes=[node("/q/MatMul", "MatMul", ["x", "onnx::MatMul_7"])], tensors=[t])

    payload = b"\0" * 16 + W.tobytes()
    files = Files({"onnx/model.onnx": ext("w.bin", "16"), "onnx/w.bin": payload})
    q = files.open().found.packed["q.weight"]
    assert q.parts["data"].file == "onnx/w.bin" and q.parts["data"].start == 16
    for location in ("../w.bin", "/etc/passwd", "a/w.bin", "..", "C:w.bin", ""):
        with pytest.raises(MalformedFileError, match="not a plain file name"):
            Files({"onnx/model.onnx": ext(location), "onnx/w.bin": payload}).open()
    with pytest.raises(MalformedFileError, match="not a readable file of the repo"):
        Files({"onnx/model.onnx": ext("other.bin")}).open()
    for offset, length in (("40", "48"), ("0", "44"), ("x", "48"), ("0", "-48")):
        with pytest.raises(MalformedFileError, match="external span"):
            Files({"onnx/model.onnx": ext("w.bin", offset, length), "onnx/w.bin": payload}).open()


def test_quantized_weights_by_name_and_by_node():
    q = np.array([[0, 255, 128, 1], [2, 3, 4, 5], [6, 7, 8, 9]], np.uint8)
    scale = np.array([0.5, 1.0, 2.0, 4.0], np.float32)  # per output channel (axis 1)
    zp = np.array([128, 0, 1, 2], np.uint8)
    packed_zp = b"".join(varint(int(v)) for v in zp)  # int32_data, as onnxruntime writes it
    data = model(
        nodes=[
            node("/l/MatMul_quant", "MatMulInteger", ["xq", "W_quantized", "xz", "W_zero_point"])
        ],
        tensors=[
            tensor("W_scale", [4], b"", x=field(4, scale.tobytes())),  # packed float_data
            tensor("W_zero_point", [4], b"", data_type=2, x=field(5, packed_zp)),
            tensor("W_quantized", [3, 4], q.tobytes(), data_type=2),
        ],
    )
    files = Files({"onnx/model_quantized.onnx": data})
    opened = files.open("onnx/model_quantized.onnx")
    assert opened.found.method == "onnx:uint8" and set(opened.found.packed) == {"l.weight"}
    p = opened.found.packed["l.weight"]
    assert p.codec.dtype == "ONNX_U8" and p.codec.axis == 1 and p.shape == (4, 3)
    chunks = [
        files.read_at(p.parts[r.part].file, p.parts[r.part].start + r.start, p.parts[r.part].start + r.end)
        for r in p.codec.reads(12)
    ]  # fmt: skip
    expected = ((q.astype(np.int32) - zp.astype(np.int32)).astype(np.float32) * scale).T
    assert np.array_equal(p.codec.decode(12, chunks), expected.reshape(-1))


def test_codec_refuses_what_it_cannot_read():
    codec = OnnxCodec("F32", "onnx:fp32", rows=4, cols=3, transposed=True)
    with pytest.raises(ValueError, match="whole rows"):
        codec.reads(4)
    with pytest.raises(ValueError, match="elements of a"):
        codec.reads(13)
    with pytest.raises(ValueError, match="bytes for"):
        codec.decode(3, [b"\0" * 4])
    quant = OnnxCodec("ONNX_I8", "onnx:int8", rows=2, cols=2, scale=Values("F32", 1, 4), axis=None)
    with pytest.raises(ValueError, match="not finite"):
        quant.decode(4, [b"\0" * 4, struct.pack("<f", float("inf"))])
    zp = OnnxCodec(
        "ONNX_I8",
        "onnx:int8",
        rows=2,
        cols=2,
        scale=Values("F32", 1, 4),
        zero_point=Values("ONNX_I8", 1, 2, varint=True),
    )
    with pytest.raises(ValueError, match="zero point outside"):
        zp.decode(4, [b"\0" * 4, struct.pack("<f", 1.0), varint(300)])
