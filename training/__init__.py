"""Dagster-free training: SFT/DPO/ORPO/GRPO LoRA runs on trl, and the MiniLM retriever and answer judge.

    HF_HUB_OFFLINE=1 python -m training sft --config sft.json
    HF_HUB_OFFLINE=1 python -m training retriever --config retriever.json

`config` holds the LoRA settings dataclasses, `trainers` the `train_*` functions that publish one adapter folder
each, `retriever` and `judge` a settings dataclass and a train function each for the sentence-transformers
models, `job` the rows-and-config files a launcher hands to `python -m training`, `s3_files` the S3 staging a
GPU node uses. Base model folders, publishing and the reward metric come from `selfinstruct.core`; nothing here
imports Dagster, `resources` or `selfinstruct_assets` (under Pipes, `__main__` loads the separate `dagster_pipes`).
"""
