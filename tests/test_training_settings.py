"""Trainer settings: defaults, validation with the field's name, nested LoRA settings, and the CPU precision."""

import pytest
import torch

from selfinstruct.core.cpu import cpu_has_bf16
from training._common import resolve_device
from training.config import DPOSettings, GRPOSettings, LoraSettings, ORPOSettings, SFTSettings, settings_from_dict


def test_settings_defaults():
    # The measured defaults the assets trained with (issue 10: one set of defaults, in training.config).
    assert (
        SFTSettings().learning_rate,
        DPOSettings().learning_rate,
        ORPOSettings().learning_rate,
        GRPOSettings().learning_rate,
    ) == (1e-3, 5e-5, 1e-3, 1e-5)
    assert DPOSettings().beta == ORPOSettings().beta == 0.1 and GRPOSettings().num_generations == 4
    s = SFTSettings()
    assert (s.lora.r, s.lora.alpha, s.lora.dropout) == (16, 32, 0.05)
    assert s.lora.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert (s.epochs, s.max_steps, s.batch_size, s.grad_accum, s.max_length, s.device) == (3.0, -1, 1, 4, 768, "auto")
    g = GRPOSettings()
    assert (g.epochs, g.max_steps, g.batch_size, g.grad_accum) == (1.0, 8, 4, 4)
    # The run budget's memory lever, where it was measured to pay (benchmarks/RESULTS.md): SFT, DPO and ORPO.
    assert DPOSettings().activation_checkpointing is True and ORPOSettings().activation_checkpointing is True
    assert s.activation_checkpointing is True and g.activation_checkpointing is False


@pytest.mark.parametrize("on", [True, False])
def test_activation_checkpointing_reaches_the_trainer_arguments(on, tmp_path):
    from transformers import TrainingArguments

    from training._common import common_args

    args = common_args(DPOSettings(activation_checkpointing=on), str(tmp_path), {"use_cpu": True})
    assert TrainingArguments(**args).activation_checkpointing is on


@pytest.mark.parametrize(
    "cls, kwargs, field",
    [
        (SFTSettings, {"learning_rate": 0.0}, "learning_rate"),
        (SFTSettings, {"learning_rate": 5.0}, "learning_rate"),
        (SFTSettings, {"epochs": -1.0}, "epochs"),
        (SFTSettings, {"max_steps": 0}, "max_steps"),
        (SFTSettings, {"batch_size": 0}, "batch_size"),
        (SFTSettings, {"grad_accum": 1.5}, "grad_accum"),
        (SFTSettings, {"max_length": 4}, "max_length"),
        (SFTSettings, {"device": "tpu"}, "device"),
        (SFTSettings, {"precision": "fp16"}, "precision"),
        (SFTSettings, {"logging_steps": 0}, "logging_steps"),
        (DPOSettings, {"activation_checkpointing": "yes"}, "activation_checkpointing"),
        (DPOSettings, {"beta": 0.0}, "beta"),
        (ORPOSettings, {"beta": -1.0}, "beta"),
        (GRPOSettings, {"num_generations": 1}, "num_generations"),
        (GRPOSettings, {"batch_size": 6, "grad_accum": 1, "num_generations": 4}, "num_generations"),
        (GRPOSettings, {"temperature": 0.0}, "temperature"),
        (LoraSettings, {"r": 0}, "lora.r"),
        (LoraSettings, {"dropout": 1.0}, "lora.dropout"),
        (LoraSettings, {"target_modules": []}, "lora.target_modules"),
    ],
)
def test_settings_reject_out_of_range_values(cls, kwargs, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        cls(**kwargs)


def test_settings_from_dict_builds_nested_lora_and_rejects_unknown_keys():
    s = settings_from_dict("dpo", {"beta": 0.3, "lora": {"r": 4, "target_modules": ["q_proj"]}})
    assert isinstance(s, DPOSettings) and s.beta == 0.3 and s.lora.r == 4 and s.lora.target_modules == ("q_proj",)
    with pytest.raises(ValueError, match="unknown sft setting.*bogus"):
        settings_from_dict("sft", {"bogus": 1})
    with pytest.raises(ValueError, match="unknown lora setting.*rank"):
        settings_from_dict("sft", {"lora": {"rank": 4}})
    with pytest.raises(ValueError, match="unknown trainer 'ppo'"):
        settings_from_dict("ppo", {})
    with pytest.raises(ValueError, match="beta"):
        settings_from_dict("sft", {"beta": 0.1})  # beta belongs to the preference trainers


def test_cpu_training_autocasts_bf16_only_when_asked_or_native():
    assert resolve_device("cpu", "float32") == ("cpu", torch.float32, {"use_cpu": True, "bf16": False, "fp16": False})
    assert resolve_device("cpu", "bfloat16") == ("cpu", torch.float32, {"use_cpu": True, "bf16": True, "fp16": False})
    assert resolve_device("cpu", "auto")[2]["bf16"] == cpu_has_bf16()  # master weights stay float32 either way


@pytest.mark.parametrize("kind", ["sft", "dpo", "orpo", "grpo"])
def test_cli_defaults_are_the_asset_defaults(kind):
    """`python -m training KIND` with no settings trains what the KIND_adapter asset trains by default."""
    from selfinstruct_assets.finetune import adapter_assets
    from selfinstruct_assets.finetune.train_config import to_settings

    config = {
        "sft": adapter_assets.SftConfig,
        "dpo": adapter_assets.DpoConfig,
        "orpo": adapter_assets.OrpoConfig,
        "grpo": adapter_assets.GrpoConfig,
    }[kind]()
    assert to_settings(kind, config) == settings_from_dict(kind, {})


def test_asset_config_fields_carry_the_settings_help():
    from selfinstruct_assets.finetune.adapter_assets import DpoConfig

    fields = DpoConfig.model_fields
    assert fields["beta"].description == DPOSettings.__dataclass_fields__["beta"].metadata["help"]
    assert fields["lora_r"].description == LoraSettings.__dataclass_fields__["r"].metadata["help"]


def test_training_imports_nothing_above_it():
    """training/ stands alone: importing all of it loads no Dagster, resources or assets module."""
    import subprocess
    import sys

    code = (
        "import sys, training, training.config, training._common, training.trainers, training.__main__\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'resources', 'selfinstruct_assets'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
