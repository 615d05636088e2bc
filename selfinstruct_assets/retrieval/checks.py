"""Blocking check on the vector index: it holds exactly one vector per chunk."""

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


RETRIEVAL_CHECKS = [index_matches_chunks]
