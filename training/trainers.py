"""LoRA training with trl 1.16 (SFT, DPO, ORPO, GRPO), Dagster-free; each run publishes one adapter folder.

    from training.trainers import train_sft
    from training.config import SFTSettings
    metrics = train_sft(rows, Path("models/smollm2"), Path("adapters/sft"), SFTSettings(max_steps=100))

Rows are conversational dicts (see `training._common.ROW_KEYS`). The adapter is saved with its
`training_metrics.json` into a temp folder beside `out_dir` and renamed into place only after training
finished cleanly; a crash, a diverged loss or Ctrl-C leaves any previous `out_dir` untouched.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from selfinstruct.core.artifacts import publish_dir
from training._common import (
    METRICS_FILE,
    Progress,
    TrainingAborted,
    check_rows,
    common_args,
    cuad_match_reward,
    fit_rows,
    guarded,
    lora_config,
    param_counts,
    resolve_device,
    save_adapter,
)
from training.config import DPOSettings, GRPOSettings, ORPOSettings, SFTSettings, TrainSettings

__all__ = [
    "TrainingAborted",
    "cuad_match_reward",
    "load_adapted",
    "train_dpo",
    "train_grpo",
    "train_orpo",
    "train_sft",
    "METRICS_FILE",
]

OnLog = Callable[[dict], None] | None
RewardFn = Callable[[list[str], list[list[str]]], list[float]]


def _load(base_model: Path, dtype, start_adapter: Path | None):
    """Tokenizer and model; with `start_adapter` the model is a PeftModel whose adapter keeps training."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base_model))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=dtype)  # a PeftModel below
    if start_adapter is not None:
        from peft import PeftModel

        if not (Path(start_adapter) / "adapter_config.json").is_file():
            raise FileNotFoundError(f"start_adapter {start_adapter} holds no adapter_config.json")
        model = PeftModel.from_pretrained(model, str(start_adapter), is_trainable=True)
    return tok, model


def _run(
    kind: str,
    dataset,
    base_model: Path,
    out_dir: Path,
    settings: TrainSettings,
    make_trainer,
    *,
    start_adapter: Path | None = None,
    on_log: OnLog = None,
) -> dict:
    """Validate, build the trl trainer via `make_trainer(model, tok, ds, args_kwargs, peft_config, callbacks, cls)`,
    train, and publish the adapter to `out_dir`."""
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback

    rows = check_rows(kind, dataset)
    base_model, out_dir = Path(base_model), Path(out_dir)
    _, dtype, precision = resolve_device(settings.device, settings.precision)
    tok, model = _load(base_model, dtype, Path(start_adapter) if start_adapter else None)
    rows, too_long = fit_rows(kind, rows, tok, settings.max_length)
    peft_config = None if start_adapter else lora_config(settings)
    progress = Progress(kind, on_log)
    with tempfile.TemporaryDirectory(prefix=f"trl-{kind}-") as scratch:  # trl's output_dir; it saves nothing there
        trainer = make_trainer(
            model=model,
            tok=tok,
            ds=Dataset.from_list(rows),
            args=common_args(settings, scratch, precision),
            peft_config=peft_config,
            callbacks=[progress],
            wrap=lambda cls: guarded(cls, kind, progress),
        )
        trainer.remove_callback(PrinterCallback)  # with tqdm off it prints every log dict to stdout
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
        # keep_fp32_wrapper=False: drop the bf16 autocast that mixed precision wrapped around forward()
        trained = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    trainable, total = param_counts(trained)
    metrics = {
        "trainer": kind,
        "steps": trainer.state.global_step,
        "final_loss": progress.losses[-1][1] if progress.losses else None,
        "losses": progress.losses,
        "trainable_params": trainable,
        "total_params": total,
        "tokens_per_s": progress.tokens / seconds if seconds > 0 else 0.0,
        "seconds": round(seconds, 3),
        "adapter_path": str(out_dir),
        "base_model": str(base_model),
        "precision": "bfloat16" if precision["bf16"] else "float32",
        "rows_too_long": too_long,
    }
    extra = {
        "settings": asdict(settings),
        "start_adapter": str(start_adapter) if start_adapter else None,
        "rows": len(rows),
        "rows_too_long": too_long,
    }
    publish_dir(lambda tmp: save_adapter(trained, tmp, metrics, extra), out_dir)
    return metrics


