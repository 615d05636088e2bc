"""Fine-tune the packaged all-MiniLM-L6-v2 on train-split (question, gold-clause chunk) pairs.

    HF_HUB_OFFLINE=1 python -m training retriever --config retriever.json

`train_retriever` trains with MultipleNegativesRankingLoss (in-batch negatives) and publishes the
sentence-transformers folder by atomic rename; `fit_retriever` builds the pairs from CUAD tables
(`selfinstruct.retrieval.pairs`), trains on train-split contracts only and falls back to the packaged model
when it cannot. Batches come from the no-duplicates sampler: CUAD asks the same 41 questions of every
contract, so a plain batch would treat another contract's answer to a question as a negative.

    .venv/bin/python -m pytest -q tests/test_retriever_training.py
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from selfinstruct.retrieval.model import METRICS_FILE, packaged_model_path
from selfinstruct.retrieval.pairs import balance, build_pairs, explain_no_pairs


class NoTrainingPairs(ValueError):
    """Nothing to train on; the message says why. Callers fall back to the packaged model."""


def check_pairs(rows: Sequence[dict], where: str) -> list[dict]:
    """Rows {question, positive[, negative]} of strings, as `build_pairs` makes them; ValueError naming the row."""
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"{where}: row {i} is {type(row).__name__}, not a JSON object")
        for key in ("question", "positive", "negative"):
            if (key != "negative" or key in row) and not (isinstance(row.get(key), str) and row[key].strip()):
                raise ValueError(
                    f"{where}: row {i} needs {key!r} as a non-empty string (a row is {{question, positive[, negative]}})"
                )
    return list(rows)


@dataclass
class RetrieverTrainSettings:
    epochs: float = field(default=1.0, metadata={"help": "passes over the (balanced, capped) pairs"})
    # 640 pairs in batches of 16 is the run measured in benchmarks/bench_retrievers.py: recall@3 0.50 -> 0.80
    # on held-out contracts, ~11 min on a contended 2-core CPU.
    batch_size: int = field(default=16, metadata={"help": "pairs per batch; each brings in-batch negatives"})
    max_pairs: int | None = field(default=640, metadata={"help": "cap on pairs, balanced across questions"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many optimiser steps (-1: no cap)"})
    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW peak learning rate"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps with linear warm-up"})
    hard_negatives: bool = field(
        default=False, metadata={"help": "add the top BM25 non-gold chunk of the same contract"}
    )
    max_seq_length: int = field(default=256, metadata={"help": "tokens kept per text (MiniLM was trained at 256)"})
    precision: str = field(default="auto", metadata={"help": "auto | float32 | bfloat16 (autocast) on CPU"})
    seed: int = field(default=0, metadata={"help": "sampling, shuffling and initialisation seed"})

    def __post_init__(self):
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 for in-batch negatives, got {self.batch_size}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("give epochs > 0 or max_steps > 0")
        if self.max_pairs is not None and self.max_pairs < 1:
            raise ValueError(f"max_pairs must be >= 1 or None, got {self.max_pairs}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.precision not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"precision must be auto, float32 or bfloat16, got {self.precision!r}")


def pair_dataset(pairs: Sequence[dict]):
    """A datasets.Dataset with only the text columns: the sampler compares every column for duplicates."""
    from datasets import Dataset

    cols = {"anchor": [p["question"] for p in pairs], "positive": [p["positive"] for p in pairs]}
    if pairs and all("negative" in p for p in pairs):
        cols["negative"] = [p["negative"] for p in pairs]
    return Dataset.from_dict(cols)


def no_duplicate_sampler(dataset, batch_size: int, seed: int = 0):
    """The sampler the trainer uses (BatchSamplers.NO_DUPLICATES), built alone for inspection and tests."""
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    return NoDuplicatesBatchSampler(dataset, batch_size=batch_size, drop_last=False, seed=seed)


def train_retriever(
    pairs: Sequence[dict],
    output_dir: str | Path,
    settings: RetrieverTrainSettings | None = None,
    base_model: str | Path | None = None,
) -> dict:
    """Train, publish `output_dir` (a SentenceTransformer folder) by rename, return the metrics.

    Metrics: pairs, steps, final_loss, seconds, loss_curve, model_dir. Raises `NoTrainingPairs` when
    `pairs` is empty; `output_dir` is then untouched.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    from selfinstruct.core.artifacts import publish_dir
    from selfinstruct.core.cpu import resolve_precision

    settings = settings or RetrieverTrainSettings()
    if not pairs:
        raise NoTrainingPairs(
            "no (question, gold chunk) pairs were given; build them with build_pairs "
            "(explain_no_pairs says which step left none)"
        )
    rows = balance(pairs, settings.max_pairs, settings.seed)
    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)
    model = SentenceTransformer(str(base_model or packaged_model_path()), device="cpu", local_files_only=True)
    model.max_seq_length = settings.max_seq_length
    bf16 = resolve_precision(settings.precision, "cpu") == "bfloat16"
    with tempfile.TemporaryDirectory(prefix="retriever-train-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=settings.epochs,
            max_steps=settings.max_steps,
            per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            warmup_ratio=settings.warmup_ratio,
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            seed=settings.seed,
            data_seed=settings.seed,
            save_strategy="no",
            report_to=[],
            logging_steps=1,
            disable_tqdm=True,
            use_cpu=True,
            bf16=bf16,
            dataloader_drop_last=False,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=pair_dataset(rows), loss=losses.MultipleNegativesRankingLoss(model)
        )
        result = trainer.train()
    curve = [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]
    final = curve[-1] if curve else float(result.training_loss)
    if final != final:  # NaN
        raise RuntimeError(
            f"retriever training diverged (loss NaN after {result.global_step} steps); nothing published"
        )
    metrics = {
        "pairs": len(rows),
        "pairs_available": len(pairs),
        "steps": int(result.global_step),
        "final_loss": final,
        "mean_loss": float(result.training_loss),
        "seconds": round(time.perf_counter() - t0, 2),
        "hard_negatives": "negative" in rows[0],
        "distinct_questions": len({r["question"] for r in rows}),
        "bf16": bf16,
        "loss_curve": curve,
        "settings": asdict(settings),
    }

    def build(tmp: Path) -> None:
        model.save(str(tmp))
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2))

    metrics["model_dir"] = str(publish_dir(build, Path(output_dir)))
    return metrics


