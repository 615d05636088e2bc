"""CUAD contracts, annotations and rejects; contract chunks."""

import time

import dagster as dg
import polars as pl
from pydantic import Field

from resources.project import ProjectHome
from resources.s3 import client_for
from selfinstruct.corpus.chunking import chunk_contracts
from selfinstruct.corpus.cuad import load_cuad
from selfinstruct.corpus.source import cuad_uri_from_env, open_cuad_source
from selfinstruct_assets.constants import CORPUS, DUCKDB_POOL
from selfinstruct_assets.contract_tables import CHUNK_SCHEMA, CONTRACT_SCHEMA, ChunkConfig

ANNOTATION_SCHEMA = {
    "contract_id": pl.Utf8,
    "category": pl.Utf8,
    "question": pl.Utf8,
    "answer_texts": pl.List(pl.Utf8),
    "answer_starts": pl.List(pl.Int64),
    "answer_ends": pl.List(pl.Int64),
    "n_unlocated": pl.Int64,
    "normalized_answer": pl.Utf8,
    "is_impossible": pl.Boolean,
}
REJECT_SCHEMA = {"source": pl.Utf8, "row": pl.Int64, "reason": pl.Utf8, "action": pl.Utf8}


class CuadConfig(dg.Config):
    uri: str = Field(
        "",
        description="path, folder, http(s) or s3:// URI of CUAD; empty = SELFINSTRUCT_CUAD_URI, "
        "else ../shared/cuad/CUAD_v1.zip",
    )
    eval_fraction: float = Field(
        0.2,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="share of contracts held out for evaluation (by hash of contract_id)",
    )
    max_contracts: int = Field(
        0,
        ge=0,
        description="keep only the first N contracts by contract_id (0 = all): ids are hashes of file names, so "
        "a stable pseudo-random sample of both splits; the quick demo profile uses one",
    )


@dg.multi_asset(
    group_name=CORPUS,
    pool=DUCKDB_POOL,
    outs={
        "cuad_contracts": dg.AssetOut(description="One row per CUAD contract: text, sha256 and train/eval split."),
        "cuad_annotations": dg.AssetOut(
            description="One row per (contract, category): question, gold clauses and their offsets."
        ),
        "cuad_rejects": dg.AssetOut(description="CUAD rows and files that were skipped or repaired, with the reason."),
    },
)
def cuad_corpus(context: dg.AssetExecutionContext, config: CuadConfig, home: ProjectHome):
    """Read CUAD into contracts, annotations and counted rejects."""
    uri = config.uri or cuad_uri_from_env()
    t0 = time.perf_counter()
    archive = open_cuad_source(uri, home.subdir("cache"), s3_client=client_for(uri))
    try:
        corpus = load_cuad(archive, eval_fraction=config.eval_fraction)
    finally:
        archive.close()
    contracts = corpus.contracts[: config.max_contracts] if config.max_contracts else corpus.contracts
    keep = {c["contract_id"] for c in contracts}
    annotations = [a for a in corpus.annotations if a["contract_id"] in keep]
    for r in corpus.rejects:
        context.log.warning(f"CUAD reject: {r['source']} row {r['row']}: {r['reason']} ({r['action']})")
    # What was actually read: a remote URI's own cached copy, identified by its content hash.
    stats = {
        **corpus.stats,
        "source": archive.uri,
        "read_from": archive.location,
        "source_sha256": archive.sha256 or "(a folder)",
        "seconds": round(time.perf_counter() - t0, 2),
        "contracts_kept": len(contracts),
    }
    yield dg.Output(
        pl.DataFrame(contracts, schema=CONTRACT_SCHEMA),
        output_name="cuad_contracts",
        metadata={**stats, "dagster/row_count": len(contracts)},
    )
    yield dg.Output(
        pl.DataFrame(annotations, schema=ANNOTATION_SCHEMA),
        output_name="cuad_annotations",
        metadata={
            "dagster/row_count": len(annotations),
            "answerable": sum(not a["is_impossible"] for a in annotations),
            "clause_pieces_unlocated": sum(a["n_unlocated"] for a in annotations),
        },
    )
    yield dg.Output(
        pl.DataFrame(corpus.rejects, schema=REJECT_SCHEMA),
        output_name="cuad_rejects",
        metadata={
            "dagster/row_count": len(corpus.rejects),
            "skipped": sum(r["action"] == "skipped" for r in corpus.rejects),
            "repaired": sum(r["action"] == "repaired" for r in corpus.rejects),
        },
    )


@dg.asset(pool=DUCKDB_POOL, group_name=CORPUS)
def contract_chunks(config: ChunkConfig, cuad_contracts: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Overlapping character chunks of every contract, with content-addressed ids."""
    rows = chunk_contracts(
        cuad_contracts.select("contract_id", "text").iter_rows(named=True), config.chunk_size, config.chunk_overlap
    )
    df = pl.DataFrame(rows, schema=CHUNK_SCHEMA)
    return dg.Output(
        df,
        metadata={
            "dagster/row_count": len(df),
            "chunk_size": config.chunk_size,
            "chunk_overlap": config.chunk_overlap,
            "mean_chars": float(df["text"].str.len_chars().mean() or 0),
        },
    )
