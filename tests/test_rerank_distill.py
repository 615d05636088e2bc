"""judge_rerank (a reference-free judge picks among the windows) and the distillation rows built from its picks.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_rerank_distill.py
"""

import pytest

from selfinstruct.answering import NO_CLAUSE, Span
from selfinstruct.finetune.distill import judge_picked_rows
from selfinstruct.judging.rerank import rerank_answer, rerank_answers

LAW = "This Agreement shall be governed by the laws of the State of New York."
CHUNK = (
    "1. Term. This Agreement begins on the Effective Date and lasts five years. "
    + LAW
    + " Notices go by registered mail to each party."
)


class WordJudge:
    """TrainedJudge's face without gold: P(right) is high when the window mentions 'laws'."""

    use_gold, threshold = False, 0.5

    def __init__(self):
        self.calls = []

    def score(self, questions, candidates, golds=None):
        assert golds is None  # reference-free: it never sees a gold clause
        self.calls.append(len(candidates))
        return [0.9 if "laws" in c and len(c) < 90 else 0.3 for c in candidates]


def test_rerank_picks_the_judges_best_window_and_abstains_below_its_threshold():
    judge = WordJudge()
    windows = [Span("Notices go by mail."), Span(LAW), Span("1. Term. This Agreement begins on the Effective Date.")]
    got = rerank_answer(judge, "Which law governs?", windows)
    assert got.has_clause and got.text == LAW and got.score == pytest.approx(0.9)
    none = rerank_answer(judge, "Which law governs?", windows, threshold=0.95)
    assert not none.has_clause and none.method_detail["best_span"] == LAW
    assert not rerank_answer(judge, "Q?", []).has_clause
    gold_judge = WordJudge()
    gold_judge.use_gold = True
    with pytest.raises(ValueError, match="use_gold=False"):
        rerank_answer(gold_judge, "Q?", windows)
    answers = rerank_answers(judge, [{"question": "Which law governs?"}, {"question": "Q?"}], [[CHUNK], []], 4)
    assert answers[0].text == LAW and answers[1].method_detail["reason"] == "no retrievable text"


def test_distillation_rows_take_the_judges_pick_or_no_clause_and_never_read_gold():
    questions = [
        {
            "question_id": "a",
            "contract_id": "k1",
            "question": "Which state's laws govern?",
            "gold_answers": ["IGNORED"],
        },
        {"question_id": "b", "contract_id": "k1", "question": "Is there an audit clause?"},
        {"question_id": "c", "contract_id": "k1", "question": "Anything?"},
    ]
    strict = WordJudge()
    rows, stats = judge_picked_rows(questions, [[CHUNK], ["Only notices go by mail here."], []], strict, 4)
    assert stats == {"accepted": 1, "abstained": 1, "no_text": 1}
    assert [r["answer"] for r in rows] == [LAW, NO_CLAUSE] and all(r["source"] == "judge" for r in rows)
    assert LAW in rows[0]["prompt"][1]["content"] and rows[0]["rejected"] != LAW
