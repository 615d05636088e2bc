"""Training rows in the one answer format: verbatim targets, 'No such clause.' rows, wrong-window rejections."""

import json

import pytest

from selfinstruct.answering import NO_CLAUSE, QUOTE_INSTRUCTION
from selfinstruct.answering.right import is_right as correct
from selfinstruct.finetune.examples import (
    no_clause_count,
    sft_rows,
    unanswerable_questions,
    verbatim_span,
    wrong_window,
)
from selfinstruct.finetune.preferences import build_preference_pairs, window_candidates

CONTRACT = (
    "This Agreement is made between Acme Corp. and Beta LLC.\nThe term begins on the Effective Date.\n"
    "This Agreement shall be governed by the laws of  the State of New York.\nPayment is due in thirty days. "
    "Notices shall be sent by mail to the addresses of the parties."
)
GOLD = "This Agreement shall be governed by the laws of  the State of New York."
CONTRACTS = {
    "k1": {"contract_id": "k1", "split": "train", "text": CONTRACT},
    "e1": {"contract_id": "e1", "split": "eval", "text": CONTRACT},
}


def test_verbatim_span_returns_the_contracts_own_characters_or_none():
    assert (
        verbatim_span("governed by the laws of the State of New York.", CONTRACT)
        == "governed by the laws of  the State of New York."
    )  # the contract's double space, not the answer's
    assert verbatim_span("governed by the law of New York", CONTRACT) is None  # a paraphrase is no target
    assert verbatim_span("   ", CONTRACT) is None


def test_correct_in_the_one_format():
    assert correct(GOLD, [GOLD]) == 1.0
    assert correct("Payment is due in thirty days.", [GOLD]) == 0.0
    assert correct(NO_CLAUSE, [GOLD]) == 0.0  # denying a clause that exists is wrong
    assert correct(NO_CLAUSE, []) == 1.0 and correct(GOLD, []) == 0.0  # no gold: only "no clause" is right


def _ann(cid, category, impossible):
    return {
        "contract_id": cid,
        "category": category,
        "question": f"Is there a {category} clause?",
        "is_impossible": impossible,
        "answer_starts": [] if impossible else [0],
        "answer_ends": [] if impossible else [5],
    }


def test_unanswerable_questions_are_train_split_and_stable():
    anns = [
        _ann("k1", "Non-Compete", True),
        _ann("k1", "Governing Law", False),
        _ann("e1", "Audit", True),
        _ann("k1", "Audit", True),
    ]
    rows = unanswerable_questions(anns, CONTRACTS, "train", n=5)
    assert {r["category"] for r in rows} == {"Non-Compete", "Audit"} and all(r["gold_answers"] == [] for r in rows)
    assert rows == unanswerable_questions(list(reversed(anns)), CONTRACTS, "train", n=5)
    assert len(unanswerable_questions(anns, CONTRACTS, "train", n=1)) == 1


def test_no_clause_count_makes_the_share():
    assert no_clause_count(30, 0.25) == 10  # 10 of 40 rows
    assert no_clause_count(30, 0.0) == 0
    with pytest.raises(ValueError, match="share"):
        no_clause_count(30, 1.0)


def test_sft_rows_keep_verbatim_targets_and_add_no_clause_rows():
    qa = [
        {
            "source": "synthetic",
            "id": "a",
            "contract_id": "k1",
            "question": "Which law governs?",
            "answer": "governed by the laws of the State of New York.",
            "context": CONTRACT,
        },
        {
            "source": "synthetic",
            "id": "b",
            "contract_id": "k1",
            "question": "When is payment due?",
            "answer": "payment is due within a month",
            "context": CONTRACT,
        },  # paraphrase: dropped
        {"source": "seed", "id": "c", "contract_id": "e1", "question": "Q?", "answer": "Payment", "context": ""},
    ]
    none = unanswerable_questions([_ann("k1", "Audit", True), _ann("k1", "Non-Compete", True)], CONTRACTS, "train", 5)
    rows, stats = sft_rows(qa, none, CONTRACTS, lambda q, c, k: ["Notices shall be sent by mail."], 3, 2000, 0.5)
    assert stats["dropped_not_verbatim"] == 1 and stats["dropped_not_train"] == 1
    assert [r["source"] for r in rows] == ["synthetic", "no_clause"]  # share 0.5 of 2 rows: one no-clause row
    assert rows[0]["answer"] in CONTRACT and rows[1]["answer"] == NO_CLAUSE
    assert all(r["prompt"][0]["content"] == QUOTE_INSTRUCTION for r in rows)
    assert "governed by the laws" in rows[0]["prompt"][1]["content"]  # the source passage is always in the prompt


