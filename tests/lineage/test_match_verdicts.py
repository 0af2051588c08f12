"""A scan match needs the verdict of `compare`, not only the index's significant total."""

from lineage.match import SignatureIndex
from tests.fingerprint.test_comparison_spread import NAMES, _pair


def test_a_total_resting_on_one_structured_slot_is_no_match():
    a, b = _pair({"transformer.wpe.weight": 200}, seed=7)  # position table alike, blocks apart
    assert SignatureIndex.from_signatures([a]).matches(b) == []


def test_a_relation_in_every_slot_is_a_match():
    a, b = _pair(dict.fromkeys(NAMES, 200), seed=8)
    (m,) = SignatureIndex.from_signatures([a]).matches(b)
    assert (m.model_id, m.verdict) == ("a", "derived")
