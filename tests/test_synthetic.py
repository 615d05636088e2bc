"""Seed set selection and self-instruct generation/filters with fake teachers."""

import dspy
from dspy.utils.dummies import DummyLM

from resources.embedders import HashingEmbedder
from selfinstruct.synthetic.generate import align_answer, filter_candidates, generate_candidates, parse_raw_qa
from selfinstruct.synthetic.seed import seed_examples

TEXT = "Preamble. " * 50 + "This Agreement shall be governed by the laws of Delaware. " + "Filler text. " * 50


def _ann(cid, cat, start, end, impossible=False):
    return {
        "contract_id": cid,
        "category": cat,
        "question": f"What is {cat}?",
        "is_impossible": impossible,
        "answer_starts": [] if impossible else [start],
        "answer_ends": [] if impossible else [end],
    }


def test_seed_uses_train_contracts_only_and_spreads_categories():
    s = TEXT.index("governed")
    contracts = {"tr": {"split": "train", "text": TEXT}, "ev": {"split": "eval", "text": TEXT}}
    anns = [
        _ann("tr", "Law", s, s + 40),
        _ann("tr", "Date", 0, 9),
        _ann("ev", "Law", s, s + 40),
        _ann("tr", "None", 0, 0, impossible=True),
        _ann("tr", "Long", 0, 400),
    ]
    rows = seed_examples(anns, contracts, size=10, context_chars=200)
    assert {r["contract_id"] for r in rows} == {"tr"}
    assert sorted(r["category"] for r in rows) == ["Date", "Law"]
    law = next(r for r in rows if r["category"] == "Law")
    assert law["answer"] == TEXT[s : s + 40].strip() and law["answer"] in law["context"] and len(law["context"]) <= 260
    assert seed_examples(anns, contracts, size=1, context_chars=200)[0]["seed_id"] in {r["seed_id"] for r in rows}


def test_generate_rotates_seed_demos_and_parses_output():
    seeds = [{"seed_id": f"s{i}", "context": f"ctx {i}", "question": f"q{i}?", "answer": f"a{i}"} for i in range(3)]
    chunks = [{"chunk_id": f"c{i}", "contract_id": "k", "text": TEXT} for i in range(2)]
    lm = DummyLM([{"question": "Which law governs the Agreement?", "answer": "the laws of Delaware"}] * 2)
    with dspy.context(lm=lm):
        cands = generate_candidates(chunks, seeds, n_demos=2)
    assert [c["seed_ids"] for c in cands] == [["s0", "s1"], ["s1", "s2"]]
    assert cands[0]["answer"] == "the laws of Delaware"


def test_parse_raw_qa_reads_plain_replies():
    assert parse_raw_qa("Question: Who signs?\nAnswer: the Parties") == ("Who signs?", "the Parties")
    assert parse_raw_qa("nonsense") == ("", "")


def test_filters_reject_with_reasons_and_keep_grounded():
    base = {"chunk_id": "c", "contract_id": "k", "context": TEXT, "seed_ids": []}
    cands = [
        {**base, "question": "Which law governs the Agreement?", "answer": "the laws   of Delaware"},
        {**base, "question": "Which law governs this Agreement?", "answer": "laws of Delaware"},
        {**base, "question": "Which law governs?", "answer": "the laws of Texas"},
        {**base, "question": "Law", "answer": "Delaware"},
        {**base, "question": "What is the seed question?", "answer": "Delaware"},
        # Same question as the first, other contract: new data, kept.
        {**base, "contract_id": "k2", "question": "Which law governs the Agreement?", "answer": "Delaware"},
    ]
    kept, rejected = filter_candidates(
        cands,
        HashingEmbedder().embed,
        dup_threshold=0.75,
        exclude=[("k", "What is the seed question?"), ("k2", "Unrelated seed?")],
    )
    assert [(k["contract_id"], k["answer"], k["grounding"]) for k in kept] == [
        ("k", "the laws   of Delaware", "exact"),
        ("k2", "Delaware", "exact"),
    ]
    reasons = sorted(r["reason"].split(" (")[0] for r in rejected)
    assert reasons == [
        "answer not grounded in context",
        "near-duplicate question",
        "near-duplicate question",
        "question length 3 outside 10-300",
    ]
    assert len(kept) + len(rejected) == len(cands)


