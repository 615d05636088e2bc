"""The hybrid default retriever, the fine-tuned retriever and answer judge (train split only, fallbacks),
the judge's no-clause convention and the synthetic quality report."""

import json
from types import SimpleNamespace

import dagster as dg
import numpy as np
import polars as pl
import pytest
from dagster_duckdb import DuckDBResource

from resources.duckdb_tables import DuckDBTablesIOManager
from resources.project import ChromaResource, EmbedderResource, ProjectHome
from selfinstruct.answering import NO_CLAUSE
from selfinstruct.judging.trained_judge import judge_rows, trained_contracts
from selfinstruct.retrieval.model import packaged_model_path
from selfinstruct.retrieval.retriever import make_retriever
from selfinstruct.synthetic.quality import quality_report
from training.judge import JudgeTrainSettings, fit_answer_judge
from training.retriever import RetrieverTrainSettings, fit_retriever

SENTENCES = [
    "This Agreement shall be governed by the laws of the State of New York.",
    "Payment is due in thirty days after the invoice date.",
    "Either party may terminate this Agreement upon ninety days written notice.",
    "Each party shall keep the other party's information confidential.",
    "Notices shall be sent by registered mail to the addresses above.",
    "The Distributor shall not sell competing products in the Territory.",
]
TEXT = " ".join(SENTENCES * 2)


