"""Seed, synthetic QA, RAG programs and their held-out evaluation, materialised with a fake LM."""

import json

import dagster as dg
import duckdb
from fakes import FakeLLMResource

from resources.project import EmbedderResource
from selfinstruct_assets.constants import CORPUS, RAG, RETRIEVAL, SYNTHETIC
from selfinstruct_assets.definitions import ALL_CHECKS, ASSETS, default_resources


def test_rag_group_end_to_end(small_cuad, home):
    resources = {**default_resources(), "embedder": EmbedderResource(backend="hashing"), "llm": FakeLLMResource()}
    config = {
        "ops": {
            "cuad_corpus": {"config": {"uri": str(small_cuad)}},
            "synthetic_qa": {"config": {"n_chunks": 6}},
            "optimized_rag_program": {"config": {"n_train_questions": 4}},
            "rag_eval": {"config": {"n_questions": 5}},
            "retriever_model": {"config": {"enabled": False}},
        }
    }  # its training has its own tests
    # The fine-tuning group is left out: it would train on the default (real) base model.
    selection = dg.AssetSelection.groups(CORPUS, RETRIEVAL, SYNTHETIC, RAG)
    result = dg.materialize(ASSETS + ALL_CHECKS, resources=resources, run_config=config, selection=selection)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["optimized_demos_held_out"] and checks["synthetic_qa_held_out"]
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        split = dict(conn.execute("select contract_id, split from cuad_contracts").fetchall())
        seeds = conn.execute("select contract_id from seed_qa").fetchall()
        assert seeds and {split[c] for (c,) in seeds} == {"train"}
        (kept,) = conn.execute("select count(*) from synthetic_qa").fetchone()
        (rejected,) = conn.execute("select count(*) from synthetic_qa_rejects").fetchone()
        assert kept + rejected == 6 and kept >= 1
        rows = conn.execute("select method, contract_id, judge_score from rag_eval").fetchall()
        assert {m for m, _, _ in rows} == {"standard_rag", "optimized_rag"}
        assert {split[c] for _, c, _ in rows} == {"eval"}
        assert all(s == 0.8 for _, _, s in rows)
        summary = conn.execute("select method, n, judge_score from rag_eval_summary order by method").fetchall()
        assert [(m, n) for m, n, _ in summary] == [("optimized_rag", 5), ("standard_rag", 5)]
    program = json.loads((home / "artifacts" / "optimized_rag_program.json").read_text())
    assert program["generate"]["demos"], "the compiled program carries few-shot demos"
