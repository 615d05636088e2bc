"""Trainer settings: defaults, validation with the field's name, nested LoRA settings, and the CPU precision."""

import pytest
import torch

from resources.cpu import cpu_has_bf16
from training._common import resolve_device
from training.config import DPOSettings, GRPOSettings, LoraSettings, ORPOSettings, SFTSettings, settings_from_dict


def test_settings_defaults():
    assert (SFTSettings().learning_rate, DPOSettings().learning_rate, ORPOSettings().learning_rate,
            GRPOSettings().learning_rate) == (2e-4, 5e-5, 8e-5, 1e-5)
    assert DPOSettings().beta == ORPOSettings().beta == 0.1 and GRPOSettings().num_generations == 4
    s = SFTSettings()
    assert (s.lora.r, s.lora.alpha, s.lora.dropout) == (8, 16, 0.05)
    assert s.lora.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
    assert (s.epochs, s.max_steps, s.batch_size, s.grad_accum, s.max_length, s.device) == (1.0, -1, 4, 1, 768, "auto")


@pytest.mark.parametrize("cls, kwargs, field", [
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
    (DPOSettings, {"beta": 0.0}, "beta"),
    (ORPOSettings, {"beta": -1.0}, "beta"),
    (GRPOSettings, {"num_generations": 1}, "num_generations"),
    (GRPOSettings, {"batch_size": 6, "num_generations": 4}, "num_generations"),
    (GRPOSettings, {"temperature": 0.0}, "temperature"),
    (LoraSettings, {"r": 0}, "lora.r"),
    (LoraSettings, {"dropout": 1.0}, "lora.dropout"),
    (LoraSettings, {"target_modules": []}, "lora.target_modules"),
])
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
