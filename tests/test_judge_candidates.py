"""The answer judge's LM-free training rows: the benchmark's own windows, labelled by CUAD match, with near misses."""

import pytest

from selfinstruct_assets.answering import candidate_spans
from selfinstruct_assets.evaluation.judge_candidates import NEAR_MISS_JACCARD, answer_candidates, build_judge_examples
from selfinstruct_core.metrics import cuad_match, jaccard

CONTRACT = ("This Agreement is made between Acme Corp. and Beta LLC. The term begins on the Effective Date. "
            "This Agreement shall be governed by the laws of the State of New York. Payment is due in thirty days. "
            "Each party shall keep the other's information confidential. Notices shall be sent by mail. ") * 3
GOLD = "This Agreement shall be governed by the laws of the State of New York."


def _annotation(cid="c1"):
    start = CONTRACT.index(GOLD)
    return {"contract_id": cid, "question": "Which state's law governs the contract?", "is_impossible": False,
            "answer_texts": [GOLD], "answer_starts": [start], "answer_ends": [start + len(GOLD)]}


def test_candidates_are_labelled_by_cuad_match_with_both_labels():
    rows = answer_candidates(_annotation(), CONTRACT, per_question=6, window=200)
    assert 2 <= len(rows) <= 6
    assert all(r["label"] == cuad_match(r["candidate"], [GOLD]) for r in rows)
    assert {r["label"] for r in rows} == {0, 1}
    assert sum(r["label"] for r in rows) <= 3  # at most half matches
    assert answer_candidates({**_annotation(), "is_impossible": True, "answer_texts": []}, CONTRACT) == []


def test_candidates_are_cut_where_the_answering_windows_are():
    # "Acme Corp. and" is one sentence for the answering splitter; a cut after "Corp." is not a window any method quotes.
    windows = {s.text for s in candidate_spans([CONTRACT])}
    rows = answer_candidates(_annotation(), CONTRACT, per_question=40, window=CONTRACT.index(GOLD))
    assert rows and all(r["candidate"] in CONTRACT for r in rows)
    assert not any(r["candidate"].endswith("Corp.") for r in rows)
    assert all(r["candidate"] in windows for r in rows)  # whole sentences only: a region's cut edges are dropped


def test_near_misses_are_sampled_beside_matches_and_unrelated_windows():
    rows = answer_candidates(_annotation(), CONTRACT, per_question=6, window=400)
    near = [r for r in rows if not r["label"] and jaccard(r["candidate"], GOLD) >= NEAR_MISS_JACCARD]
    other = [r for r in rows if not r["label"] and jaccard(r["candidate"], GOLD) < NEAR_MISS_JACCARD]
    assert near and other  # both kinds of wrong answer are there when the contract has both
    assert len(rows) == 6
    again = answer_candidates(_annotation(), CONTRACT, per_question=6, window=400)
    assert [r["candidate"] for r in again] == [r["candidate"] for r in rows]  # seeded


def test_judge_examples_refuse_eval_contracts():
    contracts = [{"contract_id": "held", "text": CONTRACT}]
    with pytest.raises(ValueError, match="held"):
        build_judge_examples([_annotation("held")], contracts, eval_contract_ids={"held"})
    assert build_judge_examples([_annotation("c1")], contracts + [{"contract_id": "c1", "text": CONTRACT}])