def _chunks(cid, size=80):
    return [
        {
            "chunk_id": f"{cid}:{i}",
            "contract_id": cid,
            "start": i,
            "end": min(len(TEXT), i + size),
            "text": TEXT[i : i + size],
        }
        for i in range(0, len(TEXT), size // 2)
    ]


def _ann(cid, sentence, question):
    start = TEXT.index(sentence)
    return {
        "contract_id": cid,
        "category": question[:12],
        "question": question,
        "is_impossible": False,
        "answer_texts": [sentence],
        "answer_starts": [start],
        "answer_ends": [start + len(sentence)],
    }


CONTRACTS = [
    {"contract_id": c, "split": s, "text": TEXT}
    for c, s in (("t1", "train"), ("t2", "train"), ("t3", "train"), ("e1", "eval"))
]
QUESTIONS = [
    (SENTENCES[0], "Which state's law governs the contract?"),
    (SENTENCES[2], "Can a party terminate?"),
    (SENTENCES[1], "When is payment due?"),
    (SENTENCES[5], "Is there a non-compete?"),
]
ANNOTATIONS = [_ann(c["contract_id"], s, q) for c in CONTRACTS for s, q in QUESTIONS]
# human_feedback rows: a reviewer's correction (as serving.ratings writes it) on a train and on an eval contract.
HUMAN_ROWS = [
    {
        "event_id": f"{i:016x}-correct-0000000{i}",
        "question": "Which law applies?",
        "answer": SENTENCES[0],
        "contract_id": cid,
        "score": 1.0,
        "comment": f"reviewer: ana; request {i:016x} answered by a1; correction of the served answer: {SENTENCES[3]}",
        "source": "human",
        "file": "review.jsonl",
        "line": i,
        "split": split,
    }
    for i, (cid, split) in enumerate((("t1", "train"), ("e1", "eval")), 1)
]


def test_hybrid_retriever_stays_in_the_contract_and_finds_a_keyword_match(tmp_path):
    embedder, chroma = EmbedderResource(backend="hashing"), ChromaResource(path=str(tmp_path))
    other = [{**c, "chunk_id": "x" + c["chunk_id"], "contract_id": "other"} for c in _chunks("t1")]
    chroma.store(embedder.get()).sync(_chunks("t1") + other)
    hybrid, dense = make_retriever(embedder, chroma), make_retriever(embedder, chroma, method="dense")
    got = hybrid("registered mail notices", "t1", 2)
    assert len(got) == 2 and any("registered mail" in p for p in got)
    assert set(got) <= {c["text"] for c in _chunks("t1")}
    assert len(dense("registered mail notices", "t1", 3)) == 3
    assert hybrid("anything", "no-such-contract", 3) == []
    with pytest.raises(ValueError, match="hybrid"):
        make_retriever(embedder, chroma, method="sparse")


def test_the_served_hybrid_is_the_hybrid_retrieval_eval_measures(tmp_path):
    from selfinstruct.retrieval.evaluate import Question
    from selfinstruct.retrieval.hybrid import rank_hybrid

    embedder, chroma = EmbedderResource(backend="hashing"), ChromaResource(path=str(tmp_path))
    store = chroma.store(embedder.get())
    store.sync(_chunks("t1"))
    got = store.collection().get(where={"contract_id": "t1"}, include=["documents"])
    by_id = {c["chunk_id"]: c for c in _chunks("t1")}
    indexed = [by_id[i] for i in got["ids"]]  # the index's order, as make_retriever reads them
    served = make_retriever(embedder, chroma)
    for _, question in QUESTIONS:
        [spans] = rank_hybrid([Question("t1", "x", question, ())], indexed, embedder.get().embed, 4)
        assert served(question, "t1", 4) == [TEXT[s:e] for s, e in spans]


def test_fine_tuned_retriever_ranks_with_its_own_model_and_is_chosen_only_when_published(tmp_path):
    from selfinstruct_assets.retrievers import retriever_for

    embedder, chroma = EmbedderResource(backend="hashing"), ChromaResource(path=str(tmp_path))
    chroma.store(embedder.get()).sync(_chunks("t1"))
    # The packaged MiniLM stands in for a fine-tuned folder: same format, and unlike the hashing embedder it
    # knows "sell competing products" answers a non-compete question with no shared word.
    tuned = make_retriever(embedder, chroma, model_dir=packaged_model_path())
    [top] = tuned("Is the distributor barred from rival goods?", "t1", 1)
    assert "competing products" in top
    retrieve, which = retriever_for(dg.DagsterInstance.ephemeral(), embedder, chroma)
    assert which.startswith("hybrid") and "no model" in which and len(retrieve("registered mail", "t1", 2)) == 2


def test_retriever_without_train_pairs_falls_back_to_the_packaged_model(tmp_path):
    only_eval = [a for a in ANNOTATIONS if a["contract_id"] == "e1"]
    out = fit_retriever(only_eval, _chunks("e1"), CONTRACTS, tmp_path / "r")
    assert out["fallback"] and "0 annotations" in out["reason"]
    assert out["model_dir"] == str(packaged_model_path()) and not (tmp_path / "r").exists()


def test_retriever_trains_on_train_split_contracts_only(tmp_path):
    chunks = [c for cid in ("t1", "t2", "t3", "e1") for c in _chunks(cid)]
    out = fit_retriever(
        ANNOTATIONS, chunks, CONTRACTS, tmp_path / "r", RetrieverTrainSettings(max_steps=1, batch_size=4, max_pairs=8)
    )
    assert not out["fallback"] and out["steps"] == 1
    assert trained_contracts(out["model_dir"], "retriever_metrics.json") == ["t1", "t2", "t3"]


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
    assert calibrate_threshold([0.2, 0.9], [0, 1]) == 0.5  # already perfect at 0.5: kept


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
    from selfinstruct_assets.finetune.data_assets import FeedbackConfig, ai_feedback

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


def test_quality_report_counts_reasons_duplicates_and_located_answers():
    contracts = {"t1": {"contract_id": "t1", "text": TEXT}}
    kept = [
        {"contract_id": "t1", "question": "Which law governs?", "answer": SENTENCES[0]},
        {"contract_id": "t1", "question": "When is payment due?", "answer": SENTENCES[1]},
        {"contract_id": "t1", "question": "What?", "answer": "a paraphrase found nowhere"},
    ]
    rejected = [
        {"reason": "near-duplicate question (cosine 0.95)"},
        {"reason": "near-duplicate question (cosine 0.93)"},
        {"reason": "answer not grounded in context"},
    ]
    r = quality_report(kept + rejected, kept, rejected, contracts, [_ann("t1", SENTENCES[0], "Which law?")])
    assert r["rejected_by_reason"] == {"near-duplicate question": 2, "answer not grounded in context": 1}
    assert r["duplicate_rate"] == pytest.approx(2 / 6)
    assert r["located_share"] == pytest.approx(2 / 3) and r["cuad_clause_share"] == pytest.approx(1 / 3)
    assert quality_report([], [], [], contracts)["kept"] == 0


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


def test_retriever_model_fallback_records_no_path_and_retrieval_stays_hybrid(tmp_path):
    from selfinstruct_assets.retrieval.model_assets import RetrieverModelConfig, retriever_model
    from selfinstruct_assets.retrievers import trained_retriever

    @dg.asset(name="cuad_contracts")
    def contracts() -> pl.DataFrame:
        return pl.DataFrame(CONTRACTS)

    @dg.asset(name="cuad_annotations")
    def annotations() -> pl.DataFrame:
        return pl.DataFrame([a for a in ANNOTATIONS if a["contract_id"] == "e1"])  # no train-split pair

    @dg.asset(name="contract_chunks")
    def chunks() -> pl.DataFrame:
        return pl.DataFrame(_chunks("e1"))

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [contracts, annotations, chunks, retriever_model],
        instance=instance,
        resources={
            "io_manager": DuckDBTablesIOManager(database=str(tmp_path / "db.duckdb"), schema="main"),
            "home": ProjectHome(path=str(tmp_path)),
        },
    )
    md = result.asset_materializations_for_node("retriever_model")[0].metadata
    assert md["fallback"].value is True and "no (question, gold chunk) pairs" in md["reason"].value
    assert "path" not in md
    assert trained_retriever(instance) == (None, "retriever_model fell back to the packaged model")
    off = retriever_model(
        dg.build_asset_context(),
        RetrieverModelConfig(enabled=False),
        pl.DataFrame(CONTRACTS),
        pl.DataFrame(ANNOTATIONS),
        pl.DataFrame(_chunks("t1")),
        ProjectHome(path=str(tmp_path)),
    )
    assert off.metadata == {"fallback": True, "reason": "disabled by config (enabled: false)"}


def test_ai_feedback_without_a_judge_grades_by_correctness():
    from selfinstruct_assets.finetune.data_assets import FeedbackConfig, ai_feedback

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


def test_main_job_selects_the_model_assets_and_the_loop_jobs_do_not_retrain_them():
    from selfinstruct_assets.definitions import defs
    from selfinstruct_assets.loop.jobs import LOOP_JOBS

    d = defs()
    main = {k.to_user_string() for k in d.resolve_job_def("main_job").asset_layer.executable_asset_keys}
    assert {"retriever_model", "answer_judge", "retrieval_eval", "ai_feedback"} <= main
    for job in LOOP_JOBS:
        keys = {k.to_user_string() for k in d.resolve_job_def(job.name).asset_layer.executable_asset_keys}
        assert not keys & {"retriever_model", "answer_judge"}, job.name
