"""The library's one held-out guard (selfinstruct.core.held_out), as the training-data builders use it."""

import pytest

from selfinstruct.core.held_out import EvalSplitLeak, eval_leaks, refuse_eval_contracts


def test_leaks_are_named_sorted_and_capped_at_five():
    eval_ids = {f"e{i}" for i in range(7)}
    assert eval_leaks(["t1", "e3", "e1", "e3"], eval_ids) == ["e1", "e3"]
    refuse_eval_contracts(["t1", "t2"], eval_ids, "rows")  # train-split only: nothing raised
    with pytest.raises(EvalSplitLeak, match=r"rows include 7 eval-split contract\(s\): e0, e1, e2, e3, e4 and 2 more"):
        refuse_eval_contracts(sorted(eval_ids) + ["t1"], eval_ids, "rows")


def test_both_training_data_builders_refuse_with_it():
    from selfinstruct.judging.judge_candidates import build_judge_examples
    from selfinstruct.retrieval.pairs import build_pairs

    ann = {"contract_id": "e1", "question": "Q?", "is_impossible": False, "answer_starts": [0], "answer_ends": [5]}
    with pytest.raises(EvalSplitLeak, match="judge training rows include 1 eval-split contract"):
        build_judge_examples([ann], [{"contract_id": "e1", "text": "x" * 50}], eval_contract_ids={"e1"})
    with pytest.raises(EvalSplitLeak, match="annotations include 1 eval-split contract"):
        build_pairs([ann], [], {"e1"})
