"""The answer judge's LM-free training rows: contract windows labelled by CUAD match, never from eval contracts."""

import pytest

from selfinstruct.core.metrics import cuad_match
from selfinstruct.judging.judge_candidates import answer_candidates, build_judge_examples

CONTRACT = (
    "This Agreement is made between Acme Corp. and Beta LLC. The term begins on the Effective Date. "
    "This Agreement shall be governed by the laws of the State of New York. Payment is due in thirty days. "
    "Each party shall keep the other's information confidential. Notices shall be sent by mail. "
) * 3
GOLD = "This Agreement shall be governed by the laws of the State of New York."


def _annotation(cid="c1"):
    start = CONTRACT.index(GOLD)
    return {
        "contract_id": cid,
        "question": "Which state's law governs the contract?",
        "is_impossible": False,
        "answer_texts": [GOLD],
        "answer_starts": [start],
        "answer_ends": [start + len(GOLD)],
    }


def test_candidates_are_labelled_by_cuad_match_with_both_labels():
    rows = answer_candidates(_annotation(), CONTRACT, per_question=6, window=200)
    assert 2 <= len(rows) <= 6
    assert all(r["label"] == cuad_match(r["candidate"], [GOLD]) for r in rows)
    assert {r["label"] for r in rows} == {0, 1}
    assert sum(r["label"] for r in rows) <= 3  # at most half matches
    assert answer_candidates({**_annotation(), "is_impossible": True, "answer_texts": []}, CONTRACT) == []


def test_candidates_are_seeded_slices_of_the_contract_near_and_away_from_the_gold():
    rows = answer_candidates(_annotation(), CONTRACT, per_question=6, window=200)
    assert all(r["candidate"] in CONTRACT and r["golds"] == [GOLD] for r in rows)
    again = answer_candidates(_annotation(), CONTRACT, per_question=6, window=200)
    assert [r["candidate"] for r in again] == [r["candidate"] for r in rows]
    other = answer_candidates(_annotation(), CONTRACT, per_question=6, window=200, seed=1)
    assert {r["label"] for r in other} == {0, 1}


def test_judge_examples_refuse_eval_contracts():
    contracts = [{"contract_id": "held", "text": CONTRACT}]
    with pytest.raises(ValueError, match="held"):
        build_judge_examples([_annotation("held")], contracts, eval_contract_ids={"held"})
    assert build_judge_examples([_annotation("c1")], contracts + [{"contract_id": "c1", "text": CONTRACT}])
