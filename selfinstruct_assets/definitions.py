"""Wires assets, checks, jobs, sensors and resources; nothing else lives here.

Resources resolve SELFINSTRUCT_HOME when a step runs. Two overrides are read when the definitions load:
SELFINSTRUCT_BASE_MODEL (a local model folder every local LM role and the trainers use, e.g. a tiny model
for a smoke run) and SELFINSTRUCT_EMBEDDER (minilm, titan or hashing).
"""

import dagster as dg

from resources.duckdb_tables import DuckDBTablesIOManager, DuckDBWriter
from resources.llm import LLMResource, LMSpec
from resources.project import BaseModelResource, ChromaResource, EmbedderResource, InboxResource, ProjectHome
from resources.s3 import ArtifactsResource
from resources.training_launcher import TrainingLauncher
from selfinstruct.core import settings
from selfinstruct.core.paths import duckdb_path
from selfinstruct_assets.benchmark import assets as scores
from selfinstruct_assets.corpus import assets as corpus_assets
from selfinstruct_assets.corpus.checks import CORPUS_CHECKS
from selfinstruct_assets.drift import assets as drift_assets
from selfinstruct_assets.evaluation import assets as evaluation_assets
from selfinstruct_assets.evaluation.checks import EVALUATION_CHECKS
from selfinstruct_assets.executors import executor_for
from selfinstruct_assets.finetune import adapter_assets, candidate_assets, data_assets, pair_assets
from selfinstruct_assets.finetune.checks import FINETUNE_CHECKS
from selfinstruct_assets.intake import assets as intake_assets
from selfinstruct_assets.intake import contract_assets
from selfinstruct_assets.loop.jobs import (
    LOOP_JOBS,
    contract_refresh_job,
    feedback_refresh_job,
    main_job,
    query_log_job,
    regenerate_job,
)
from selfinstruct_assets.loop.sensors import drift_sensor, feedback_sensor, new_contracts_sensor
from selfinstruct_assets.memory_hooks import RELEASE_HOOKS
from selfinstruct_assets.rag import assets as rag_assets
from selfinstruct_assets.rag.checks import RAG_CHECKS
from selfinstruct_assets.retrieval import assets as retrieval_assets
from selfinstruct_assets.retrieval import model_assets as retriever_model_assets
from selfinstruct_assets.retrieval.checks import RETRIEVAL_CHECKS
from selfinstruct_assets.serving import assets as serving_assets
from selfinstruct_assets.serving.checks import SERVING_CHECKS
from selfinstruct_assets.synthetic import assets as synthetic_assets

# Every asset releases the memory its step freed (memory_hooks), in every job and in the UI's materialisations.
ASSETS = [
    a.with_hooks(RELEASE_HOOKS) if isinstance(a, dg.AssetsDefinition) else a
    for a in dg.load_assets_from_modules(
        [
            corpus_assets,
            retrieval_assets,
            retriever_model_assets,
            synthetic_assets,
            rag_assets,
            data_assets,
            candidate_assets,
            pair_assets,
            evaluation_assets,
            adapter_assets,
            scores,
            intake_assets,
            contract_assets,
            drift_assets,
            serving_assets,
        ]
    )
]
ALL_CHECKS = CORPUS_CHECKS + RETRIEVAL_CHECKS + RAG_CHECKS + EVALUATION_CHECKS + FINETUNE_CHECKS + SERVING_CHECKS
SENSORS = [
    feedback_sensor(feedback_refresh_job),
    new_contracts_sensor(contract_refresh_job),
    drift_sensor(query_log_job, regenerate_job),
]
# drift_report's automation condition is evaluated by this sensor, on by default like the loop's sensors.
AUTOMATION = dg.AutomationConditionSensorDefinition(
    "loop_automation_sensor",
    target=dg.AssetSelection.assets("drift_report"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)


def default_resources(database: str | None = None, base_model: str = "", embedder: str = "minilm") -> dict:
    database = database or duckdb_path()
    local = {"model": base_model} if base_model else {}
    return {
        "io_manager": DuckDBTablesIOManager(database=database, schema="main"),
        "duckdb": DuckDBWriter(database=database),  # dagster-duckdb's resource behind the project's writer lock
        "home": ProjectHome(),
        "base_model": BaseModelResource(path=base_model),
        "inbox": InboxResource(),
        "embedder": EmbedderResource(backend=embedder),
        "chroma": ChromaResource(),
        "artifacts": ArtifactsResource(),  # SELFINSTRUCT_ARTIFACTS (a folder or s3://BUCKET/PREFIX), read when a step runs
        "training": TrainingLauncher(),  # python -m training through Dagster Pipes, in a subprocess
        "llm": LLMResource(
            generator=LMSpec(max_tokens=96, **local),
            teacher=LMSpec(max_tokens=96, **local),
            judge=LMSpec(max_tokens=48, **local),
        ),
    }


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=[main_job, *LOOP_JOBS],
        sensors=[*SENSORS, AUTOMATION],
        resources=default_resources(
            base_model=settings.get("SELFINSTRUCT_BASE_MODEL"), embedder=settings.get("SELFINSTRUCT_EMBEDDER")
        ),
        executor=executor_for(),
    )
