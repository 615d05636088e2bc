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
TRAIN_AND_GATE = dg.AssetSelection.assets(
    "preference_pairs",
    "dpo_adapter",
    "orpo_adapter",
    "benchmark_scores",
    "benchmark_answers",
    "serving_candidate",
    "promotion_decisions",
    "serving_model",
)
FEEDBACK = dg.AssetSelection.assets("human_feedback", "feedback_rejects")
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
    selection=dg.AssetSelection.assets("query_log", "query_log_rejects"),
    description="New production queries read from the query inbox (drift_report follows by automation).",
)

# retriever_model and answer_judge are trained on CUAD's train split, which no loop trigger changes: main_job
# (through the retrieval and finetune groups) trains them; ai_feedback and retrieval_eval read their recorded folders.
regenerate_job = dg.define_asset_job(
    "regenerate_job",
    selection=dg.AssetSelection.assets(
        "synthetic_qa",
        "synthetic_qa_rejects",
        "sft_dataset",
        "sft_adapter",
        "rag_responses",
        "ai_feedback",
        "grpo_adapter",
    )
    | FEEDBACK
    | TRAIN_AND_GATE,
    description="Drift: new synthetic QA -> SFT -> candidates -> AI feedback -> DPO/ORPO -> benchmark -> gate.",
)

LOOP_JOBS = [feedback_refresh_job, contract_refresh_job, query_log_job, regenerate_job]
