"""SQuAD/CUAD-style answer metrics: normalisation, exact match, token F1, word Jaccard and CUAD match."""

import pytest

from selfinstruct.core.metrics import cuad_match, exact_match, jaccard, normalize_answer, token_f1


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("The Agreement, dated 1 May.", "agreement dated 1 may"),
        ("\u201cLicensee\u201d shall\u2014not", "licensee shallnot"),  # curly quotes and an em dash are punctuation
        ("  a   An  THE  b\n c ", "b c"),
        ("theory and anarchy", "theory and anarchy"),  # articles only as whole words
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize(
    "pred, golds, expected",
    [
        ("the State of Delaware", ["State of Delaware."], 1.0),
        ("Delaware", ["State of Delaware"], 0.0),
        ("Delaware", ["Ohio", "delaware"], 1.0),
        ("Delaware", "Delaware", 1.0),  # a bare string is one gold, not a list of characters
        ("D", "Delaware", 0.0),
        ("Delaware", [], 0.0),
        ("", [""], 0.0),  # no usable gold
        ("", ["Delaware"], 0.0),
        (None, None, 0.0),
    ],
)
def test_exact_match(pred, golds, expected):
    assert exact_match(pred, golds) == expected


@pytest.mark.parametrize(
    "pred, golds, expected",
    [
        ("State of Delaware", ["the laws of the State of Delaware"], 0.75),  # P=3/3, R=3/5
        ("State of Delaware", ["Ohio", "State of Delaware"], 1.0),
        ("of of", ["of"], 2 * 0.5 * 1 / 1.5),  # multiset overlap, not set overlap
        ("New York", ["Delaware"], 0.0),
        ("", ["Delaware"], 0.0),
        ("Delaware", [], 0.0),
    ],
)
def test_token_f1(pred, golds, expected):
    assert token_f1(pred, golds) == pytest.approx(expected)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("laws of Delaware", "laws of Ohio", 0.5),
        ("of of of", "of", 1.0),
        ("The Term.", "term", 1.0),
        ("x", "", 0.0),
        ("", "", 0.0),
    ],
)
def test_jaccard(a, b, expected):
    assert jaccard(a, b) == pytest.approx(expected)
    assert jaccard(b, a) == pytest.approx(expected)


@pytest.mark.parametrize(
    "pred, golds, threshold, expected",
    [
        ("laws of Delaware", ["laws of Ohio"], 0.5, 1.0),  # exactly at the threshold counts
        ("laws of Delaware", ["laws of Ohio"], 0.6, 0.0),
        ("laws of Delaware", ["unrelated clause", "the laws of Delaware."], 0.5, 1.0),
        ("This Agreement shall be governed by Delaware law", ["governed by the laws of Delaware"], 0.5, 0.0),
        ("", ["Delaware"], 0.5, 0.0),
        ("Delaware", [], 0.5, 0.0),
        ("the", ["the"], 0.5, 0.0),  # normalises to nothing on both sides
    ],
)
def test_cuad_match(pred, golds, threshold, expected):
    assert cuad_match(pred, golds, threshold=threshold) == expected
