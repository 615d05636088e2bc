"""Pieces the four trainers share: row checks, device choice, progress and NaN guard, saving, the reward."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback

from selfinstruct.core.artifacts import ADAPTER_FILES, missing_adapter_files
from selfinstruct.core.cpu import cpu_has_bf16
from selfinstruct.core.metrics import cuad_match
from training.config import TrainSettings

METRICS_FILE = "training_metrics.json"
ROW_KEYS = {
    "sft": ("prompt", "completion"),
    "dpo": ("prompt", "chosen", "rejected"),
    "orpo": ("prompt", "chosen", "rejected"),
    "grpo": ("prompt", "answers"),
}


class TrainingAborted(RuntimeError):
    """Training stopped because it diverged; nothing was published."""


# ---------------------------------------------------------------------------------------------------- data


def _check_messages(index: int, key: str, value, role: str | None) -> None:
    if not isinstance(value, list) or not value:
        raise ValueError(f"row {index}: {key!r} must be a non-empty list of chat messages, got {type(value).__name__}")
    for message in value:
        if not isinstance(message, dict) or not isinstance(message.get("content"), str) or "role" not in message:
            raise ValueError(f"row {index}: {key!r} holds a message without a 'role' and a string 'content'")
    if role is not None and value[-1]["role"] != role:
        raise ValueError(f"row {index}: the last message of {key!r} must have role {role!r}, got {value[-1]['role']!r}")


def fit_rows(kind: str, rows: list[dict], tok, max_length: int) -> tuple[list[dict], int]:
    """(rows that fit, how many did not): a row whose prompt plus any completion is longer than `max_length`
    tokens is dropped, since truncation would cut its target (a pair's whole rejected answer, in the worst
    case, which makes the preference loss NaN). GRPO rows have no completion and are kept."""
    if kind == "grpo":
        return rows, 0

    def length(prompt: list[dict], completion: list[dict]) -> int:
        return len(tok.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)["input_ids"])

    sides = ("completion",) if kind == "sft" else ("chosen", "rejected")
    kept = [r for r in rows if all(length(r["prompt"], r[side]) <= max_length for side in sides)]
    if not kept:
        raise ValueError(
            f"every one of the {len(rows)} {kind} rows is longer than max_length={max_length} tokens; "
            "raise max_length or shorten the prompts (max_context_chars)"
        )
    return kept, len(rows) - len(kept)


def check_rows(kind: str, dataset) -> list[dict]:
    """The rows as plain dicts holding only the keys trainer `kind` reads; ValueError on anything malformed."""
    rows = dataset.to_list() if hasattr(dataset, "to_list") else list(dataset)
    if not rows:
        raise ValueError(f"{kind}: no rows to train on")
    keys = ROW_KEYS[kind]
    clean = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"row {i}: expected a dict, got {type(row).__name__}")
        for key in keys:
            if key not in row:
                raise ValueError(f"row {i}: missing key {key!r} (a {kind} row needs {', '.join(keys)})")
        _check_messages(i, "prompt", row["prompt"], "user")
        for key in keys[1:]:
            if key == "answers":
                answers = row["answers"]
                if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
                    raise ValueError(f"row {i}: 'answers' must be a non-empty list of strings")
            else:
                _check_messages(i, key, row[key], "assistant")
        clean.append({key: row[key] for key in keys})
    if kind in ("dpo", "orpo"):
        same = [i for i, row in enumerate(clean) if row["chosen"] == row["rejected"]]
        if len(same) == len(clean):
            raise ValueError(
                f"row {same[0]}: 'rejected' equals 'chosen' in every row, so there is no preference to learn"
            )
    return clean


# ---------------------------------------------------------------------------------------------------- device


def resolve_device(device: str, precision: str = "auto") -> tuple[str, object, dict]:
    """(device, model dtype, TrainingArguments precision kwargs) for `auto`, `cpu` or `cuda`.

    On a GPU, bf16 weights where supported. On a CPU the weights stay float32 and bf16 is autocast, which is
    about twice as fast where the CPU multiplies bf16 natively (benchmarks/RESULTS.md) and slow elsewhere.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA device; use device='auto' or 'cpu'")
    if precision == "auto":
        native = torch.cuda.is_bf16_supported() if device == "cuda" else cpu_has_bf16()
        precision = "bfloat16" if native else "float32"
    bf16 = precision == "bfloat16"
    dtype = torch.bfloat16 if bf16 and device == "cuda" else torch.float32
    # trl's configs default bf16 to True (autocast even on CPU); fp32 is asked for explicitly.
    return device, dtype, {"use_cpu": device == "cpu", "bf16": bf16, "fp16": False}


