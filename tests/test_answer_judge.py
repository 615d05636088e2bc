"""The answer judge: the no-clause convention settled without the model, training on the train split only with a
held-out report and a calibrated threshold, its asset and blocking check, its fallback, and ai_feedback with and
without it."""

import json
from types import SimpleNamespace

import dagster as dg
import numpy as np
import polars as pl
import pytest
from dagster_duckdb import DuckDBResource
from toy_contracts import ANNOTATIONS, CONTRACTS, HUMAN_ROWS, QUESTIONS, SENTENCES

from resources.duckdb_tables import DuckDBTablesIOManager
from resources.project import ProjectHome
from selfinstruct.answering import NO_CLAUSE
from selfinstruct.judging.trained_judge import judge_rows, trained_contracts
from training.judge import JudgeTrainSettings, fit_answer_judge


class FixedJudge:
    def __init__(self, value):
        self.value, self.asked = value, []

    def score(self, questions, candidates, golds):
        self.asked += list(candidates)
        return np.full(len(candidates), self.value, dtype=np.float32)


def test_judge_rows_settle_no_clause_without_the_model():
    judge = FixedJudge(0.7)
    rows = [
        {"question": "Q1?", "answer": NO_CLAUSE, "gold_answers": []},  # right: no clause, none said
        {"question": "Q2?", "answer": "Some clause.", "gold_answers": []},  # wrong: quotes where there is none
        {"question": "Q3?", "answer": NO_CLAUSE, "gold_answers": ["Gold."]},  # wrong: denies a clause
        {"question": "Q4?", "answer": "Some clause.", "gold_answers": ["Gold."]},
    ]
    assert judge_rows(judge, rows) == pytest.approx([1.0, 0.0, 0.0, 0.7])
    assert judge.asked == ["Some clause."]


def test_answer_judge_trains_on_train_split_and_reports_held_out_agreement(tmp_path):
    out = fit_answer_judge(
        ANNOTATIONS,
        CONTRACTS,
        tmp_path / "j",
        JudgeTrainSettings(max_steps=1, batch_size=4),
        per_question=4,
        max_heldout=20,
    )
    assert out["trained_contracts"] == ["t1", "t2", "t3"]
    assert trained_contracts(out["model_dir"]) == ["t1", "t2", "t3"]
    report = out["heldout"]
    assert 0 < report["n"] <= 20 and set(report) >= {"agreement", "kappa", "auroc"}
    saved = json.loads((tmp_path / "j" / "judge_metrics.json").read_text())
    assert saved["heldout"] == report


def test_threshold_is_the_cut_with_the_best_kappa():
    from selfinstruct.judging.trained_judge import calibrate_threshold

    # Uncalibrated: every score is above 0.5, so 0.5 says "match" to all (kappa 0); the cut near 0.8 separates.
    scores = [0.91, 0.88, 0.86, 0.84, 0.72, 0.70, 0.66, 0.62] * 3
    labels = [1, 1, 1, 1, 0, 0, 0, 0] * 3
    t = calibrate_threshold(scores, labels)
    assert 0.72 < t <= 0.84
    assert calibrate_threshold([0.2, 0.9], [0, 1]) == 0.5


