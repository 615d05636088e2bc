"""Held-out question sampling, per-answer scoring, summaries, optimisation and the demo leak check."""

import dspy
from dspy.utils.dummies import DummyLM

from selfinstruct.rag.evaluate import evaluate_program, sample_questions, summarize
from selfinstruct.rag.optimize import compile_program
from selfinstruct.rag.program import ContractRAG
from selfinstruct_assets.rag.checks import demo_leaks

TEXT = "Preamble text here. This Agreement shall be governed by the laws of the State of Delaware. End."


def _contracts():
    return {"tr": {"split": "train", "text": TEXT}, "ev": {"split": "eval", "text": TEXT.replace("Delaware", "Ohio")}}


def _anns():
    s = TEXT.index("the laws")
    return [
        {
            "contract_id": cid,
            "category": "Governing Law",
            "question": "Which law governs?",
            "is_impossible": False,
            "answer_starts": [s],
            "answer_ends": [s + 30],
        }
        for cid in ("tr", "ev")
    ]


def retrieve(question, contract_id, k):
    return [_contracts()[contract_id]["text"]]


def test_sample_questions_respects_split():
    ev = sample_questions(_anns(), _contracts(), "eval", 10)
    assert [q["contract_id"] for q in ev] == ["ev"]
    assert ev[0]["gold_answers"] == [_contracts()["ev"]["text"][TEXT.index("the laws") : TEXT.index("the laws") + 30]]


def test_evaluate_scores_answers_and_records_missing_judge_scores():
    questions = sample_questions(_anns(), _contracts(), "eval", 10)
    gen = DummyLM([{"answer": "the State of Ohio"}])
    judge = DummyLM([{"score": "not a number", "critique": "?"}, {"retrieved": "yes"}] * 3)
    with dspy.context(lm=gen):
        rows = evaluate_program("standard_rag", ContractRAG(retrieve), questions, judge)
    [row] = rows
    assert row["cuad_match"] == 1.0 and row["exact_match"] == 0.0
    assert row["judge_score"] is None and row["judge_missing_reason"]
    [summary] = summarize(rows)
    assert summary["judge_missing"] == 1 and summary["judge_score"] is None and summary["cuad_match"] == 1.0


def test_compile_uses_train_questions_and_demo_check_finds_eval_text():
    train = sample_questions(_anns(), _contracts(), "train", 10)
    gen = DummyLM([{"answer": "the laws of the State of Delaware"}] * 20)
    with dspy.context(lm=gen):
        compiled = compile_program(ContractRAG(retrieve), train, judge_lm=None, max_demos=1)
    assert compiled.generate.demos, "the optimiser should keep a demo that scored"
    state = compiled.dump_state()
    eval_texts = [_contracts()["ev"]["text"]]
    assert demo_leaks(state, eval_texts) == []
    assert demo_leaks(state, [_contracts()["tr"]["text"]]), "a demo from a held-out text must be flagged"
