"""candidate_ceiling: a right window among the top n counts, a missing one or an unanswerable question does not."""

import pytest

from selfinstruct.answering.right import is_right
from selfinstruct.answering.windows import top_windows
from selfinstruct.benchmark.ceiling import candidate_ceiling

LAW = "This Agreement shall be governed by the laws of the State of New York."
NOTICE = "Either party may terminate this Agreement upon thirty (30) days prior written notice."
FILLER = " ".join(f"Section {i}. The parties shall cooperate in good faith on item {i}." for i in range(1, 9))
PASSAGE = f"{FILLER} {LAW} {NOTICE}"


def _q(question: str, golds: list[str]) -> dict:
    return {"question": question, "gold_answers": golds}


def test_counts_answerable_questions_with_a_right_window():
    qs = [
        _q("Which state's law governs the agreement?", [LAW]),
        _q("Is there a non-compete clause?", ["The Distributor shall not sell competing products."]),  # not there
        _q("Is there an audit right?", []),  # unanswerable: not counted
        _q("Which law governs?", [LAW]),  # nothing retrieved: a miss
    ]
    got = candidate_ceiling(qs, [[PASSAGE], [PASSAGE], [PASSAGE], []], n_windows=0)
    assert got["candidate_ceiling_answerable"] == 3 and got["candidate_ceiling_hits"] == 1
    assert got["candidate_ceiling"] == pytest.approx(1 / 3)
    assert 0 < got["candidate_ceiling_low"] < 1 / 3 < got["candidate_ceiling_high"] < 1


def test_the_window_prefilter_bounds_the_ceiling():
    # BM25 ranks the filler sentences first for this wording, so one kept window misses the notice clause.
    q = _q("Must the parties cooperate in good faith on each item?", [NOTICE])
    (best,) = top_windows(q["question"], [PASSAGE], 1)
    assert not is_right(best.text, [NOTICE])
    assert candidate_ceiling([q], [[PASSAGE]], n_windows=1)["candidate_ceiling"] == 0.0
    assert candidate_ceiling([q], [[PASSAGE]], n_windows=0)["candidate_ceiling"] == 1.0


def test_no_answerable_question_gives_none():
    got = candidate_ceiling([_q("Is there an audit right?", [])], [[PASSAGE]], n_windows=6)
    assert got["candidate_ceiling"] is None and got["candidate_ceiling_answerable"] == 0
