"""Wires assets, checks, jobs and resources; nothing else lives here.

Resources resolve SELFINSTRUCT_HOME when a step runs, so loading these definitions reads no settings.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource
from resources.duckdb_tables import DuckDBTablesIOManager

from resources.llm import LLMResource
from resources.project import ChromaResource, EmbedderResource, ProjectHome, duckdb_path

from .checks import CHECKS
from .constants import CORPUS, FINETUNE, RAG, RETRIEVAL, SYNTHETIC
from .corpus import assets as corpus_assets
from .finetune import adapter_assets, data_assets, scores
from .finetune.checks import FINETUNE_CHECKS
from .rag import assets as rag_assets
from .rag.checks import RAG_CHECKS
from .retrieval import assets as retrieval_assets
from .synthetic import assets as synthetic_assets

ASSETS = dg.load_assets_from_modules([corpus_assets, retrieval_assets, synthetic_assets, rag_assets, data_assets,
                                      adapter_assets, scores])
ALL_CHECKS = CHECKS + RAG_CHECKS + FINETUNE_CHECKS

main_job = dg.define_asset_job(
    "main_job", selection=dg.AssetSelection.groups(CORPUS, RETRIEVAL, SYNTHETIC, RAG, FINETUNE),
    description="Every asset on the embedded defaults, as `make demo` runs it.")

def default_resources(database: str | None = None) -> dict:
    database = database or duckdb_path()
    return {
        "io_manager": DuckDBTablesIOManager(database=database, schema="main"),
        "duckdb": DuckDBResource(database=database),
        "home": ProjectHome(),
        "embedder": EmbedderResource(),
        "chroma": ChromaResource(),
        "llm": LLMResource(),
    }

@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=[main_job],
        resources=default_resources(),
        # One process: the DuckDB file has a single writer and torch loads once per run.
        executor=dg.in_process_executor,
    )
