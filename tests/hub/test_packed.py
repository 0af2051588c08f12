"""The packed-tensor seam: a codec's byte ranges read through a source and decoded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from safetensors.numpy import save_file

from hub.errors import MalformedFileError
from hub.local import open_local_model
from hub.packed import Packed, Part, Read, Recognized, coalesce


@dataclass(frozen=True)
class Transposed:
    """A float32 weight W [out, in] stored as W^T [in, out]: rows of W are strided."""

    rows: int  # out
    cols: int  # in
    dtype: str = "T_F32"
    method: str = "test:transposed"

    def reads(self, n: int) -> list[Read]:
        if n % self.cols:
            raise ValueError("whole rows only")
        r = n // self.cols
        return [Read("w", 4 * i * self.rows, 4 * (i * self.rows + r)) for i in range(self.cols)]

    def decode(self, n: int, chunks) -> np.ndarray:
        r = n // self.cols
        if any(len(c) != 4 * r for c in chunks):
            raise ValueError("short chunk")
        cols = [np.frombuffer(c, dtype="<f4") for c in chunks]  # column i of W: W[:r, i]
        return np.stack(cols, axis=1).reshape(-1)


class Broken(Transposed):
    def decode(self, n: int, chunks) -> np.ndarray:
        raise ValueError("a scale of 0")


def _model(tmp_path, gap=None):
    w = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)  # W [out, in]
    save_file({"lin.wt": np.ascontiguousarray(w.T)}, str(tmp_path / "model.safetensors"))
    model = open_local_model(tmp_path, model_id="org/packed")
    entry = model.entry("lin.wt")
    part = Part("model.safetensors", entry.start, entry.end)
    packed = Packed("lin.weight", (64, 32), {"w": part}, Transposed(64, 32))
    model.add_packed(Recognized({"lin.weight": packed}, frozenset({"lin.wt"}), "test:transposed"))
    if gap is not None:
        model.read_gap = gap
    return model, w


@pytest.mark.parametrize("gap", [0, 4096])
def test_a_strided_window_reads_the_rows_of_the_float_tensor(tmp_path, gap):
    model, w = _model(tmp_path, gap)
    infos = {i.name: i for i in model.tensor_infos()}
    assert "lin.wt" not in infos  # consumed: listed under its float name only
    assert infos["lin.weight"].shape == (64, 32) and infos["lin.weight"].decodable
    before = model.bytes_read
    window = model.read_window("lin.weight", 4 * 32)
    np.testing.assert_array_equal(window.values, w[:4].reshape(-1))
    assert len(window.raw) == 4 * 4 * 32  # the bytes asked for, whatever was read around them
    read = model.bytes_read - before
    # gap 0: only the asked bytes; a larger gap merges the strided reads into one span
    assert read == (4 * 4 * 32 if gap == 0 else 4 * (31 * 64 + 4))


def test_a_window_outside_its_part_or_undecodable_is_the_models_failure(tmp_path):
    model, _ = _model(tmp_path)
    with pytest.raises(MalformedFileError, match="org/packed"):
        model.read_window("lin.weight", 65 * 32)  # more rows than the part holds
    bad = Packed(
        "lin.weight",
        (64, 32),
        model._packed["lin.weight"].parts,
        Broken(64, 32),  # bytes the format cannot hold
    )
    model.add_packed(Recognized({"lin.weight": bad}, frozenset(), "x"))
    with pytest.raises(MalformedFileError, match="does not decode: a scale of 0"):
        model.read_window("lin.weight", 64)


def test_coalesce_merges_small_holes_only():
    assert coalesce([(100, 104), (0, 4), (8, 12)], gap=4) == [(0, 12), (100, 104)]
    assert coalesce([(0, 4), (8, 12)], gap=3) == [(0, 4), (8, 12)]
    assert coalesce([(0, 10), (2, 4)], gap=0) == [(0, 10)]
