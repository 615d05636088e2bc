"""The abstain rule (a margin chosen on train-split answers) and what a benchmark run decides before scoring.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_abstain.py
"""

import pytest

from selfinstruct.answering import Answer, Span
from selfinstruct.benchmark.abstain import NEVER, choose_margin, with_margin
from selfinstruct.benchmark.calibration import calibration_questions, same_weights
from selfinstruct.benchmark.methods import score

GOLD = "The laws of New York govern this Agreement."
WRONG = "Notices shall be sent by registered mail."


def _q(i: int, has: bool) -> dict:
    return {"question_id": f"q{i}", "contract_id": f"c{i}", "gold_answers": [GOLD] if has else [], "has_clause": has}


def _a(text: str, gap: float) -> Answer:
    return Answer.of(Span(text), gap, method="lm", n_candidates=6)


def test_with_margin_turns_low_gap_quotes_into_no_clause_and_keeps_the_span():
    a = _a(GOLD, 0.4)
    assert with_margin(a, 0.5).has_clause is False and with_margin(a, 0.5).method_detail["best_span"] == GOLD
    assert with_margin(a, 0.3) is a and with_margin(a, NEVER) is a
    none = Answer.none(0.0, reason="no retrievable text")
    assert with_margin(none, -1.0) is none  # no clause stays no clause
    row = score(_q(0, True), with_margin(a, 0.5))
    assert row["cuad_match"] == 0.0 and row["quote_cuad_match"] == 1.0  # what abstaining cost on this question


def test_choose_margin_separates_answerable_from_unanswerable_without_losing_matches():
    # Answerable questions get large gaps, unanswerable ones small: a margin between them is perfect.
    qs = [_q(i, i % 2 == 0) for i in range(8)]
    answers = [
        _a(GOLD if q["gold_answers"] else WRONG, 1.0 + i if q["gold_answers"] else -1.0 + i * 0.1)
        for i, q in enumerate(qs)
    ]
    rule = choose_margin(qs, answers)
    assert rule["always_quote_detection_f1"] == pytest.approx(2 / 3)  # always yes: precision 0.5, recall 1
    assert rule["detection_f1"] == 1.0 and rule["cuad_match"] == rule["always_quote_cuad_match"] == 1.0
    assert max(a.score for a, q in zip(answers, qs) if not q["gold_answers"]) <= rule["margin"]
    assert rule["margin"] < min(a.score for a, q in zip(answers, qs) if q["gold_answers"])


def test_choose_margin_never_pays_more_cuad_match_than_allowed():
    # Abstaining below the unanswerable gaps also drops the right answer whose gap is 0.0.
    qs = [_q(i, i < 4) for i in range(8)]
    answers = [_a(GOLD, g) for g in (0.0, 2.0, 3.0, 4.0)] + [_a(WRONG, g) for g in (0.01, 0.02, 0.03, 0.04)]
    rule = choose_margin(qs, answers, max_loss=0.0)
    assert rule["margin"] == NEVER and rule["detection_f1"] == rule["always_quote_detection_f1"]
    looser = choose_margin(qs, answers, max_loss=0.3)
    assert looser["margin"] == 0.04 and looser["cuad_match"] == 0.75
    assert looser["detection_f1"] == pytest.approx(6 / 7) and looser["detection_f1"] > rule["detection_f1"]


def test_choose_margin_refuses_answers_that_already_abstained():
    qs = [_q(0, True)]
    with pytest.raises(ValueError, match="margin -inf"):
        choose_margin(qs, [with_margin(_a(GOLD, 0.1), 0.5)])
    with pytest.raises(ValueError, match="1 questions but 0 answers"):
        choose_margin(qs, [])


def test_calibration_questions_are_train_split_and_never_a_training_row():
    contracts = {
        f"c{i}": {"contract_id": f"c{i}", "split": "train" if i < 4 else "eval", "text": GOLD} for i in range(6)
    }
    anns = [
        {
            "contract_id": c,
            "category": cat,
            "question": f"Is there a {cat} clause?",
            "answer_starts": [0] if cat == "Law" else [],
            "answer_ends": [len(GOLD)] if cat == "Law" else [],
            "normalized_answer": None,
            "is_impossible": cat != "Law",
        }
        for c in contracts
        for cat in ("Law", "Audit")
    ]
    trained = [{"contract_id": "c0", "question": "Is there a  LAW clause?"}]  # spacing and case do not hide it
    cal = calibration_questions(anns, contracts, trained, n=20)
    assert cal and all(contracts[q["contract_id"]]["split"] == "train" for q in cal)
    assert ("c0", "Is there a Law clause?") not in {(q["contract_id"], q["question"]) for q in cal}
    assert len(cal) == 7 and len(calibration_questions(anns, contracts, trained, n=3)) == 3


def test_same_weights_scores_each_adapter_once():
    assert same_weights({"base": "", "sft": "a1", "dpo": "b2", "serving": "a1"}) == {"serving": "sft"}
    assert same_weights({"base": "", "sft": "a1", "orpo": "a1"}) == {"orpo": "sft"}
    assert same_weights({"base": "", "sft": "a1"}) == {}
