"""Tests of lineage/present/report*.py: the pairs frame, the seed's statistics, patterns and the
report folder, on the synthetic pairs of tests/lineage/present/helpers.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hub.records import ModelRecord
from lineage.present.report import build_report, markdown_table
from lineage.present.report_frame import BUCKETS, download_bucket, pairs_frame, quality_flag
from lineage.present.report_stats import (
    IDENTICAL_SLOT,
    filter_strategies,
    lineage_map_regions,
    query_pairs,
    stats_by_bucket,
    suspicious_pairs,
    untouched_share,
    welch_ttests,
)
from tests.lineage.present.helpers import (
    COPY_PAIR,
    MISLABELED_PAIR,
    MODELS,
    N_SLOTS,
    PARTIAL_PAIR,
    synthetic_models,
    synthetic_pairs,
    synthetic_tree,
)


@pytest.fixture
def df() -> pd.DataFrame:
    return pairs_frame(synthetic_pairs(), synthetic_models(), synthetic_tree())


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("downloads", "bucket", "flag"),
    [
        (0, "0-10", "low"),
        (10, "0-10", "low"),
        (11, "10-100", "medium"),
        (100, "10-100", "medium"),
        (101, "100-1k", "high"),
        (1000, "100-1k", "high"),
        (1001, ">1k", "high"),
        (None, None, None),
    ],
)
def test_buckets_are_right_closed_like_the_seed(downloads, bucket, flag):
    assert download_bucket(downloads) == bucket
    assert quality_flag(downloads) == flag


def test_pairs_frame_recovers_families_derived_and_declared(df):
    assert len(df) == len(MODELS) * (len(MODELS) - 1) // 2
    row = df[(df["a"] == "org1/llama-chat") & (df["b"] == "org4/llama-code")].iloc[0]
    assert row["same_family"]
    assert row["derived"] == "org4/llama-code"  # created later
    assert row["derived_downloads"] == 2_000 and row["bucket"] == ">1k"
    assert pd.isna(row["declarer"])
    mis = df[(df["a"] == MISLABELED_PAIR[0]) & (df["b"] == MISLABELED_PAIR[1])].iloc[0]
    assert not mis["same_family"]  # recovered: llama vs qwen
    assert mis["declared_same_family"]  # declared: the card says llama
    assert mis["declarer"] == "u4/qwen-mislabeled"
    # qwen-base is in declared links, x/mistral too; both are roots of their declared families
    q = df[(df["a"] == "qwen/qwen-base") & (df["b"] == "x/mistral")].iloc[0]
    assert q["declared_family_a"] == "qwen/qwen-base" and not q["declared_same_family"]
    assert len(df.iloc[0]["per_slot"]) == N_SLOTS


def test_pairs_frame_declared_is_na_without_declarations():
    models = [ModelRecord(id="a/x", downloads=5), ModelRecord(id="b/y", downloads=500)]
    pairs = [{"a": "a/x", "b": "b/y", "overlap": 0.5, "detail": {}}]
    df = pairs_frame(pairs, models, {"nodes": [], "edges": []})
    assert df["declared_same_family"].isna().all()
    assert not df["same_family"].iloc[0]  # absent from the tree: a family of its own each
    assert df["derived"].iloc[0] == "b/y"  # no dates: the larger id
    assert math.isnan(df["overlap_std"].iloc[0])


def test_stats_by_bucket_equal_pandas_groupby(df, tmp_path):
    paths = build_report(df, synthetic_tree(), tmp_path, figures=False)
    got = pd.read_csv(paths.stats_by_bucket)
    rec = got[(got["basis"] == "recovered") & (got["family"] != "all") & (got["bucket"] != "all")]
    expected = (
        df.groupby(["derived_family", "same_family", "bucket"])["overlap"]
        .agg(["count", "mean", "median", "std", "min", "max"])
        .reset_index()
    )
    assert len(rec) == len(expected)
    for e in expected.itertuples():
        relation = "same" if e.same_family else "different"
        r = rec[
            (rec["family"] == e.derived_family)
            & (rec["relation"] == relation)
            & (rec["bucket"] == e.bucket)
        ]
        assert len(r) == 1
        r = r.iloc[0]
        assert r["n"] == e.count
        for col in ("mean", "median", "min", "max"):
            assert r[col] == pytest.approx(getattr(e, col), rel=1e-12, abs=1e-15)
        if e.count > 1:
            assert r["std"] == pytest.approx(e.std, rel=1e-12)
        else:
            assert math.isnan(r["std"])
    # pooled rows: family "all" per bucket
    pooled = got[
        (got["basis"] == "recovered") & (got["family"] == "all") & (got["bucket"] != "all")
    ]
    expected = df.groupby(["same_family", "bucket"])["overlap"].agg(["count", "mean"]).reset_index()
    assert len(pooled) == len(expected)
    for e in expected.itertuples():
        relation = "same" if e.same_family else "different"
        r = pooled[(pooled["relation"] == relation) & (pooled["bucket"] == e.bucket)].iloc[0]
        assert r["n"] == e.count and r["mean"] == pytest.approx(e.mean, rel=1e-12)


def test_declared_basis_uses_declared_components(df):
    s = stats_by_bucket(df)
    decl = s[(s["basis"] == "declared") & (s["family"] == "all") & (s["bucket"] == "all")]
    known = df[df["declared_same_family"].notna()]
    for relation, same in (("same", True), ("different", False)):
        ov = known.loc[known["declared_same_family"] == same, "overlap"]
        r = decl[decl["relation"] == relation].iloc[0]
        assert r["n"] == len(ov) and r["mean"] == pytest.approx(ov.mean())


def test_welch_ttests_equal_scipy(df):
    t = welch_ttests(df)
    rec = t[(t["basis"] == "recovered") & (t["family"] == "all")]
    for bucket in (*BUCKETS, "all"):
        grp = df if bucket == "all" else df[df["bucket"] == bucket]
        same = grp.loc[grp["same_family"], "overlap"]
        diff = grp.loc[~grp["same_family"], "overlap"]
        row = rec[rec["bucket"] == bucket].iloc[0]
        assert (row["n_same"], row["n_different"]) == (len(same), len(diff))
        if len(same) >= 2 and len(diff) >= 2:
            ref = stats.ttest_ind(same, diff, equal_var=False)
            assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
            assert row["t"] == pytest.approx(ref.statistic, rel=1e-9)
        else:
            assert math.isnan(row["p_value"]) and "too few" in row["note"]
    overall = rec[rec["bucket"] == "all"].iloc[0]
    assert overall["p_value"] < 1e-6  # same-family overlap is far above different-family


def test_suspicious_lists_are_exactly_the_planted_rows(df, tmp_path):
    paths = build_report(df, synthetic_tree(), tmp_path, figures=False)
    got = pd.read_csv(paths.suspicious)
    rows = {(r.pattern, r.model, r.other) for r in got.itertuples()}
    assert rows == {
        ("suspicious_copy", "u1/llama-copy", "meta/llama-base"),
        ("mislabeled", "u4/qwen-mislabeled", "meta/llama-base"),
    }
    assert suspicious_pairs(df.iloc[0:0]).empty


def test_suspicious_copy_is_one_row_per_model_with_its_closest_older_model(df):
    # A second old relative above 0.9: still one row, pointing at the closer one.
    twin = df.copy()
    row = (twin["a"] == "org1/llama-chat") & (twin["b"] == "u1/llama-copy")
    twin.loc[row, "overlap"] = 0.93
    got = suspicious_pairs(twin)
    copies = got[got["pattern"] == "suspicious_copy"]
    assert copies[["model", "other", "matches"]].values.tolist() == [
        ["u1/llama-copy", "meta/llama-base", 2]
    ]


def test_filter_strategies_keep_what_they_say(df):
    s = filter_strategies(df).set_index("strategy")
    for name, above in (("conservative", 100), ("balanced", 10)):
        kept = df[df["derived_downloads"] > above]
        assert s.loc[name, "n_pairs"] == len(kept)
        assert s.loc[name, "n_models"] == len(set(kept["a"]) | set(kept["b"]))
        assert s.loc[name, "mean_same"] == pytest.approx(
            kept.loc[kept["same_family"], "overlap"].mean()
        )
    assert s.loc["flag-all", "n_pairs"] == len(df)
    assert s.loc["flag-all", ["high", "medium", "low"]].sum() == len(df)
    assert s.loc["conservative", "low"] == 0


def test_query_pairs_is_half_open_and_regions_tile(df):
    lo = query_pairs(df, overlap_max=0.5)
    hi = query_pairs(df, overlap_min=0.5)
    assert len(lo) + len(hi) == len(df) and not set(lo.index) & set(hi.index)
    edge = pd.DataFrame(
        {
            "overlap": [0.1, 0.1, 0.1, 0.0999, 0.5, np.nan],
            "untouched": [0.95, 0.9499, 0.2499, np.nan, np.nan, 0.5],
        }
    )
    regions = lineage_map_regions(edge)["region"].tolist()
    assert regions == [
        "byte-identical",
        "partly untouched",
        "trained throughout",
        "unrelated",
        None,
        None,
    ]
    r = lineage_map_regions(df).set_index(["a", "b"])["region"]
    assert r[PARTIAL_PAIR] == "partly untouched"  # half the layers frozen
    assert r[COPY_PAIR] == "trained throughout"  # overlap 0.97, but no byte-identical slot
    assert r[MISLABELED_PAIR] == "unrelated"
    assert r.notna().all()


def test_untouched_share_counts_slots_at_the_graphs_identity_threshold():
    from lineage.graph import GraphParams

    assert GraphParams().identical_slot == IDENTICAL_SLOT
    slots = [{"identity": 1.0}, {"identity": 0.9}, {"identity": 0.89}, {"identity": None}]
    assert untouched_share(slots) == pytest.approx(2 / 3)
    assert np.isnan(untouched_share([]))


def test_suspicious_follows_the_anomaly_rules_when_the_tree_carries_them(df):
    # Thresholds alone flag every low-download close relative (the demo: 33 of 52 models);
    # with a tree, only what the rules flagged is listed, against its recovered parent.
    tree = synthetic_tree()
    loose = suspicious_pairs(df)
    ruled = suspicious_pairs(df, tree)
    assert set(ruled["model"]) == {"u1/llama-copy", "u4/qwen-mislabeled"}
    unflag = {**tree, "nodes": [{**n, "anomalies": []} for n in tree["nodes"]]}
    assert suspicious_pairs(df, unflag).empty  # the rules flagged nothing: nothing is listed
    assert set(ruled["model"]) <= set(loose["model"])
    copy = ruled[ruled["pattern"] == "suspicious_copy"].iloc[0]
    assert copy["other"] == "meta/llama-base" and "anomaly rule" in copy["reason"]


def test_markdown_table_reads_as_plain_text():
    t = pd.DataFrame(
        {"family": ["a", "bb"], "n": [1, 22], "mean": [0.5, np.nan], "p_value": [1e-9, 0.5]}
    )
    lines = markdown_table(t).splitlines()
    assert len({len(line) for line in lines}) == 1  # every row padded to the same width
    assert "-" in lines[3] and "1.00e-09" in lines[2] and "0.5000" in lines[2]
    assert markdown_table(t.iloc[0:0]) == "_(none)_\n"


def test_build_report_writes_everything(df, tmp_path):
    # The real figures (their content is tested in test_plots.py); here their wiring.
    paths = build_report(df, synthetic_tree(), tmp_path / "out")
    for p in (
        paths.report,
        paths.stats_by_bucket,
        paths.ttests,
        paths.suspicious,
        paths.strategies,
        paths.pairs,
    ):
        assert p.exists() and p.stat().st_size > 0
    text = paths.report.read_text()
    for heading in (
        "Overlap by download bucket",
        "Welch t-tests",
        "Suspicious pairs",
        "Filter strategies",
        "Lineage map regions",
        "Figures",
    ):
        assert heading in text
    assert {p.suffix for p in paths.figures} == {".png", ".svg"}
    assert all(p.exists() and p.parent == tmp_path / "out" / "figures" for p in paths.figures)
    for png in (p for p in paths.figures if p.suffix == ".png"):
        assert f"]({png.relative_to(tmp_path / 'out').as_posix()})" in text
    assert "per_slot" not in pd.read_csv(paths.pairs).columns


def test_build_report_on_no_pairs(tmp_path):
    empty = pairs_frame([], [], {"nodes": [], "edges": []})
    paths = build_report(empty, {"nodes": [], "edges": []}, tmp_path)
    assert "0 compared pairs" in paths.report.read_text()
    assert pd.read_csv(paths.stats_by_bucket).empty


def test_report_says_when_there_are_no_download_counts(df, tmp_path):
    zero = df.assign(derived_downloads=0.0, downloads_a=0.0, downloads_b=0.0, bucket="0-10")
    paths = build_report(zero, synthetic_tree(), tmp_path, figures=False)
    assert "Every model has 0 downloads" in paths.report.read_text()
    normal = build_report(df, synthetic_tree(), tmp_path / "b", figures=False)
    assert "Every model has 0 downloads" not in normal.report.read_text()
