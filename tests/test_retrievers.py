"""The retrievers: the hybrid default stays in the contract and is what retrieval_eval measures; the fine-tuned one
trains on train-split contracts only, is chosen only when published, and falls back to the packaged model
(recording no path) when it cannot train."""

import dagster as dg
import polars as pl
import pytest
from toy_contracts import ANNOTATIONS, CONTRACTS, QUESTIONS, TEXT, _chunks

from resources.duckdb_tables import DuckDBTablesIOManager
from resources.project import ChromaResource, EmbedderResource, ProjectHome
from selfinstruct.judging.trained_judge import trained_contracts
from selfinstruct.retrieval.model import packaged_model_path
from selfinstruct.retrieval.retriever import make_retriever
from training.retriever import RetrieverTrainSettings, fit_retriever


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