def common_args(settings: TrainSettings, scratch: str, precision: dict) -> dict:
    """TrainingArguments shared by every trl config: no checkpoints, no trackers, fp32 on CPU."""
    return dict(
        output_dir=scratch,
        report_to="none",
        save_strategy="no",
        logging_strategy="steps",
        logging_steps=settings.logging_steps,
        logging_nan_inf_filter=False,
        disable_tqdm=True,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        seed=settings.seed,
        data_seed=settings.seed,
        activation_checkpointing=settings.activation_checkpointing,
        dataloader_num_workers=0,
        **precision,
    )


def lora_config(settings: TrainSettings):
    from peft import LoraConfig

    lora = settings.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


# ---------------------------------------------------------------------------------------------------- progress


def count_tokens(inputs: dict) -> int:
    """Non-padding tokens in one batch as each trainer lays it out."""
    if "attention_mask" in inputs:  # SFT, and DPO's stacked chosen+rejected batch
        masks = [inputs["attention_mask"]]
    elif "chosen_attention_mask" in inputs:  # ORPO: prompt tokens are already inside both sequences
        masks = [inputs["chosen_attention_mask"], inputs["rejected_attention_mask"]]
    else:  # GRPO
        masks = [inputs[k] for k in ("prompt_mask", "completion_mask") if k in inputs]
    return int(sum(int(m.sum()) for m in masks))


class Progress(TrainerCallback):
    """Collects (step, loss) pairs and non-padding token counts, and forwards each log event to `on_log`."""

    def __init__(self, kind: str, on_log: Callable[[dict], None] | None):
        self.kind, self.sink = kind, on_log  # not self.on_log: that is the callback hook
        self.tokens, self.started = 0, None
        self.losses: list[tuple[int, float]] = []

    def tokens_per_s(self) -> float:
        elapsed = time.perf_counter() - self.started if self.started else 0.0
        return self.tokens / elapsed if elapsed > 0 else 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return  # the end-of-training summary carries train_loss instead
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            raise TrainingAborted(abort_message(self.kind, state.global_step, loss))
        self.losses.append((state.global_step, loss))
        if self.sink is not None:
            self.sink({"step": state.global_step, "loss": loss, "tokens_per_s": self.tokens_per_s()})


def abort_message(kind: str, step: int, loss: float) -> str:
    return (
        f"{kind} training diverged: loss is {loss} at step {step}. Nothing was published; "
        f"lower the learning rate (or check the data for empty completions) and run again."
    )


def guarded(trainer_cls, kind: str, progress: Progress):
    """`trainer_cls` with a compute_loss that counts tokens and raises TrainingAborted on a non-finite loss."""

    class Guarded(trainer_cls):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
            loss = out[0] if isinstance(out, tuple) else out
            if not bool(loss.detach().isfinite().all()):
                # Raised before backward, so the optimizer never applies a NaN update.
                value = float(loss.detach().float().mean())
                raise TrainingAborted(abort_message(kind, self.state.global_step + 1, value))
            if model.training:
                progress.tokens += count_tokens(inputs)
            return out

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{trainer_cls.__name__}"
    return Guarded


def param_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters, leaving out the frozen 'ref' adapter trl adds when continuing an adapter."""
    trainable = total = 0
    for name, param in model.named_parameters():
        if ".ref." in name:
            continue
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return trainable, total


# ---------------------------------------------------------------------------------------------------- saving


def save_adapter(model, folder: Path, metrics: dict, extra: dict) -> None:
    """Write the trained ('default') adapter and its metrics into `folder`, and nothing else."""
    model.save_pretrained(str(folder), selected_adapters=["default"], safe_serialization=True)
    for path in folder.iterdir():  # peft also writes a README model card
        if path.name not in ADAPTER_FILES:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    if missing := missing_adapter_files(folder):
        raise RuntimeError(f"peft did not write {', '.join(missing)} into {folder}")
    (folder / METRICS_FILE).write_text(json.dumps({**metrics, **extra}, indent=2, default=str))


# ---------------------------------------------------------------------------------------------------- rewards


def cuad_match_reward(completions: list[str], answers: list[list[str]]) -> list[float]:
    """The benchmark's and the gate's CUAD match (0 or 1) of each completion against its gold answers."""
    return [cuad_match(text, gold) for text, gold in zip(completions, answers, strict=True)]
