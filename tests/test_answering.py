"""Verbatim answering without a model: sentence splitting, candidate windows, the BM25 baseline, snapping.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_answering.py
"""

import random

import pytest

from selfinstruct.answering import Answer, Span, bm25_answer, candidate_spans, is_no_clause, snap, split_sentences

CONTRACT = (
    "ARTICLE 1. DEFINITIONS\n\n"
    '1.1 "Products" means the goods listed in Exhibit A, as amended by Acme Inc. from time to time. '
    "The Territory is the U.S. and Canada.\n"
    "2. TERM. This Agreement shall commence on the Effective Date and continue for five (5) years; "
    "thereafter it renews for successive one-year terms unless either party gives notice.\n\n"
    "3. GOVERNING LAW. This Agreement shall be governed by the laws of the State of Delaware. "
    "The parties submit to the courts of Wilmington: (a) for injunctive relief against the other party; "
    "and (b) for damages arising under it.\n"
)


def test_sentences_keep_offsets_and_respect_legal_punctuation():
    offset = 500
    sents = split_sentences(CONTRACT, offset=offset)
    assert all(CONTRACT[s.start - offset : s.end - offset] == s.text for s in sents)
    texts = [s.text for s in sents]
    # "Inc." and "U.S." do not end a sentence; a semicolon does; the bare "2. TERM." heading joins its sentence.
    assert any(
        t.startswith('ARTICLE 1. DEFINITIONS\n\n1.1 "Products" means') and t.endswith("from time to time.")
        for t in texts
    )  # a short heading joins the sentence after it
    assert "The Territory is the U.S. and Canada." in texts
    assert any(t.startswith("2. TERM. This Agreement shall commence") and t.endswith("five (5) years;") for t in texts)
    assert "This Agreement shall be governed by the laws of the State of Delaware." in " ".join(texts)
    assert texts[-3:] == [
        "The parties submit to the courts of Wilmington:",
        "(a) for injunctive relief against the other party;",
        "and (b) for damages arising under it.",
    ]
    assert all(t == t.strip() and len(t) >= 3 for t in texts)


def test_windows_are_bounded_deduplicated_and_merge_overlapping_chunks():
    chunks = [
        {"text": CONTRACT[0:260], "start": 0},
        {"text": CONTRACT[180:], "start": 180},
        {"text": CONTRACT[180:], "start": 180},
    ]  # an overlap and a duplicate chunk
    spans = candidate_spans(chunks, max_sentences=3)
    keys = [(s.start, s.end) for s in spans]
    assert len(keys) == len(set(keys))
    assert all(CONTRACT[s.start : s.end] == s.text for s in spans)
    # The sentence cut by the first chunk's edge is whole in the merged text.
    assert any(s.text.startswith("2. TERM.") and s.text.endswith("five (5) years;") for s in spans)
    n_sents = len(candidate_spans(chunks, max_sentences=1))
    assert len(spans) <= 3 * n_sents
    assert len(candidate_spans(chunks, max_candidates=4)) == 4
    widths = candidate_spans(chunks, max_chars=120)
    singles = {s.text for s in candidate_spans(chunks, max_sentences=1)}
    assert all(len(s.text) <= 120 or s.text in singles for s in widths)  # only single sentences may exceed it


def test_plain_string_passages_have_no_offsets_and_dedupe_by_text():
    spans = candidate_spans([CONTRACT, CONTRACT])
    assert spans and all(s.start is None and s.end is None and s.text in CONTRACT for s in spans)
    assert len({s.text for s in spans}) == len(spans)


_WORDS = [
    "the",
    "Party",
    "shall",
    "Inc.",
    "U.S.",
    "(a)",
    "2.",
    "Section",
    "notice;",
    "days.",
    "Licensee",
    "\n",
    "\n\n",
    "  ",
    "terminate:",
    '"Term"',
    "e.g.",
    "Agreement.",
    "5",
    "(b)",
    "X.",
]


@pytest.mark.parametrize("seed", range(25))
def test_every_candidate_and_answer_is_a_verbatim_substring(seed):
    rng = random.Random(seed)
    text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 300)))
    size = rng.randint(40, 400)
    chunks = [{"text": text[a : a + size], "start": a} for a in range(0, max(1, len(text)), size * 3 // 4)]
    for s in candidate_spans(chunks, max_sentences=rng.randint(1, 3), max_candidates=rng.randint(1, 200)):
        assert s.text and text[s.start : s.end] == s.text
    for s in split_sentences(text, offset=7):
        assert text[s.start - 7 : s.end - 7] == s.text
    ans = bm25_answer("When may the Licensee terminate?", chunks)
    assert not ans.has_clause or text[ans.start : ans.end] == ans.text
    reply = " ".join(rng.choice(_WORDS) for _ in range(5))
    snapped = snap(reply, candidate_spans(chunks))
    assert not snapped.has_clause or text[snapped.start : snapped.end] == snapped.text


def test_bm25_baseline_picks_the_sentence_with_the_question_words():
    ans = bm25_answer("Which state's laws govern the agreement?", [{"text": CONTRACT, "start": 0}])
    assert ans.has_clause and "laws of the State of Delaware" in ans.text
    assert ans.method_detail["method"] == "bm25" and ans.prediction == ans.text
    assert not bm25_answer("zebra xylophone?", [CONTRACT]).has_clause  # no question word anywhere


def test_snap_picks_the_quoted_span_and_recognises_no_clause_replies():
    spans = candidate_spans([{"text": CONTRACT, "start": 0}])
    ans = snap('The answer is: "governed by the laws of the State of Delaware".', spans)
    assert ans.has_clause and ans.text.startswith("3. GOVERNING LAW. This Agreement shall be governed")
    assert ans.text.endswith("Delaware.") and "Wilmington" not in ans.text  # the single sentence, not a wider window
    assert CONTRACT[ans.start : ans.end] == ans.text
    for reply in ["No such clause.", "Not stated", "none", "", "The contract does not mention it.", "N/A"]:
        out = snap(reply, spans)
        assert is_no_clause(reply) and not out.has_clause and out.prediction == "" and out.start is None
    assert not snap("purple elephants dance", spans).has_clause  # an invented answer is not a quotation
    assert not is_no_clause("Nonexclusive license granted to the Licensee")


def test_answer_type():
    a = Answer.of(Span("x y", 3, 6), 0.5, method="t")
    assert (a.has_clause, a.text, a.start, a.end, a.score, a.method_detail) == (True, "x y", 3, 6, 0.5, {"method": "t"})
    assert Answer.none(method="t").prediction == ""


def test_only_maximal_token_sequences_are_run():
    from selfinstruct.answering.sharing import maximal

    assert maximal([[5, 6], [5, 6, 7], [8], [5, 6, 7], [], [5, 9]]) == [(5, 6, 7), (5, 9), (8,)]
    assert maximal([[]]) == [()]


def test_a_short_last_piece_joins_the_one_sentence_before_it():
    # Two pieces, the last shorter than min_chars: it must join the first, not raise IndexError.
    spans = split_sentences("The Supplier shall deliver the goods. Done.", min_chars=25)
    assert [s.text for s in spans] == ["The Supplier shall deliver the goods. Done."]