def test_answer_judge_asset_and_its_blocking_check(tmp_path):
    from selfinstruct_assets.evaluation.assets import answer_judge
    from selfinstruct_assets.evaluation.checks import answer_judge_train_only
    from selfinstruct_assets.held_out import trained_only_on_train

    @dg.asset(name="cuad_contracts")
    def contracts() -> pl.DataFrame:
        return pl.DataFrame(CONTRACTS)

    @dg.asset(name="cuad_annotations")
    def annotations() -> pl.DataFrame:
        return pl.DataFrame(ANNOTATIONS)

    @dg.asset(name="human_feedback")
    def human_feedback() -> pl.DataFrame:
        return pl.DataFrame(HUMAN_ROWS)

    db = str(tmp_path / "db.duckdb")
    resources = {
        "io_manager": DuckDBTablesIOManager(database=db, schema="main"),
        "home": ProjectHome(path=str(tmp_path)),
        "duckdb": DuckDBResource(database=db),
    }
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [contracts, annotations, human_feedback, answer_judge, answer_judge_train_only],
        resources=resources,
        instance=instance,
        run_config={"ops": {"answer_judge": {"config": {"max_steps": 1, "per_question": 4, "max_heldout": 20}}}},
    )
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["trained_contracts"].value == 3
    md = result.asset_materializations_for_node("answer_judge")[0].metadata
    assert md["path"].value.endswith("answer_judge") and md["n_heldout"].value > 0
    # The reviewer's correction on t1 says the served sentence is wrong: one human row, trained on; e1's is not.
    assert (md["human_examples"].value, md["human_examples_trained"].value) == (1, 1)
    assert (md["feedback_used"].value, md["feedback_ignored_eval_split"].value) == (1, 1)
    # ai_feedback finds the judge through the recorded path and scores only the quotes it cannot settle.
    from selfinstruct_assets.finetune.candidate_assets import FeedbackConfig, ai_feedback

    cands = pl.DataFrame(
        [
            {
                "candidate_id": "a",
                "question": QUESTIONS[0][1],
                "gold_answer": QUESTIONS[0][0],
                "gold_answers": [QUESTIONS[0][0]],
                "answer": SENTENCES[3],
            },
            {
                "candidate_id": "b",
                "question": "Audit?",
                "gold_answer": NO_CLAUSE,
                "gold_answers": [],
                "answer": NO_CLAUSE,
            },
        ]
    )
    fb = ai_feedback(dg.build_asset_context(instance=instance), FeedbackConfig(), cands, None)
    assert fb.metadata["judge"].value.startswith("trained:")
    first, second = fb.value.to_dicts()
    assert 0 <= first["judge_score"] <= 1 and first["correct"] == 0.0 and second["judge_score"] == 1.0
    # A judge folder that lists an eval-split contract fails the check.
    meta = tmp_path / "models" / "answer_judge" / "judge_metrics.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "trained_contracts": ["t1", "e1"]}))
    check = trained_only_on_train(
        SimpleNamespace(instance=instance), DuckDBResource(database=db), "answer_judge", "judge_metrics.json"
    )
    assert not check.passed and check.metadata["eval_split_contracts"].value == 1


def test_answer_judge_that_cannot_train_records_a_fallback_without_a_path(tmp_path):
    from selfinstruct_assets.evaluation.assets import AnswerJudgeConfig, answer_judge

    no_gold = [
        {**a, "is_impossible": True, "answer_texts": [], "answer_starts": [], "answer_ends": []} for a in ANNOTATIONS
    ]
    result = answer_judge(
        dg.build_asset_context(),
        AnswerJudgeConfig(),
        pl.DataFrame(CONTRACTS),
        pl.DataFrame(no_gold),
        pl.DataFrame(HUMAN_ROWS),
        ProjectHome(path=str(tmp_path)),
    )
    assert result.metadata["fallback"] is True and "both labels" in result.metadata["reason"]
    assert "path" not in result.metadata


def test_ai_feedback_without_a_judge_grades_by_correctness():
    from selfinstruct_assets.finetune.candidate_assets import FeedbackConfig, ai_feedback

    gold = SENTENCES[0]
    rows = pl.DataFrame(
        [
            {
                "candidate_id": "q1:base",
                "question": "Which law?",
                "gold_answer": gold,
                "gold_answers": [gold],
                "answer": gold,
            },
            {
                "candidate_id": "q2:base",
                "question": "Non-compete?",
                "gold_answer": NO_CLAUSE,
                "gold_answers": [],
                "answer": SENTENCES[1],
            },
        ]
    )
    out = ai_feedback(dg.build_asset_context(instance=dg.DagsterInstance.ephemeral()), FeedbackConfig(), rows, None)
    assert out.value["grade"].to_list() == [1.0, 0.0] and out.value["judge_score"].null_count() == 2
    assert "correctness only" in out.metadata["judge"].value
