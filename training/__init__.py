"""Dagster-free LoRA training: base model folders, trainer settings, and SFT/DPO/ORPO/GRPO runs on trl.

    HF_HUB_OFFLINE=1 python -m training sft --config sft.json

`base_model` builds the plain HF folders, `config` holds the settings dataclasses, `trainers` the
`train_*` functions that publish one adapter folder each. Nothing here imports Dagster.
"""
