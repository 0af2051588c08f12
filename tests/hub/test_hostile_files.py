"""Hostile local files: every JSON a stranger wrote is parsed with bounds (`hub.bounded_json`),
headers are as strict as the safetensors library's validator, and what is over a bound is a
one-line `malformed` error or "no metadata", never a RecursionError, a hang or a silent reading
other tools do not share."""

from __future__ import annotations

import json
import struct
import time

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from hub import bounded_json
from hub.card import read_card, split_front_matter
from hub.errors import MalformedFileError
from hub.local import open_local_model
from hub.safetensors_header import MAX_DIMS, MAX_NAME_BYTES, read_header
from tests.factory import write_raw_safetensors


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (json.dumps({"a": [[[[[[1]]]]]]}).encode(), None),
        (b'{"a": 1, "a": 2}', "key 'a' twice"),
        (b"[NaN]", "non-finite"),
        (b"[-Infinity]", "non-finite"),
        (b"[1e400]", "out of range"),
        (b"[" + b"1" * 5000 + b"]", "not UTF-8 JSON"),  # Python refuses 5000-digit ints
        (b'["\\ud800"]', "lone UTF-16 surrogate"),
        (b'["\\ud83d\\ude00"]', None),  # a surrogate pair is fine
        (b"\xff\xfe{}", "not UTF-8 JSON"),
    ],
)
def test_bounded_json(text, problem):
    if problem is None:
        bounded_json.loads(text)
        return
    with pytest.raises(bounded_json.JsonBoundError, match=problem):
        bounded_json.loads(text)


def test_bounded_json_size_and_depth_limits():
    with pytest.raises(bounded_json.JsonBoundError, match="over the 10-byte limit"):
        bounded_json.loads(b"[1, 2, 3, 4, 5]", max_bytes=10)
    bounded_json.loads(json.dumps(bounded_json_deep(64)))
    with pytest.raises(bounded_json.JsonBoundError, match="deeper than 64"):
        bounded_json.loads(json.dumps(bounded_json_deep(65)))


def bounded_json_deep(depth: int) -> object:
    doc: object = 0
    for _ in range(depth):
        doc = [doc]
    return doc


def _f32(n: int) -> bytes:
    return np.arange(n, dtype=np.float32).tobytes()


def _header_text(path, text: bytes, data: bytes) -> None:
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def _refused(path, match: str) -> str:
    with pytest.raises(MalformedFileError) as info:
        read_header(path, model_id="org/m")
    msg = str(info.value)
    assert match in msg, msg
    assert "\n" not in msg and len(msg) < 500 and "org/m" in msg
    return msg


@pytest.mark.parametrize(
    ("tensors", "match"),
    [
        ({"w" * (MAX_NAME_BYTES + 1): ("F32", [4], _f32(4))}, "bytes long"),
        ({"w" * 70_000: ("F32", [4], _f32(4))}, "70000 bytes long"),
        ({"a.\ud800": ("F32", [4], _f32(4))}, "lone UTF-16 surrogate"),
        ({"": ("F32", [4], _f32(4))}, "is empty"),
        ({"deep": ("F32", [1] * (MAX_DIMS + 1), _f32(1))}, f"over the {MAX_DIMS} limit"),
        ({"big": ("F32", [2**64, 0], b"")}, "integers in [0, 2^64)"),
        ({"big": ("F32", [2**40, 2**40, 0], b"")}, None),  # 0 elements: fine
    ],
    ids=["long", "very-long", "surrogate", "empty", "dims", "dim-2^64", "zero-elements"],
)
def test_names_and_shapes_are_bounded(tmp_path, tensors, match):
    path = write_raw_safetensors(tmp_path / "m.safetensors", tensors)
    if match is None:
        assert read_header(path).entries[0].numel == 0
        return
    msg = _refused(path, match)
    assert len(msg) < 400  # a 70,000-character name is never quoted whole


def test_the_product_of_dimensions_is_bounded(tmp_path):
    path = write_raw_safetensors(tmp_path / "m.safetensors", {"x": ("U8", [2**32, 2**32], b"")})
    _refused(path, "2^64 elements")


