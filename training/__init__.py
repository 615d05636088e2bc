"""Dagster-free LoRA training: base model folders, trainer settings, and SFT/DPO/ORPO/GRPO runs on trl.

    HF_HUB_OFFLINE=1 python -m training sft --config sft.json

`config` holds the settings dataclasses, `trainers` the `train_*` functions that publish one adapter folder
each, `job` the rows-and-config files a launcher hands to `python -m training`, `s3_files` the S3 staging a GPU
node uses. Base model folders, publishing and the reward metric come from `selfinstruct.core`; nothing here
imports Dagster, `resources` or `selfinstruct_assets` (under Pipes, `__main__` loads the separate `dagster_pipes`).
"""
