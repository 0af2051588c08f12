"""Card front matter and declared lineage."""

from __future__ import annotations

import pytest

from hub.card import declared_bases, split_front_matter
from hub.records import DeclaredBase


def test_front_matter_and_body():
    data, body = split_front_matter("---\nlicense: mit\nbase_model: org/base\n---\n# Title\ntext\n")
    assert data == {"license": "mit", "base_model": "org/base"}
    assert body == "# Title\ntext\n"


def test_front_matter_crlf_and_bom():
    data, body = split_front_matter("\ufeff---\r\nlicense: mit\r\n---\r\nbody")
    assert data == {"license": "mit"} and body == "body"


@pytest.mark.parametrize(
    "text",
    [
        "# no front matter\n",
        "",
        "---\nlicense: [unclosed\n---\nbody",
        "---\n\tbad: tab\n  - x\n---\nbody",
        "---\n- a list\n- not a mapping\n---\nbody",
        "---\n---\nbody",
        "---\nlicense: mit\n",  # never closed
    ],
)
def test_no_or_malformed_front_matter_gives_empty_dict(text):
    data, _ = split_front_matter(text)
    assert data == {}


def test_malformed_yaml_keeps_the_body():
    assert split_front_matter("---\na: [\n---\nbody")[1] == "body"


def test_base_model_as_string():
    assert declared_bases({"base_model": "org/base"}, []) == (DeclaredBase("org/base"),)


def test_base_model_as_list_with_relation():
    card = {"base_model": ["org/a", "org/b"], "base_model_relation": "merge"}
    assert declared_bases(card, []) == (
        DeclaredBase("org/a", "merge"),
        DeclaredBase("org/b", "merge"),
    )


def test_relation_is_normalised_and_unknown_ones_dropped():
    assert declared_bases({"base_model": "a/b", "base_model_relation": " Quantized "}, []) == (
        DeclaredBase("a/b", "quantized"),
    )
    assert declared_bases({"base_model": "a/b", "base_model_relation": "cousin"}, []) == (
        DeclaredBase("a/b", None),
    )


def test_tags_with_and_without_relation():
    tags = ["text-generation", "base_model:org/x", "base_model:finetune:org/y", "license:mit"]
    assert declared_bases({}, tags) == (DeclaredBase("org/x"), DeclaredBase("org/y", "finetune"))


def test_dedupe_keeps_card_order_and_most_specific_relation():
    card = {"base_model": ["org/a", "org/b"]}
    tags = ["base_model:org/a", "base_model:adapter:org/a", "base_model:org/c", "base_model:org/b"]
    assert declared_bases(card, tags) == (
        DeclaredBase("org/a", "adapter"),
        DeclaredBase("org/b"),
        DeclaredBase("org/c"),
    )


def test_card_relation_wins_over_a_later_tag():
    card = {"base_model": "org/a", "base_model_relation": "finetune"}
    assert declared_bases(card, ["base_model:quantized:org/a"]) == (
        DeclaredBase("org/a", "finetune"),
    )


@pytest.mark.parametrize("value", [None, 3, {"id": "x"}, ["", None, 5], "  "])
def test_junk_base_model_values_are_ignored(value):
    assert declared_bases({"base_model": value}, ["base_model:", "base_model:adapter:"]) == ()
