"""Preference pairs, prompt fitting and the per-method benchmark summary (pure functions)."""

import pytest

from selfinstruct.answering import QUOTE_INSTRUCTION
from selfinstruct.benchmark.summary import summarize_methods
from selfinstruct.finetune.preferences import build_preference_pairs, grade
from selfinstruct.finetune.prompts import fit_passages, quote_prompt


def cand(qid, answer, g, question="Which law governs?", contract="k"):
    return {
        "question_id": qid,
        "contract_id": contract,
        "question": question,
        "prompt_json": "[]",
        "gold_answer": "the laws of Delaware",
        "answer": answer,
        "grade": g,
    }


def test_gold_is_chosen_and_only_answers_below_the_margin_are_rejected():
    cands = [
        cand("q1", "Texas", 0.1),
        cand("q1", "the laws of Delaware.", 0.9),
        cand("q1", "Delaware law", 0.75),
        cand("q1", "New York", 0.2),
        cand("q1", "Ohio", 0.0),
    ]
    pairs, stats = build_preference_pairs(cands, margin=0.3, max_pairs_per_question=2)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [
        ("the laws of Delaware", "Ohio"),
        ("the laws of Delaware", "Texas"),
    ]
    assert all(p["margin"] >= 0.3 for p in pairs) and stats["pairs"] == 2


def test_best_mode_and_questions_without_pairs_are_counted():
    cands = [cand("q1", "A", 0.9), cand("q1", "B", 0.8), cand("q2", "C", 0.5, question="Other?")]
    pairs, stats = build_preference_pairs(cands, margin=0.3, chosen="best")
    assert pairs == [] and stats["questions_without_pair"] == 2
    with pytest.raises(ValueError, match="chosen"):
        build_preference_pairs(cands, chosen="worst")


def test_human_rows_override_ai_grades_and_add_answers():
    cands = [cand("q1", "Texas", 0.9), cand("q1", "Delaware", 0.95)]
    human = [
        {"contract_id": "k", "question": "which law  governs?", "answer": "texas", "score": 0.0},
        {"contract_id": "k", "question": "Which law governs?", "answer": "Nevada", "score": 0.1},
        {"contract_id": "other", "question": "Which law governs?", "answer": "x", "score": 0.0},
    ]
    pairs, stats = build_preference_pairs(cands, human, margin=0.3, chosen="best", max_pairs_per_question=5)
    assert {(p["chosen"], p["rejected"], p["rejected_source"]) for p in pairs} == {
        ("Delaware", "texas", "human"),
        ("Delaware", "Nevada", "human"),
    }
    assert (stats["human_used"], stats["human_unmatched"], stats["human_overrides"]) == (2, 1, 1)


def test_grade_blends_judge_and_f1():
    assert grade(None, 0.4) == 0.4
    assert grade(1.0, 0.0, judge_weight=0.25) == 0.25


def test_fit_passages_keeps_the_source_and_the_budget():
    src = "The Agreement is governed by the laws of Delaware."
    out = fit_passages(["a" * 50, "b" * 50, "c" * 50], max_chars=120, must_include=src)
    assert out[0] == src and sum(map(len, out)) <= 120 + 50
    assert fit_passages(["x" * 500], max_chars=100) == ["x" * 100]
    msgs = quote_prompt("Q?", ["a" * 50, "b" * 50], max_chars=120, must_include=src)
    assert [m["role"] for m in msgs] == ["system", "user"] and src in msgs[1]["content"]
    assert msgs[0]["content"] == QUOTE_INSTRUCTION and "b" * 50 not in msgs[1]["content"]  # within the budget


def test_summary_improvement_against_standard_rag():
    def row(method, judge, cm):
        return {
            "method": method,
            "judge_score": judge,
            "cuad_match": cm,
            "token_f1": cm,
            "exact_match": 0.0,
            "latency_s": 1.0,
        }

    rows = [row("standard_rag", 0.4, 0.2), row("standard_rag", None, 0.2), row("sft", 0.6, 0.5)]
    by = {s["method"]: s for s in summarize_methods(rows)}
    assert by["standard_rag"]["judge_missing"] == 1 and by["standard_rag"]["judge_score"] == 0.4
    assert by["sft"]["improvement_pct"] == pytest.approx(50.0) and by["sft"]["cuad_ratio"] == pytest.approx(2.5)


def test_gold_questions_pair_their_human_gold_unless_a_candidate_asked_them():
    cands = [cand("q1", "Texas", 0.0)]
    asked = {**cand("h1", "", 0), "gold_answer": "human gold", "gold_source": "human"}
    fresh = {**asked, "question_id": "h2", "question": "Who pays?", "gold_answer": "the Buyer pays"}
    human = [{"contract_id": "k", "question": "who pays?", "answer": "the Seller", "score": 0.0}]
    pairs, stats = build_preference_pairs(cands, human, gold_questions=[asked, fresh])
    assert {(p["question_id"], p["chosen"], p["rejected"], p["chosen_source"]) for p in pairs} == {
        ("q1", "the laws of Delaware", "Texas", "gold"),
        ("h2", "the Buyer pays", "the Seller", "human"),
    }
    assert (stats["gold_questions"], stats["questions"], stats["human_unmatched"]) == (1, 2, 0)
