"""benchmark_scores materialised for real on a small CUAD, the hashing embedder and the tiny model."""

import dagster as dg
import duckdb
import polars as pl

from resources.project import EmbedderResource
from selfinstruct_assets.definitions import ASSETS, default_resources

CONFIG = {"n_questions": 6, "n_windows": 3, "judge": "none", "n_boot": 200}


def test_benchmark_scores_answers_every_question_with_every_method(small_cuad, home, tiny):
    resources = {**default_resources(base_model=str(tiny)), "embedder": EmbedderResource(backend="hashing")}
    with dg.instance_for_test() as instance:
        index = dg.materialize(
            ASSETS,
            instance=instance,
            resources=resources,
            selection=dg.AssetSelection.assets(
                "cuad_contracts", "cuad_annotations", "cuad_rejects", "contract_chunks", "vector_index"
            ),
            run_config={"ops": {"cuad_corpus": {"config": {"uri": str(small_cuad)}}}},
        )
        assert index.success
        with duckdb.connect(str(home / "selfinstruct.duckdb")) as conn:  # rag_eval as the RAG group leaves it
            empty = pl.DataFrame(schema={"method": pl.Utf8, "question_id": pl.Utf8, "answer": pl.Utf8}).to_arrow()  # noqa: F841
            conn.execute("create table rag_eval as select * from empty")
        result, again = (
            dg.materialize(
                ASSETS,
                instance=instance,
                resources=resources,
                selection=dg.AssetSelection.assets("benchmark_scores", "benchmark_answers"),
                run_config={"ops": {"benchmark_scores": {"config": CONFIG}}},
            )
            for _ in range(2)
        )
    assert result.success and again.success
    md = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == "benchmark_scores"
    )
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        scores = {
            r[0]: r[1:]
            for r in conn.execute(
                "select method, n, n_answerable + n_unanswerable, cuad_match, cuad_match_low, detection_f1 "
                "from benchmark_scores where run_id = ?",
                [result.run_id],
            ).fetchall()
        }
        answers = conn.execute(
            "select method, count(*), count(distinct question_id) from benchmark_answers where run_id = ? "
            "group by method order by method",
            [result.run_id],
        ).fetchall()
        splits = dict(conn.execute("select contract_id, split from cuad_contracts").fetchall())
        asked = {c for (c,) in conn.execute("select distinct contract_id from benchmark_answers").fetchall()}
    n = md["n"].value
    assert set(scores) == {"bm25_sentence", "base", "oracle_retrieval"} and 0 < n <= 6
    assert all(s[0] == s[1] == n for s in scores.values())  # every question counted, answerable or not
    assert answers == [(m, n, n) for m in ("base", "bm25_sentence", "oracle_retrieval")]
    assert {splits[c] for c in asked} == {"eval"}  # held-out contracts only
    assert md["n_answerable"].value + md["n_unanswerable"].value == n
    assert ("cuad_match/base" in md) == (scores["base"][2] is not None)
    # Choosing among the windows cannot beat the share of questions where some window is right.
    assert md["candidate_ceiling_answerable"].value == md["n_answerable"].value > 0
    assert scores["base"][2] <= md["candidate_ceiling"].value <= 1
    assert md["judge"].value == "none" and "detection_f1" in md["scores"].value
    assert md["retriever"].value.startswith("hybrid")  # no retriever_model was trained here
    # The second run scored nothing again: the same models on the same questions and passages read back.
    md2 = next(
        e.materialization.metadata
        for e in again.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == "benchmark_scores"
    )
    # (in the first run, the oracle's answers to unanswerable questions are the base model's: the same passages)
    assert md["cache_hits"].value == md["n_unanswerable"].value and md["cache_misses"].value > 0
    assert (
        md2["cache_misses"].value == 0 and md2["cache_hits"].value == md["cache_hits"].value + md["cache_misses"].value
    )
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        runs = conn.execute(
            "select run_id, list(answer order by question_id) from benchmark_answers where method = 'base' "
            "group by run_id"
        ).fetchall()
        cached = conn.execute("select count(*) from benchmark_answer_cache").fetchone()[0]
    assert len(runs) == 2 and runs[0][1] == runs[1][1] and cached == md["cache_misses"].value