def test_duplicate_keys_are_refused_not_last_one_wins(tmp_path):
    path = tmp_path / "dup.safetensors"
    good = json.dumps({"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})
    bad = json.dumps({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]})
    _header_text(path, f'{{"w": {bad}, "w": {good}}}'.encode(), _f32(2))
    _refused(path, "key 'w' twice")


@pytest.mark.parametrize(
    ("offsets", "data", "match"),
    [
        ([[0, 8], [12, 20]], _f32(5), "covered by no tensor"),  # a gap
        ([[0, 8], [8, 16]], _f32(5), "4 bytes after its last tensor"),  # trailing bytes
        ([[4, 12], [12, 20]], _f32(5), "covered by no tensor"),  # data not starting at 0
    ],
    ids=["gap", "trailing", "offset-start"],
)
def test_every_data_byte_belongs_to_one_tensor(tmp_path, offsets, data, match):
    path = tmp_path / "m.safetensors"
    header = {
        name: {"dtype": "F32", "shape": [2], "data_offsets": pair}
        for name, pair in zip(("a", "b"), offsets, strict=True)
    }
    _header_text(path, json.dumps(header).encode(), data)
    _refused(path, match)
    # the safetensors library refuses the same file (its error type is private)
    with pytest.raises(Exception), safe_open(str(path), "np") as f:  # noqa: B017
        for name in f.keys():  # noqa: SIM118
            f.get_tensor(name)


def test_non_finite_numbers_in_a_header_are_refused(tmp_path):
    path = tmp_path / "nan.safetensors"
    _header_text(path, b'{"w": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 4]}}', _f32(1))
    _refused(path, "non-finite")


def test_a_deep_header_is_refused_fast(tmp_path):
    path = tmp_path / "deep.safetensors"
    _header_text(path, b'{"w": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", b"")
    started = time.monotonic()
    _refused(path, "nested deeper")
    assert time.monotonic() - started < 2


def _folder(tmp_path):
    folder = tmp_path / "org" / "m"
    folder.mkdir(parents=True)
    save_file({"w": np.ones((64, 64), dtype=np.float32)}, str(folder / "model.safetensors"))
    return folder


@pytest.mark.parametrize(
    "config",
    [b"[" * 200_000, b'{"a": NaN}', b'{"\\ud800": 1}', b"{" + b" " * (17 * 2**20) + b"}"],
    ids=["deep", "nan", "surrogate", "over-16MiB"],
)
def test_a_broken_config_is_no_metadata(tmp_path, config):
    folder = _folder(tmp_path)
    (folder / "config.json").write_bytes(config)
    model = open_local_model(folder)
    assert model.record.library is None and model.record.parameter_count == 64 * 64


def test_a_deep_shard_index_is_malformed(tmp_path):
    folder = _folder(tmp_path)
    (folder / "model.safetensors").rename(folder / "model-00001-of-00001.safetensors")
    (folder / "model.safetensors.index.json").write_bytes(b'{"weight_map": ' + b"[" * 100_000)
    with pytest.raises(MalformedFileError) as info:
        open_local_model(folder)
    assert "\n" not in str(info.value)


def test_a_deep_adapter_config_names_no_base(tmp_path):
    folder = tmp_path / "org" / "lora"
    folder.mkdir(parents=True)
    save_file(
        {"a.lora_A.weight": np.ones((8, 64), dtype=np.float32)},
        str(folder / "adapter_model.safetensors"),
    )
    (folder / "adapter_config.json").write_bytes(b'{"base_model_name_or_path": ' + b"[" * 100_000)
    model = open_local_model(folder)
    assert model.record.extra["adapter"] is True and "adapter_base" not in model.record.extra


def test_a_huge_card_is_no_card_and_costs_little(tmp_path):
    readme = tmp_path / "README.md"
    items = "\n".join(f"- item {i}" for i in range(200_000))
    readme.write_text(f"---\nbase_model: org/base\ntags:\n{items}\n---\n# body\n")
    started = time.monotonic()
    assert read_card(readme) == {}
    assert split_front_matter(readme.read_text())[0] == {}
    assert time.monotonic() - started < 2
    readme.write_text('---\nlicense: "\\ud800"\nbase_model: org/base\n---\n')
    assert isinstance(read_card(readme), dict)  # a surrogate escape never raises


@pytest.mark.parametrize("where", ["entry", "metadata"])
def test_depth_hidden_under_a_key_the_parser_does_not_read_is_still_refused(tmp_path, where):
    # the safetensors library refuses JSON nested past its recursion limit wherever it is; a
    # well-formed header skips the depth walk only when every entry holds just its three keys
    deep = b"[" * 500 + b"1" + b"]" * 500
    entry = b'{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]'
    if where == "entry":
        text = b'{"w": ' + entry + b', "extra": ' + deep + b"}}"
    else:
        text = b'{"__metadata__": {"a": ' + deep + b'}, "w": ' + entry + b"}}"
    path = tmp_path / "deep.safetensors"
    _header_text(path, text, _f32(1))
    _refused(path, "nested deeper")
    shallow = text.replace(deep, b"[[1]]")
    _header_text(path, shallow, _f32(1))
    if where == "entry":  # a shallow key of its own is read past, as the library does
        assert [e.name for e in read_header(path).entries] == ["w"]
    else:
        _refused(path, "__metadata__")
