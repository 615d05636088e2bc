"""rag_eval's judge: answer_judge's cross-encoder by default (no LM judge call), the LM judge, or none."""

import dagster as dg
import dspy
import duckdb
import numpy as np
import polars as pl
import pytest
from dspy.utils.dummies import DummyLM
from fakes import FieldFakeLM

from resources.duckdb_tables import DuckDBTablesIOManager
from resources.llm import LLMResource
from resources.project import ChromaResource, EmbedderResource
from selfinstruct.answering import NO_CLAUSE
from selfinstruct.judging import trained_judge
from selfinstruct.rag.evaluate import evaluate_program, summarize, trained_judgements
from selfinstruct.rag.program import ContractRAG, save_program
from selfinstruct.retrieval.retriever import make_retriever
from selfinstruct_assets.rag.assets import rag_eval

TEXT = (
    "This Agreement shall be governed by the laws of the State of Ohio. Payment is due in thirty days. "
    "Either party may terminate this Agreement upon ninety days written notice."
)
GOLD = "the laws of the State of Ohio"
CONTRACTS = [{"contract_id": "e1", "split": "eval", "text": TEXT}, {"contract_id": "e2", "split": "eval", "text": TEXT}]
ANNOTATIONS = [
    {
        "contract_id": c["contract_id"],
        "category": "Governing Law",
        "question": "Which law governs?",
        "is_impossible": False,
        "answer_starts": [TEXT.index(GOLD)],
        "answer_ends": [TEXT.index(GOLD) + len(GOLD)],
    }
    for c in CONTRACTS
]

GEN, JUDGE = FieldFakeLM(), FieldFakeLM(score="0.8")


class RoleLLM(LLMResource):
    """The generator and the judge roles get different fakes, so judge calls can be counted."""

    def lm(self, role: str) -> dspy.BaseLM:
        self.spec(role)
        return JUDGE if role == "judge" else GEN


class FakeTrainedJudge:
    """Stands in for TrainedJudge: remembers its folder and every batch it scored."""

    made: list = []

    def __init__(self, model_dir, score: float = 0.9):
        self.model_dir, self.threshold, self.value, self.calls = model_dir, 0.6, score, []
        FakeTrainedJudge.made.append(self)

    def score(self, questions, candidates, golds=None):
        self.calls.append((list(questions), list(candidates), golds))
        return np.full(len(questions), self.value, dtype=np.float32)


# ------------------------------------------------------------------------------------------ evaluate_program


def _questions():
    return [
        {
            "question_id": "q1",
            "contract_id": "e1",
            "category": "Governing Law",
            "question": "Which law governs?",
            "gold_answers": [GOLD],
        },
        {
            "question_id": "q2",
            "contract_id": "e1",
            "category": "Audit Rights",
            "question": "Audit?",
            "gold_answers": [],
        },
    ]


def _program():
    return ContractRAG(lambda question, contract_id, k: [TEXT])


def test_evaluate_program_with_a_trained_judge_makes_no_lm_judge_call():
    judge = FakeTrainedJudge("unused")
    with dspy.context(lm=DummyLM([{"answer": "the State of Ohio"}] * 2)):
        rows = evaluate_program("standard_rag", _program(), _questions(), judge)
    scored, no_gold = rows
    assert scored["judge_score"] == pytest.approx(0.9) and scored["judge_missing_reason"] is None
    assert scored["judge_critique"] == "" and scored["retrieval_judged"] is None and scored["judge_flagged"] is False
    assert no_gold["judge_score"] is None and no_gold["judge_missing_reason"] == "no gold clause"
    # One batched call, on the answerable question only, with its gold clause.
    assert judge.calls == [(["Which law governs?"], ["the State of Ohio"], [[GOLD]])]
    [summary] = summarize(rows, judge.threshold)
    assert summary["judge_score"] == pytest.approx(0.9) and summary["judge_missing"] == 1


def test_trained_judgements_settle_a_no_clause_answer_without_the_model():
    judge = FakeTrainedJudge("unused")
    out = trained_judgements(judge, _questions(), [NO_CLAUSE, NO_CLAUSE])
    assert out[0]["judge_score"] == 0.0 and out[0]["judge_missing_reason"] is None  # gold exists: wrong
    assert out[1]["judge_missing_reason"] == "no gold clause"
    assert judge.calls == []


def test_evaluate_program_with_an_lm_judge_calls_it_twice_per_answer():
    JUDGE.calls = 0
    with dspy.context(lm=DummyLM([{"answer": "the State of Ohio"}] * 2)):
        rows = evaluate_program("standard_rag", _program(), _questions()[:1], JUDGE)
    assert JUDGE.calls == 2  # judge_factuality and judge_retrieval
    assert rows[0]["judge_score"] == 0.8 and rows[0]["retrieval_judged"] == 1.0


def test_evaluate_program_refuses_a_judge_that_cannot_score():
    with dspy.context(lm=DummyLM([{"answer": "x"}])), pytest.raises(TypeError, match="trained judge"):
        evaluate_program("standard_rag", _program(), _questions()[:1], object())


# ------------------------------------------------------------------------------------------ the asset


