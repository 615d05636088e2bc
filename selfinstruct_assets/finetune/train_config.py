"""Dagster `Config` classes for the adapter assets, generated from `training.config`'s settings dataclasses.

    SftConfig = config_class("sft")            # fields, defaults and help text of SFTSettings (lora_* flattened)
    settings = to_settings("sft", config)      # back to an SFTSettings, validated by its __post_init__

Defaults and help text live once, on the dataclass fields, so `python -m training sft` with no settings
trains what `sft_adapter` trains; the Launchpad shows the same help as `training/config.py`.
"""

from dataclasses import MISSING, fields
from typing import Any

import dagster as dg
from pydantic import Field, create_model

from training.config import SETTINGS, LoraSettings, TrainSettings

LORA_PREFIX = "lora_"  # LoRA settings appear flat in the Launchpad: lora_r, lora_alpha, ...


def _default(f) -> Any:
    value = f.default_factory() if f.default is MISSING else f.default
    return list(value) if isinstance(value, tuple) else value


def _annotation(f) -> Any:
    # Dagster config knows lists, not variadic tuples; `from __future__ import annotations` leaves strings.
    return {"int": int, "float": float, "str": str, "bool": bool, "tuple[str, ...]": list[str]}[str(f.type)]


def _fields(cls, prefix: str = "") -> dict[str, tuple]:
    out = {}
    for f in fields(cls):
        if f.name == "lora":
            out.update(_fields(LoraSettings, LORA_PREFIX))
            continue
        out[prefix + f.name] = (_annotation(f), Field(default=_default(f), description=f.metadata.get("help")))
    return out


def config_class(kind: str, name: str, **extra: tuple) -> type[dg.Config]:
    """A `dg.Config` subclass with one field per setting of trainer `kind`, plus `extra` (name=(type, Field))."""
    return create_model(name, __base__=dg.Config, __doc__=SETTINGS[kind].__doc__, **_fields(SETTINGS[kind]), **extra)


def to_settings(kind: str, config: dg.Config) -> TrainSettings:
    """The trainer's settings object from a config made by `config_class(kind, ...)`; extras are dropped."""
    names = {f.name for f in fields(SETTINGS[kind])}
    lora_names = {f.name for f in fields(LoraSettings)}
    values = config.model_dump()
    settings = {k: v for k, v in values.items() if k in names and k != "lora"}
    settings["lora"] = {
        k[len(LORA_PREFIX) :]: v
        for k, v in values.items()
        if k.startswith(LORA_PREFIX) and k[len(LORA_PREFIX) :] in lora_names
    }
    return SETTINGS[kind](**{**settings, "lora": LoraSettings(**settings["lora"])})
