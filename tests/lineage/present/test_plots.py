"""Tests of lineage/plots*.py: every figure renders as a real PNG and SVG; the tree layout's rules."""

from __future__ import annotations

import itertools
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lineage.present.figures import FIGURES as DRAWABLE
from lineage.present.figures import draw_figure
from lineage.present.plots import (
    plot_downloads_vs_overlap,
    plot_family_tree,
    plot_heatmap,
    plot_layer_profile,
    plot_lineage_map,
    write_all_figures,
)
from lineage.present.plots_common import output_base, short_id, short_tensor
from lineage.present.plots_tree import layered_layout
from lineage.present.report_frame import pairs_frame
from tests.lineage.present.helpers import synthetic_models, synthetic_pairs, synthetic_tree

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def assert_figure(paths: list[Path], *, min_width: int = 600, min_bytes: int = 5_000) -> None:
    """Both files exist; the PNG is valid and big enough; the SVG is well-formed XML."""
    by_suffix = {p.suffix: p for p in paths}
    assert set(by_suffix) == {".png", ".svg"}
    width, height = png_size(by_suffix[".png"])
    assert width >= min_width and height >= 300
    assert by_suffix[".png"].stat().st_size > min_bytes
    root = ET.parse(by_suffix[".svg"]).getroot()
    assert root.tag.endswith("svg")


@pytest.fixture(scope="module")
def tree() -> dict:
    return synthetic_tree()


@pytest.fixture(scope="module")
def df(tree):
    return pairs_frame(synthetic_pairs(), synthetic_models(), tree)


# ---- layout ----------------------------------------------------------------------------------


def test_layout_generations_follow_parents_and_merges_sit_below_both(tree):
    pos = layered_layout(tree["nodes"])
    for node in tree["nodes"]:
        for p in node["parents"]:
            assert pos[p][1] < pos[node["id"]][1]
    # merge of llama-chat (gen 1) and llama-code (gen 1) -> gen 2
    assert pos["org3/llama-merge"][1] == 2
    assert pos["org2/llama-chat-int8"][1] == 2
    # models of one generation never share a position
    for gen in {d for _, d in pos.values()}:
        xs = sorted(x for x, d in pos.values() if d == gen)
        assert all(b - a >= 1 for a, b in itertools.pairwise(xs))


def test_layout_centres_parents_and_survives_cycles_and_missing_parents():
    nodes = [
        {"id": "r", "parent": None},
        {"id": "a", "parent": "r", "created_at": "2023-01-01"},
        {"id": "b", "parent": "r", "created_at": "2023-02-01"},
        {"id": "orphan", "parent": "not-in-tree"},
        {"id": "c1", "parents": ["c2"]},
        {"id": "c2", "parents": ["c1"]},
    ]
    pos = layered_layout(nodes)
    assert pos["a"][0] < pos["b"][0]  # children in creation order
    assert pos["r"][0] == (pos["a"][0] + pos["b"][0]) / 2
    assert pos["orphan"][1] == 0
    assert {pos["c1"][1], pos["c2"][1]} == {0, 1}


def test_small_helpers():
    assert output_base("x/fig.png") == Path("x/fig")
    assert output_base("x/tree_org_model-v1.5") == Path("x/tree_org_model-v1.5")
    assert short_id("org/" + "n" * 40, 10) == "n" * 9 + "\u2026"
    assert short_tensor("model.layers.10.mlp.down_proj.weight", 20).endswith("mlp.down_proj")


# ---- figures -----------------------------------------------------------------------------


FIGURES = (
    "family_trees",
    "tree_meta_llama-base",
    "tree_qwen_qwen-base",
    "tree_x_mistral",
    "heatmap",
    "downloads_vs_overlap",
    "lineage_map",
    "layer_profile",
)


@pytest.fixture(scope="module")
def all_figures(df, tree, tmp_path_factory) -> dict[str, list[Path]]:
    """write_all_figures once for the module: stem -> [png, svg]."""
    paths = write_all_figures(df, tree, tmp_path_factory.mktemp("figures"))
    by_stem: dict[str, list[Path]] = {}
    for p in paths:
        by_stem.setdefault(p.stem, []).append(p)
    return by_stem


def test_write_all_figures_writes_each_figure_once(all_figures):
    assert set(all_figures) == set(FIGURES)


@pytest.mark.parametrize("stem", FIGURES)
def test_each_figure_is_a_real_png_and_svg(all_figures, stem):
    assert_figure(all_figures[stem])


def test_family_tree_of_one_family_by_member_id(tree, tmp_path):
    one = plot_family_tree(tree, tmp_path / "one.svg", family="org3/llama-merge")
    assert [p.name for p in one] == ["one.png", "one.svg"]
    assert_figure(one)
    from lineage.errors import UnknownModelError

    with pytest.raises(UnknownModelError, match="not a family"):
        plot_family_tree(tree, tmp_path / "x", family="nobody/nothing")


def test_heatmap_cut_to_the_largest_families(df, tree, tmp_path):
    assert_figure(plot_heatmap(df, tree, tmp_path / "small", max_models=8))


def test_lineage_map_with_pairs_lacking_detail(df, tmp_path):
    # The store keeps no per-slot detail for most unrelated pairs.
    partial = df.copy()
    partial.loc[~partial["same_family"], "overlap_std"] = float("nan")
    assert_figure(plot_lineage_map(partial, tmp_path / "map"))
    partial["overlap_std"] = float("nan")
    assert_figure(plot_lineage_map(partial, tmp_path / "none_drawn"), min_bytes=1_000)


def test_layer_profile_accepts_objects(tmp_path):
    from fingerprint.comparison import SlotComparison

    slots = [
        SlotComparison(
            f"k{i}", f"layers.{i}.attn.q.weight", 10, 64, 4096, 0.2 + i / 20, 0.0, 1e-9, False
        )
        for i in range(12)
    ]
    assert_figure(plot_layer_profile(slots, tmp_path / "profile", "a vs b"))


def test_figures_without_data_still_render(tmp_path):
    empty_tree = {"nodes": [], "edges": []}
    empty = pairs_frame([], [], empty_tree)
    for paths in (
        plot_heatmap(empty, empty_tree, tmp_path / "h"),
        plot_downloads_vs_overlap(empty, tmp_path / "d"),
        plot_lineage_map(empty, tmp_path / "m"),
        plot_layer_profile([], tmp_path / "p", "nothing compared"),
        plot_family_tree(empty_tree, tmp_path / "t"),
    ):
        assert_figure(paths, min_bytes=1_000)
    assert write_all_figures(empty, empty_tree, tmp_path / "none") == []


@pytest.mark.parametrize(
    ("name", "stem"),
    [("tree", "family_tree"), ("downloads", "downloads_vs_overlap"), ("map", "lineage_map")],
)
def test_draw_figure_draws_the_named_figure_into_the_folder(df, tree, tmp_path, name, stem):
    paths = draw_figure(name, df, tree, str(tmp_path))
    assert {p.name for p in paths} == {f"{stem}.png", f"{stem}.svg"}
    assert_figure(paths)


def test_draw_figure_refuses_an_unknown_name(df, tree, tmp_path):
    with pytest.raises(KeyError):
        draw_figure("pie", df, tree, str(tmp_path))
    assert list(DRAWABLE) == ["all", "tree", "heatmap", "downloads", "map"]