def test_wrong_window_is_the_best_bm25_window_that_is_not_gold():
    passages = [CONTRACT]
    window = wrong_window("Which state's laws govern this Agreement?", [GOLD], passages)
    assert window and correct(window, [GOLD]) == 0.0 and window in CONTRACT
    assert "Agreement" in window  # ranked by BM25 for the question, not the first sentence of the passage
    assert wrong_window("Q?", [GOLD], [GOLD]) is None  # only the gold window: nothing wrong to offer


def test_preference_pairs_reject_a_wrong_window_and_a_wrong_model_answer():
    base = {
        "question_id": "q1",
        "contract_id": "k1",
        "question": "Which state's laws govern this Agreement?",
        "prompt_json": "[]",
        "gold_answer": GOLD,
        "gold_answers": [GOLD],
        "passages_json": json.dumps([CONTRACT]),
    }
    cands = [
        {**base, "answer": "Payment is due in thirty days.", "grade": 0.05},
        {**base, "answer": GOLD, "grade": 0.95},
    ]
    windows = window_candidates(cands)
    assert len(windows) == 1 and windows[0]["source"] == "bm25_window"
    pairs, stats = build_preference_pairs(cands + windows, margin=0.3, max_pairs_per_question=3)
    assert {p["rejected_source"] for p in pairs} == {"ai", "bm25_window"}
    assert all(p["chosen"] == GOLD for p in pairs) and stats["pairs"] == 2
    # A human rating still outranks an AI grade of the same answer.
    human = [
        {"contract_id": "k1", "question": base["question"], "answer": "Payment is due in thirty days.", "score": 0.9}
    ]
    pairs, stats = build_preference_pairs(cands + windows, human, margin=0.3, max_pairs_per_question=3)
    assert stats["human_overrides"] == 1 and "Payment is due in thirty days." not in {p["rejected"] for p in pairs}


def test_unanswerable_question_pairs_choose_no_clause():
    base = {
        "question_id": "q2",
        "contract_id": "k1",
        "question": "Is there a non-compete clause?",
        "prompt_json": "[]",
        "gold_answer": NO_CLAUSE,
        "gold_answers": [],
        "passages_json": json.dumps([CONTRACT]),
    }
    windows = window_candidates([{**base, "answer": NO_CLAUSE, "grade": 1.0}])
    pairs, _ = build_preference_pairs([{**base, "answer": NO_CLAUSE, "grade": 1.0}] + windows, margin=0.3)
    assert len(pairs) == 1 and pairs[0]["chosen"] == NO_CLAUSE and pairs[0]["rejected"] in CONTRACT


def test_categories_without_train_gold_are_named():
    from selfinstruct.finetune.examples import categories_without_gold

    anns = [_ann("k1", "Audit", True), _ann("e1", "Audit", False), _ann("k1", "Governing Law", False)]
    assert categories_without_gold(anns, CONTRACTS) == ["Audit"]  # the eval-split gold does not count
    assert categories_without_gold(anns, CONTRACTS, "eval") == []


def test_grade_rows_blend_the_judge_with_correctness_and_fall_back_to_correctness():
    from types import SimpleNamespace

    from selfinstruct.finetune.preferences import grade_rows

    rows = [
        {"candidate_id": "a", "answer": GOLD, "gold_answers": [GOLD]},
        {"candidate_id": "b", "answer": NO_CLAUSE, "gold_answers": [GOLD]},
        {"candidate_id": "c", "answer": NO_CLAUSE, "gold_answers": []},
    ]
    judged = grade_rows(rows, [SimpleNamespace(score=0.8, critique="", missing_reason=None)] * 3, judge_weight=0.5)
    assert [r["grade"] for r in judged] == pytest.approx([0.9, 0.4, 0.9])
    assert [r["correct"] for r in judged] == [1.0, 0.0, 1.0]
    alone = grade_rows(rows, [None] * 3)
    assert [r["grade"] for r in alone] == [1.0, 0.0, 1.0] and alone[0]["judge_missing_reason"] == "no judge"


def test_is_right_is_the_one_rule_the_judge_labels_and_the_benchmark_use():
    from selfinstruct.answering import Answer, Span
    from selfinstruct.benchmark.methods import score
    from selfinstruct.judging.trained_judge import judge_rows

    q = {"gold_answers": [GOLD], "has_clause": True, "short_answer": None}
    assert score(q, Answer.of(Span(GOLD), 1.0))["right"] == correct(GOLD, [GOLD]) == 1.0
    assert score(q, Answer.none())["right"] == correct("", [GOLD]) == 0.0
    none_q = {"gold_answers": [], "has_clause": False, "short_answer": None}
    assert score(none_q, Answer.none())["right"] == correct(NO_CLAUSE, []) == 1.0
    rows = [
        {"question": "Q?", "answer": NO_CLAUSE, "gold_answers": []},
        {"question": "Q?", "answer": GOLD, "gold_answers": []},
    ]
    assert judge_rows(None, rows) == [correct(r["answer"], r["gold_answers"]) for r in rows] == [1.0, 0.0]
