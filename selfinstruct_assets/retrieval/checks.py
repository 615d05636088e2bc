"""Blocking checks: the vector index holds exactly one vector per chunk; the fine-tuned retriever saw no
eval-split contract (`trained_only_on_train` serves every trained model)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from resources.project import ChromaResource, EmbedderResource

from ..corpus.checks import scalar
from ..known import existing_tables


@dg.asset_check(asset="vector_index", blocking=True, description="index count equals chunk count",
                additional_deps=["contract_chunks"])
def index_matches_chunks(duckdb: DuckDBResource, embedder: EmbedderResource,
                         chroma: ChromaResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        added = "added_contract_chunks" in existing_tables(lambda sql: conn.execute(sql).fetchall())
    chunks = scalar(duckdb, "select count(*) from contract_chunks")
    # Contracts added through the inbox share the collection (see intake/contract_assets.py).
    chunks += scalar(duckdb, "select count(*) from added_contract_chunks") if added else 0
    indexed = chroma.store(embedder.get()).collection().count()
    return dg.AssetCheckResult(passed=chunks == indexed, metadata={"chunks": chunks, "indexed": indexed})


def trained_only_on_train(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource, asset: str,
                          metrics_file: str) -> dg.AssetCheckResult:
    """Shared by the trained-model checks: the contracts the model's metrics file lists are all train-split."""
    from ..evaluation.trained_judge import trained_contracts
    from ..locations import recorded_path

    path = recorded_path(context.instance, asset)
    trained = trained_contracts(path, metrics_file) if path is not None else None
    if trained is None:
        # The packaged model (a fallback) or nothing published: no CUAD contract was trained on.
        return dg.AssetCheckResult(passed=True, metadata={"trained_contracts": 0, "note": "no trained model recorded"})
    with duckdb.get_connection() as conn:
        eval_ids = {r[0] for r in conn.execute("select contract_id from cuad_contracts where split = 'eval'").fetchall()}
    leaked = sorted(set(trained) & eval_ids)
    return dg.AssetCheckResult(passed=not leaked, metadata={"trained_contracts": len(trained),
                                                            "eval_split_contracts": len(leaked),
                                                            "examples": ", ".join(leaked[:5])})


@dg.asset_check(asset="retriever_model", blocking=True, additional_deps=["cuad_contracts"],
                description="the fine-tuned retriever was trained on train-split contracts only")
def retriever_model_train_only(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    from .retriever_training import METRICS_FILE

    return trained_only_on_train(context, duckdb, "retriever_model", METRICS_FILE)


RETRIEVAL_CHECKS = [index_matches_chunks, retriever_model_train_only]