def fit_retriever(
    annotations: Sequence[dict],
    chunks: Sequence[dict],
    contracts: Sequence[dict],
    output_dir: str | Path,
    settings: RetrieverTrainSettings | None = None,
) -> dict:
    """Train on train-split contracts only; never raises for want of data or a failed run.

    Returns `train_retriever`'s metrics plus `fallback: False` and `trained_contracts` (also written into the
    folder's metrics file, where the held-out check reads them), or {fallback: True, reason, model_dir: the
    packaged model} when there are no pairs or training fails: retrieval downstream keeps working unchanged.
    """
    split = {c["contract_id"]: c["split"] for c in contracts}
    train_ann = [a for a in annotations if split.get(a["contract_id"]) == "train"]
    train_chunks = [c for c in chunks if split.get(c["contract_id"]) == "train"]
    eval_ids = {cid for cid, s in split.items() if s == "eval"}
    pairs = build_pairs(train_ann, train_chunks, eval_ids, (settings or RetrieverTrainSettings()).hard_negatives)
    if not pairs:
        return {
            "fallback": True,
            "reason": explain_no_pairs(train_ann, train_chunks),
            "model_dir": str(packaged_model_path()),
        }
    try:
        metrics = train_retriever(pairs, output_dir, settings)
    except (RuntimeError, ValueError, OSError) as exc:
        return {"fallback": True, "reason": f"training failed: {exc}", "model_dir": str(packaged_model_path())}
    from selfinstruct.core.artifacts import publish_file

    trained = sorted({p["contract_id"] for p in pairs})
    meta = Path(metrics["model_dir"]) / METRICS_FILE
    saved = {**json.loads(meta.read_text()), "trained_contracts": trained}
    publish_file(lambda tmp: tmp.write_text(json.dumps(saved, indent=2)), meta)
    return {**metrics, "fallback": False, "trained_contracts": trained}
