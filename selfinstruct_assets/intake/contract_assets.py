"""Contracts added after the CUAD load: one dynamic partition per contract, chunked and indexed on their own.

`new_contracts_sensor` adds a partition for each new contract in the contracts inbox and requests a run
of that partition only, so a new contract costs its own chunks' embeddings, not a rebuild of the index.
"""

import time

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource
from pydantic import Field

from resources.project import ChromaResource, EmbedderResource, InboxResource
from selfinstruct.core.known import read_known, sha_index
from selfinstruct.corpus.chunking import chunk_contracts
from selfinstruct.intake.contract_inbox import contract_by_id
from selfinstruct_assets.constants import DUCKDB_POOL, INTAKE
from selfinstruct_assets.contract_tables import CHUNK_SCHEMA, CONTRACT_SCHEMA, ChunkConfig
from selfinstruct_assets.partitions import ADDED_CONTRACTS

ADDED_SCHEMA = {**CONTRACT_SCHEMA, "inbox_file": pl.Utf8}
_BY_CONTRACT = {"partition_expr": "contract_id"}


class AddedContractConfig(dg.Config):
    eval_fraction: float = Field(
        0.2,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="as cuad_corpus: a contract's split is a hash of its id, wherever it came from",
    )


@dg.asset(group_name=INTAKE, partitions_def=ADDED_CONTRACTS, metadata=_BY_CONTRACT, pool=DUCKDB_POOL)
def added_contracts(
    context: dg.AssetExecutionContext, config: AddedContractConfig, inbox: InboxResource, duckdb: DuckDBResource
) -> dg.Output[pl.DataFrame]:
    """One contract from the contracts inbox (this partition's contract_id), with its sha256 and split."""
    with duckdb.get_connection() as conn:
        known = read_known(lambda sql: conn.execute(sql).fetchall())
    row = contract_by_id(
        inbox.get("contracts"),
        context.partition_key,
        known_sha256=sha_index(known, exclude=context.partition_key),
        eval_fraction=config.eval_fraction,
    )
    df = pl.DataFrame([{k: row[k] for k in ADDED_SCHEMA}], schema=ADDED_SCHEMA)
    return dg.Output(df, metadata={"split": row["split"], "n_chars": row["n_chars"], "inbox_file": row["inbox_file"]})


@dg.asset(group_name=INTAKE, partitions_def=ADDED_CONTRACTS, metadata=_BY_CONTRACT, pool=DUCKDB_POOL)
def added_contract_chunks(config: ChunkConfig, added_contracts: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Chunks of one added contract, cut exactly as contract_chunks cuts CUAD's."""
    rows = chunk_contracts(
        added_contracts.select("contract_id", "text").iter_rows(named=True), config.chunk_size, config.chunk_overlap
    )
    return dg.Output(pl.DataFrame(rows, schema=CHUNK_SCHEMA), metadata={"dagster/row_count": len(rows)})


@dg.asset(pool=DUCKDB_POOL, group_name=INTAKE, partitions_def=ADDED_CONTRACTS)
def added_contract_index(
    context: dg.AssetExecutionContext,
    added_contract_chunks: pl.DataFrame,
    embedder: EmbedderResource,
    chroma: ChromaResource,
) -> dg.MaterializeResult:
    """One added contract's chunks upserted into the vector index; nothing else is embedded or removed."""
    emb = embedder.get()
    store = chroma.store(emb)
    t0 = time.perf_counter()
    stats = store.sync(added_contract_chunks.to_dicts(), scope={"contract_id": context.partition_key})
    return dg.MaterializeResult(
        metadata={
            "added": stats.added,
            "removed": stats.removed,
            "count": stats.total,
            "seconds": round(time.perf_counter() - t0, 2),
            "embedder": emb.name,
        }
    )
