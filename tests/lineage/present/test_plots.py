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
from lineage.present.report_frame import BUCKETS, pairs_frame
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


# ---- what a reader sees: the redesign's promises, read back from the drawn figures ------------


def _rendered(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def test_tree_labels_are_full_ids_beside_their_own_nodes_and_never_overlap(tree):
    from lineage.present.plots_tree import family_tree_figure

    fig = family_tree_figure(tree)
    renderer = _rendered(fig)
    checked = 0
    for ax in fig.axes:
        nodes = {
            c.get_gid()[len("node:") :]: c.get_offsets()[0]
            for c in ax.collections
            if (c.get_gid() or "").startswith("node:")
        }
        labels = [t for t in ax.texts if (t.get_gid() or "").startswith("label:")]
        boxes = []
        for label in labels:
            model = label.get_gid()[len("label:") :]
            assert label.get_text() == model  # org/name, owner kept
            # the label's left edge, in data units, is nearest its own node
            box = label.get_window_extent(renderer)
            left = ax.transData.inverted().transform((box.x0, (box.y0 + box.y1) / 2))
            nearest = min(
                nodes, key=lambda m: (nodes[m][0] - left[0]) ** 2 + (nodes[m][1] - left[1]) ** 2
            )
            assert nearest == model
            assert box.x0 > ax.transData.transform(nodes[model])[0]  # to the right of it
            boxes.append(box)
            checked += 1
        for a, b in itertools.combinations(boxes, 2):
            assert not a.overlaps(b)
    assert checked == len(tree["nodes"])


def test_tree_merge_edges_are_distinct_and_widths_follow_overlap(tree):
    from matplotlib.colors import to_hex

    from lineage.present.plots_common import RELATION_COLORS
    from lineage.present.plots_tree import edge_width, family_tree_figure

    fig = family_tree_figure(tree, "meta/llama-base")
    ax = fig.axes[0]
    merges = [p for p in ax.patches if (p.get_gid() or "").startswith("merge:")]
    # org3/llama-merge hangs under org1/llama-chat; its second parent is org4/llama-code
    assert [p.get_gid() for p in merges] == ["merge:org4/llama-code->org3/llama-merge"]
    assert to_hex(merges[0].get_edgecolor()) == RELATION_COLORS["merge"]
    assert merges[0].get_linestyle() == "--"
    arms = {
        line.get_gid(): line.get_linewidth()
        for line in ax.lines
        if (line.get_gid() or "").startswith("edge:")
    }
    assert "edge:org4/llama-code->org3/llama-merge" not in arms  # not drawn as a tree edge
    overlaps = {(e["parent"], e["child"]): e["overlap"] for e in tree["edges"]}
    for gid, width in arms.items():
        parent, child = gid[len("edge:") :].split("->")
        assert width == pytest.approx(edge_width(overlaps[(parent, child)]))
    assert edge_width(1.0) > 3 * edge_width(0.5)  # the range that decides parents is visible
    assert all(a < b for a, b in itertools.pairwise(edge_width(x / 10) for x in range(11)))


def test_heatmap_is_linear_from_the_chance_level(df, tree):
    from matplotlib.colors import LogNorm, Normalize

    from lineage.present.plots import chance_level, heatmap_figure

    chance = chance_level(df)
    unrelated = df.loc[df["verdict"] == "unrelated", "overlap"]
    assert chance == pytest.approx(unrelated.median()) and 0 < chance < 0.05
    image = heatmap_figure(df, tree).axes[0].images[0]
    assert type(image.norm) is Normalize and not isinstance(image.norm, LogNorm)
    assert image.norm.vmin == pytest.approx(chance) and image.norm.vmax == 1.0
    bar = heatmap_figure(df, tree).axes[1]
    assert any(t.get_text().startswith("chance") for t in bar.get_yticklabels())


def test_downloads_panels_share_one_y_axis_and_have_no_trend_lines(df):
    from lineage.present.plots import downloads_figure

    fig = downloads_figure(df)
    axes = [ax for ax in fig.axes if ax.get_xticklabels()]
    assert len(axes) == 1 + 3  # all families, then each of the three
    assert {ax.get_ylim() for ax in axes} == {(0.0, 1.03)}
    for ax in axes:
        assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == list(BUCKETS)
        assert not [line for line in ax.lines if line.get_linestyle() == "--"]


def test_lineage_map_regions_hold_the_partial_pair_and_colour_edges_by_relation(df, tree):
    from lineage.present.plots_map import lineage_map_figure

    fig = lineage_map_figure(df, tree)
    ax = fig.axes[0]
    regions = {p.get_gid() for p in ax.patches}
    assert regions == {"unrelated", "trained throughout", "partly untouched", "byte-identical"}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "recovered edge: partial (n=1)" in legend
    assert any(t.startswith("recovered edge: merge") for t in legend)