def _run(tmp_path, judge: str, with_answer_judge: bool):
    """rag_eval alone on two eval questions, the programs and (optionally) answer_judge recorded beforehand."""
    embedder, chroma = EmbedderResource(backend="hashing"), ChromaResource(path=str(tmp_path / "chroma"))
    chroma.store(embedder.get()).sync(
        [
            {
                "chunk_id": f"{c['contract_id']}:0",
                "contract_id": c["contract_id"],
                "start": 0,
                "end": len(TEXT),
                "text": TEXT,
            }
            for c in CONTRACTS
        ]
    )
    instance = dg.DagsterInstance.ephemeral()
    for name in ("rag_program", "optimized_rag_program"):
        path = save_program(ContractRAG(make_retriever(embedder, chroma)), tmp_path / f"{name}.json")
        instance.report_runless_asset_event(dg.AssetMaterialization(name, metadata={"path": str(path)}))
    if with_answer_judge:
        (tmp_path / "answer_judge").mkdir()
        instance.report_runless_asset_event(
            dg.AssetMaterialization("answer_judge", metadata={"path": str(tmp_path / "answer_judge")})
        )

    @dg.asset(name="cuad_contracts")
    def contracts() -> pl.DataFrame:
        return pl.DataFrame(CONTRACTS)

    @dg.asset(name="cuad_annotations")
    def annotations() -> pl.DataFrame:
        return pl.DataFrame(ANNOTATIONS)

    db = str(tmp_path / "db.duckdb")
    JUDGE.calls = 0
    result = dg.materialize(
        [contracts, annotations, rag_eval],
        instance=instance,
        resources={
            "io_manager": DuckDBTablesIOManager(database=db, schema="main"),
            "llm": RoleLLM(),
            "embedder": embedder,
            "chroma": chroma,
        },
        run_config={"ops": {"rag_eval": {"config": {"judge": judge}}}},
    )
    assert result.success
    md = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    with duckdb.connect(db, read_only=True) as conn:
        rows = conn.execute(
            "select judge_score, judge_missing_reason, judge_critique, retrieval_judged from rag_eval"
        ).fetchall()
        types = {
            (t, c): d
            for t, c, d in conn.execute(
                "select table_name, column_name, data_type from information_schema.columns"
            ).fetchall()
        }
    return rows, md, types


@pytest.fixture
def fake_trained(monkeypatch):
    FakeTrainedJudge.made = []
    monkeypatch.setattr(trained_judge, "TrainedJudge", FakeTrainedJudge)
    return FakeTrainedJudge.made


def test_rag_eval_trained_scores_with_answer_judge_and_never_calls_the_lm_judge(tmp_path, fake_trained):
    rows, md, types = _run(tmp_path, "trained", with_answer_judge=True)
    assert JUDGE.calls == 0
    [judge] = fake_trained
    assert str(judge.model_dir) == str(tmp_path / "answer_judge") and len(judge.calls) == 2  # one batch per program
    assert len(rows) == 4 and all(r == (pytest.approx(0.9), None, "", None) for r in rows)
    assert md["rag_eval_summary"]["judge"].value == f"trained: {tmp_path / 'answer_judge'}"
    assert md["rag_eval_summary"]["judge_threshold"].value == 0.6
    assert md["rag_eval"]["judge"].value.startswith("trained:")
    assert types["rag_eval", "judge_score"] == "DOUBLE" and types["rag_eval", "retrieval_judged"] == "DOUBLE"
    assert types["rag_eval", "judge_missing_reason"] == "VARCHAR"


def test_rag_eval_trained_falls_back_to_the_lm_judge_without_answer_judge(tmp_path, fake_trained):
    rows, md, _ = _run(tmp_path, "trained", with_answer_judge=False)
    assert fake_trained == [] and JUDGE.calls == 2 * len(rows)
    assert all(score == 0.8 for score, *_ in rows)
    said = md["rag_eval_summary"]["judge"].value
    assert said.startswith("lm: ") and "fallback" in said and "answer_judge" in said


def test_rag_eval_lm_calls_the_lm_judge_even_when_answer_judge_exists(tmp_path, fake_trained):
    rows, md, _ = _run(tmp_path, "lm", with_answer_judge=True)
    assert fake_trained == [] and JUDGE.calls == 2 * len(rows) == 8
    assert all(r[0] == 0.8 and r[3] == 1.0 for r in rows)
    assert (
        md["rag_eval_summary"]["judge"].value.startswith("lm: ")
        and "fallback" not in md["rag_eval_summary"]["judge"].value
    )


def test_rag_eval_none_judges_nothing(tmp_path, fake_trained):
    rows, md, types = _run(tmp_path, "none", with_answer_judge=True)
    assert fake_trained == [] and JUDGE.calls == 0
    assert all(r[0] is None and r[1] == "no judge" for r in rows)
    assert md["rag_eval_summary"]["judge"].value == "none"
    assert types["rag_eval", "judge_score"] == types["rag_eval_summary", "judge_score"] == "DOUBLE"


def test_rag_eval_depends_on_answer_judge_and_main_job_runs_both():
    from selfinstruct_assets.definitions import defs

    assert dg.AssetKey("answer_judge") in rag_eval.asset_deps[dg.AssetKey("rag_eval")]
    main = {k.to_user_string() for k in defs().resolve_job_def("main_job").asset_layer.executable_asset_keys}
    assert {"answer_judge", "rag_eval", "rag_eval_summary"} <= main
