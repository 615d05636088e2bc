"""Jobs the sensors launch: each selects exactly the assets its trigger affects, nothing upstream of them."""

import dagster as dg

from selfinstruct_assets.constants import (
    BENCHMARK,
    CORPUS,
    DRIFT,
    EVALUATION,
    FINETUNE,
    INTAKE,
    RAG,
    RETRIEVAL,
    SERVING,
    SYNTHETIC,
)
from selfinstruct_assets.partitions import ADDED_CONTRACTS

ADDED = dg.AssetSelection.assets("added_contracts", "added_contract_chunks", "added_contract_index")
TRAIN_AND_GATE_ASSETS = (
    "preference_pairs",
    "dpo_adapter",
    "orpo_adapter",
    "benchmark_scores",
    "benchmark_answers",
    "serving_candidate",
    "promotion_decisions",
    "serving_model",
)
FEEDBACK_ASSETS = ("human_feedback", "feedback_rejects")
REGENERATE_ASSETS = (
    "synthetic_qa",
    "synthetic_qa_rejects",
    "sft_dataset",
    "sft_adapter",
    "rag_responses",
    "ai_feedback",
    "grpo_adapter",
    *FEEDBACK_ASSETS,
    *TRAIN_AND_GATE_ASSETS,
)
QUERY_LOG_ASSETS = ("query_log", "query_log_rejects")
TRAIN_AND_GATE = dg.AssetSelection.assets(*TRAIN_AND_GATE_ASSETS)
FEEDBACK = dg.AssetSelection.assets(*FEEDBACK_ASSETS)
EVERY_GROUP = dg.AssetSelection.groups(
    CORPUS, RETRIEVAL, SYNTHETIC, RAG, EVALUATION, FINETUNE, BENCHMARK, INTAKE, DRIFT, SERVING
)

main_job = dg.define_asset_job(
    "main_job",
    selection=EVERY_GROUP - ADDED,
    description="Every asset on the embedded defaults, as `make demo` runs it (added contracts come by sensor).",
)

feedback_refresh_job = dg.define_asset_job(
    "feedback_refresh_job",
    selection=FEEDBACK | TRAIN_AND_GATE,
    description="New feedback: human_feedback -> preference_pairs -> DPO/ORPO -> benchmark_scores -> serving gate.",
)

contract_refresh_job = dg.define_asset_job(
    "contract_refresh_job",
    selection=ADDED,
    partitions_def=ADDED_CONTRACTS,
    description="One new contract (a partition): its row, its chunks and their vectors; nothing else.",
)

query_log_job = dg.define_asset_job(
    "query_log_job",
    selection=dg.AssetSelection.assets(*QUERY_LOG_ASSETS),
    description="New production queries read from the query inbox (drift_report follows by automation).",
)

# retriever_model, answer_judge and rerank_judge are trained by main_job only (CUAD's train split, plus reviewers'
# gold rows for the judges): no loop job retrains them, so a correction reaches the judges at the next main_job,
# the SFT rows at the next regenerate_job and the preference pairs at the next feedback refresh.
regenerate_job = dg.define_asset_job(
    "regenerate_job",
    selection=dg.AssetSelection.assets(*REGENERATE_ASSETS),
    description="Drift: new synthetic QA -> SFT -> candidates -> AI feedback -> DPO/ORPO -> benchmark -> gate.",
)

LOOP_JOBS = [feedback_refresh_job, contract_refresh_job, query_log_job, regenerate_job]

# The assets each sensor-launched job materialises, by job name: their ops run with the config the user last ran
# them with (loop/last_config.py), so a refresh keeps the chosen profile.
JOB_ASSETS = {
    feedback_refresh_job.name: FEEDBACK_ASSETS + TRAIN_AND_GATE_ASSETS,
    regenerate_job.name: REGENERATE_ASSETS,
    query_log_job.name: QUERY_LOG_ASSETS,
}