def test_align_answer_copies_the_sentence_a_near_quote_came_from():
    # One word changed: the sentence from the context becomes the answer, verbatim.
    span, how = align_answer("This Agreement is governed by the laws of Delaware.", TEXT)
    assert (span, how) == ("This Agreement shall be governed by the laws of Delaware.", "aligned")
    assert span in TEXT
    assert align_answer("the laws of Delaware", TEXT) == ("the laws of Delaware", "exact")
    # Short answers and paraphrases with too few shared words are not grounded.
    assert align_answer("No.", TEXT)[1] is None
    assert align_answer("Yes, the contract names a governing law somewhere", TEXT)[1] is None


def test_aligned_answer_is_kept_with_the_raw_text_beside_it():
    cand = {
        "chunk_id": "c",
        "contract_id": "k",
        "context": TEXT,
        "seed_ids": [],
        "question": "Which law governs the Agreement?",
        "answer": "This Agreement is governed by the laws of Delaware",
    }
    [kept], rejected = filter_candidates([cand], HashingEmbedder().embed)
    assert not rejected and kept["grounding"] == "aligned" and kept["answer"] in TEXT
    assert kept["raw_answer"] == cand["answer"]


def test_backtranslation_picks_the_clause_most_like_a_seed_answer_and_asks_for_its_question():
    from selfinstruct.synthetic.backtranslate import answer_spans, backtranslate_candidates

    seeds = [
        {
            "seed_id": "law",
            "context": "",
            "question": "Which law governs the contract?",
            "answer": "This Agreement shall be governed by the laws of New York.",
        },
        {
            "seed_id": "term",
            "context": "",
            "question": "Can either party terminate?",
            "answer": "Either party may terminate on thirty days notice.",
        },
    ]
    chunks = [
        {"chunk_id": "c1", "contract_id": "k", "text": TEXT},
        {"chunk_id": "c2", "contract_id": "k", "text": "Tiny. Words."},
    ]
    assert answer_spans(TEXT) == ["This Agreement shall be governed by the laws of Delaware."]
    lm = DummyLM([{"question": "Which law governs the Agreement?"}])
    with dspy.context(lm=lm):
        cands = backtranslate_candidates(chunks, seeds, HashingEmbedder().embed, n_demos=1)
    assert cands[0]["answer"] == "This Agreement shall be governed by the laws of Delaware."
    assert cands[0]["question"] == "Which law governs the Agreement?" and cands[0]["seed_ids"] == ["law"]
    assert cands[1]["answer"] == "" and cands[1]["question"] == ""  # no sentence of answer length: no call
    kept, rejected = filter_candidates(cands, HashingEmbedder().embed)
    assert [k["grounding"] for k in kept] == ["exact"] and rejected[0]["reason"].startswith("question length 0")


def test_relevance_filter_rejects_a_question_unrelated_to_its_answer():
    base = {"chunk_id": "c", "contract_id": "k", "context": TEXT, "seed_ids": []}
    cands = [
        {
            **base,
            "question": "Which law governs this Agreement?",
            "answer": "This Agreement shall be governed by the laws of Delaware.",
        },
        {
            **base,
            "contract_id": "k2",
            "question": "How many preamble filler texts are there?",
            "answer": "This Agreement shall be governed by the laws of Delaware.",
        },
    ]
    kept, rejected = filter_candidates(cands, HashingEmbedder().embed, min_relevance=0.2)  # cosines 0.28 and 0
    assert [k["contract_id"] for k in kept] == ["k"]
    assert rejected[0]["contract_id"] == "k2" and rejected[0]["reason"].startswith("question and answer unrelated")
    assert len(filter_candidates(cands, HashingEmbedder().embed)[0]) == 2  # off by default


def test_backtranslation_skips_debris_and_restores_question_marks():
    from selfinstruct.synthetic.backtranslate import answer_spans, as_question

    assert answer_spans("12 Months 88 2 '!n]'' ,, 77 99. The Licensee shall pay all fees within thirty days.") == [
        "The Licensee shall pay all fees within thirty days."
    ]
    assert as_question("What is the notice period\nextra") == "What is the notice period?"
    assert as_question("The notice period.") == "The notice period."  # not a question: left for the filter
