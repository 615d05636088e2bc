"""Dagster-free LoRA training: base model folders, trainer settings, and SFT/DPO/ORPO/GRPO runs on trl.

    HF_HUB_OFFLINE=1 python -m training sft --config sft.json

`config` holds the settings dataclasses, `trainers` the `train_*` functions that publish one adapter folder
each. Base model folders, publishing and the reward metric come from `selfinstruct_core`; nothing here
imports Dagster, `resources` or `selfinstruct_assets`.
"""