def train_sft(dataset, base_model: Path, out_dir: Path, settings: SFTSettings, *, on_log: OnLog = None) -> dict:
    """Supervised LoRA fine-tuning on {prompt, completion} chats; loss on the completion tokens only."""
    from trl import SFTConfig, SFTTrainer

    def make(model, tok, ds, args, peft_config, callbacks, wrap):
        config = SFTConfig(**args, max_length=settings.max_length, completion_only_loss=True)
        return wrap(SFTTrainer)(
            model=model,
            args=config,
            train_dataset=ds,
            processing_class=tok,
            peft_config=peft_config,
            callbacks=callbacks,
        )

    return _run("sft", dataset, base_model, out_dir, settings, make, on_log=on_log)


def train_dpo(
    dataset,
    base_model: Path,
    out_dir: Path,
    settings: DPOSettings,
    *,
    start_adapter: Path | None = None,
    on_log: OnLog = None,
) -> dict:
    """DPO on {prompt, chosen, rejected}; the reference is the base model, or a frozen copy of `start_adapter`."""
    from trl import DPOConfig, DPOTrainer

    def make(model, tok, ds, args, peft_config, callbacks, wrap):
        # No ref_model: trl disables the adapter for a fresh LoRA, or for a PeftModel adds a frozen "ref" copy of it.
        config = DPOConfig(**args, max_length=settings.max_length, beta=settings.beta)
        return wrap(DPOTrainer)(
            model=model,
            args=config,
            train_dataset=ds,
            processing_class=tok,
            peft_config=peft_config,
            callbacks=callbacks,
        )

    return _run("dpo", dataset, base_model, out_dir, settings, make, start_adapter=start_adapter, on_log=on_log)


def train_orpo(dataset, base_model: Path, out_dir: Path, settings: ORPOSettings, *, on_log: OnLog = None) -> dict:
    """ORPO on {prompt, chosen, rejected}: one pass, no reference model."""
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    def make(model, tok, ds, args, peft_config, callbacks, wrap):
        config = ORPOConfig(**args, max_length=settings.max_length, beta=settings.beta, remove_unused_columns=False)
        return wrap(ORPOTrainer)(
            model=model,
            args=config,
            train_dataset=ds,
            processing_class=tok,
            peft_config=peft_config,
            callbacks=callbacks,
        )

    return _run("orpo", dataset, base_model, out_dir, settings, make, on_log=on_log)


def reward_adapter(reward_fn: RewardFn):
    """A trl reward function that hands `reward_fn` the completion texts and the rows' `answers` column."""

    def reward(prompts, completions, answers, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        scores = [float(s) for s in reward_fn(texts, [list(a) for a in answers])]
        if len(scores) != len(texts):
            raise ValueError(f"reward_fn returned {len(scores)} scores for {len(texts)} completions")
        return scores

    reward.__name__ = getattr(reward_fn, "__name__", "reward")  # trl logs rewards under this name
    return reward


def train_grpo(
    dataset,
    base_model: Path,
    out_dir: Path,
    settings: GRPOSettings,
    reward_fn: RewardFn,
    *,
    start_adapter: Path | None = None,
    on_log: OnLog = None,
) -> dict:
    """GRPO on {prompt, answers}: sample `num_generations` completions per prompt, reward them with `reward_fn`.

    `max_length` does not truncate GRPO prompts (trl 1.16 has no prompt limit); keep prompts short.
    """
    from trl import GRPOConfig, GRPOTrainer

    def make(model, tok, ds, args, peft_config, callbacks, wrap):
        config = GRPOConfig(
            **args,
            beta=settings.beta,
            num_generations=settings.num_generations,
            max_completion_length=settings.max_completion_length,
            temperature=settings.temperature,
        )
        return wrap(GRPOTrainer)(
            model=model,
            reward_funcs=[reward_adapter(reward_fn)],
            args=config,
            train_dataset=ds,
            processing_class=tok,
            peft_config=peft_config,
            callbacks=callbacks,
        )

    return _run("grpo", dataset, base_model, out_dir, settings, make, start_adapter=start_adapter, on_log=on_log)


def load_adapted(base_model: Path, adapter_path: Path, *, device: str = "cpu"):
    """(tokenizer, model) with the adapter attached, in eval mode, float32."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base_model))
    base = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter_path)).to(device)
    return tok, model.eval()
