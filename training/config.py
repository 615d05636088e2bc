"""Settings for the LoRA trainers: one dataclass per trainer, with help text and range checks.

    from training.config import settings_from_dict
    settings = settings_from_dict("dpo", {"beta": 0.2, "max_steps": 50, "lora": {"r": 16}})

Imports nothing heavy, so a bad config fails before torch or trl is loaded. These defaults are the only
ones: the Dagster assets build their `Config` from these dataclasses (selfinstruct_assets/finetune/
train_config.py), so `python -m training sft` with no settings trains what `sft_adapter` trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from selfinstruct.core.cpu import PRECISIONS

DEVICES = ("auto", "cpu", "cuda")
# Every linear layer of the Llama block, MLP included: attention alone adapts too little of a 135M model.
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _check(name: str, value, low, high, *, low_open: bool = False, high_open: bool = False) -> None:
    """Raise ValueError naming the field and its allowed range unless low <(=) value <(=) high."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise ValueError(f"{name} must be in {lo}{low}, {high}{hi}, got {value!r}")


def _check_int(name: str, value, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    _check(name, value, low, high)


@dataclass
class LoraSettings:
    """Shape of the LoRA adapter."""

    r: int = field(default=16, metadata={"help": "Rank of the LoRA update matrices (1-1024)."})
    alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator; the update is scaled by alpha / r."})
    dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input, in [0, 1)."})
    target_modules: tuple[str, ...] = field(
        default=DEFAULT_TARGET_MODULES,
        metadata={"help": "Names of the linear layers that get an adapter (every linear layer of the Llama block)."},
    )

    def __post_init__(self):
        _check_int("lora.r", self.r, 1, 1024)
        _check("lora.alpha", self.alpha, 0, 1e6, low_open=True)
        _check("lora.dropout", self.dropout, 0.0, 1.0, high_open=True)
        if isinstance(self.target_modules, str) or not self.target_modules:
            raise ValueError(
                f"lora.target_modules must be a non-empty list of module names, got {self.target_modules!r}"
            )
        self.target_modules = tuple(self.target_modules)
        if not all(isinstance(m, str) and m for m in self.target_modules):
            raise ValueError(f"lora.target_modules must hold non-empty strings, got {self.target_modules!r}")


CHECKPOINTING_HELP = (
    "Recompute each layer's activations in the backward pass instead of keeping them: less peak "
    "memory for more time; the trained adapter is the same."
)


@dataclass
class TrainSettings:
    """Knobs every trainer shares; subclasses add their own and change the learning-rate default."""

    lora: LoraSettings = field(default_factory=LoraSettings, metadata={"help": "LoRA adapter shape."})
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak AdamW learning rate, in (0, 1]."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the data; ignored when max_steps > 0."})
    max_steps: int = field(default=-1, metadata={"help": "Optimizer steps to run; -1 means use epochs."})
    # One row per micro-batch: with the vocabulary's 49k logits per token, a batch of 4 DPO pairs peaked at
    # 12 GB on the CPU and one at 4.8 GB (benchmarks/RESULTS.md); accumulation keeps the step at 4 rows.
    batch_size: int = field(default=1, metadata={"help": "Rows per device per micro-batch (GRPO: completions)."})
    grad_accum: int = field(default=4, metadata={"help": "Micro-batches accumulated into one optimizer step."})
    max_length: int = field(default=768, metadata={"help": "Tokens per sequence (prompt + answer) before truncation."})
    activation_checkpointing: bool = field(default=False, metadata={"help": CHECKPOINTING_HELP})
    seed: int = field(default=0, metadata={"help": "Seed for adapter init, shuffling and sampling."})
    device: str = field(
        default="auto", metadata={"help": "auto (CUDA when available, bf16 where supported), cpu or cuda."}
    )
    precision: str = field(
        default="auto",
        metadata={
            "help": "auto (bf16 on a bf16 GPU, bf16 autocast on a CPU with native bf16, "
            "else float32), float32 or bfloat16."
        },
    )
    logging_steps: int = field(default=1, metadata={"help": "Optimizer steps between progress reports."})

    def __post_init__(self):
        if isinstance(self.lora, dict):
            self.lora = build_settings(LoraSettings, self.lora, "lora")
        if not isinstance(self.lora, LoraSettings):
            raise ValueError(f"lora must be a LoraSettings or a dict, got {type(self.lora).__name__}")
        _check("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        _check("epochs", self.epochs, 0.0, 1000.0, low_open=True)
        if (
            not isinstance(self.max_steps, int)
            or isinstance(self.max_steps, bool)
            or not (self.max_steps == -1 or 1 <= self.max_steps <= 10_000_000)
        ):
            raise ValueError(f"max_steps must be -1 (use epochs) or in [1, 10000000], got {self.max_steps!r}")
        _check_int("batch_size", self.batch_size, 1, 4096)
        _check_int("grad_accum", self.grad_accum, 1, 4096)
        _check_int("max_length", self.max_length, 16, 1_048_576)
        if not isinstance(self.activation_checkpointing, bool):
            raise ValueError(f"activation_checkpointing must be true or false, got {self.activation_checkpointing!r}")
        _check_int("seed", self.seed, 0, 2**32 - 1)
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        _check_int("logging_steps", self.logging_steps, 1, 1_000_000)


@dataclass
class SFTSettings(TrainSettings):
    """Supervised fine-tuning on prompt/completion chats (loss on the completion only)."""

    # A few epochs at a LoRA-sized learning rate: one epoch at 2e-4 left the base model's answers unchanged.
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak AdamW learning rate, in (0, 1]."})
    epochs: float = field(default=3.0, metadata={"help": "Passes over the data; ignored when max_steps > 0."})
    # On, as for DPO/ORPO: the SFT child alone 3.55 -> 2.72 GiB for 29 % more time (benchmarks/RESULTS.md); without
    # it a quick demo's process tree reached 5.69 GiB while SFT trained, over the 6 GB run budget.
    activation_checkpointing: bool = field(default=True, metadata={"help": CHECKPOINTING_HELP})


@dataclass
class DPOSettings(TrainSettings):
    """Direct preference optimisation against the adapter-free base (or the starting adapter)."""

    # Measured: 2e-4 scored below 5e-5 on the held-out benchmark.
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak AdamW learning rate, in (0, 1]."})
    beta: float = field(default=0.1, metadata={"help": "Strength of the pull towards the reference, in (0, 100]."})
    # On by default for the preference trainers (benchmarks/RESULTS.md, the quick demo's rows, CPU): the DPO child
    # peaked at 4.50 GiB and set the demo's process-tree peak; checkpointing took it to 3.36 GiB for 16 % more time,
    # the adapter identical to the bit. SFT saves 0.84 GiB for 29 % more time (on too, since a later run).
    activation_checkpointing: bool = field(default=True, metadata={"help": CHECKPOINTING_HELP})

    def __post_init__(self):
        super().__post_init__()
        _check("beta", self.beta, 0.0, 100.0, low_open=True)


@dataclass
class ORPOSettings(TrainSettings):
    """Odds-ratio preference optimisation: SFT on `chosen` plus a penalty on `rejected`, no reference model."""

    # ORPO starts from the base model, so it needs SFT's rate to learn the answer form.
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak AdamW learning rate, in (0, 1]."})
    beta: float = field(
        default=0.1, metadata={"help": "Weight of the odds-ratio term (lambda in the paper), in (0, 100]."}
    )
    # As DPO's (benchmarks/RESULTS.md): the ORPO child 4.03 -> 2.89 GiB for 20 % more time, the same final loss.
    activation_checkpointing: bool = field(default=True, metadata={"help": CHECKPOINTING_HELP})

    def __post_init__(self):
        super().__post_init__()
        _check("beta", self.beta, 0.0, 100.0, low_open=True)


@dataclass
class GRPOSettings(TrainSettings):
    """Group-relative policy optimisation: sample completions, score them with a reward function."""

    learning_rate: float = field(default=1e-5, metadata={"help": "Peak AdamW learning rate, in (0, 1]."})
    # GRPO samples num_generations answers per prompt per step, which is slow on a CPU: a few steps by default.
    max_steps: int = field(default=8, metadata={"help": "Optimizer steps to run; -1 means use epochs."})
    # A micro-batch holds whole groups of completions, so at least num_generations of them.
    batch_size: int = field(default=4, metadata={"help": "Rows per device per micro-batch (GRPO: completions)."})
    beta: float = field(default=0.0, metadata={"help": "KL weight towards the reference, in [0, 100]; 0 skips it."})
    num_generations: int = field(
        default=4,
        metadata={"help": "Completions sampled per prompt (2-256); batch_size * grad_accum must be a multiple."},
    )
    max_completion_length: int = field(default=32, metadata={"help": "Tokens generated per completion (1-32768)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature, in (0, 10]."})

    def __post_init__(self):
        super().__post_init__()
        _check("beta", self.beta, 0.0, 100.0)
        _check_int("num_generations", self.num_generations, 2, 256)
        _check_int("max_completion_length", self.max_completion_length, 1, 32768)
        _check("temperature", self.temperature, 0.0, 10.0, low_open=True)
        if (self.batch_size * self.grad_accum) % self.num_generations:
            raise ValueError(
                f"batch_size * grad_accum ({self.batch_size} * {self.grad_accum}) must be a multiple of "
                f"num_generations ({self.num_generations}): each step scores whole groups of completions"
            )


SETTINGS = {"sft": SFTSettings, "dpo": DPOSettings, "orpo": ORPOSettings, "grpo": GRPOSettings}


def build_settings(cls, values: dict[str, Any], where: str):
    """`cls(**values)` for any settings dataclass; ValueError naming `where` for a non-object or an unknown key."""
    if not isinstance(values, dict):
        raise ValueError(f"{where} settings must be a JSON object, got {type(values).__name__}")
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {where} setting(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return cls(**values)


def settings_from_dict(kind: str, values: dict[str, Any] | None = None) -> TrainSettings:
    """The settings object for trainer `kind` (sft, dpo, orpo, grpo) from plain JSON-like values."""
    if kind not in SETTINGS:
        raise ValueError(f"unknown trainer {kind!r}; expected one of {', '.join(SETTINGS)}")
    if values is not None and not isinstance(values, dict):
        raise ValueError(f"{kind} settings must be a JSON object, got {type(values).__name__} {str(values)[:80]!r}")
    values = dict(values or {})
    if "lora" in values:
        values["lora"] = build_settings(LoraSettings, values["lora"], "lora")
    return build_settings(SETTINGS[kind], values, kind)
