"""What a benchmark run decides before it scores: the train-split questions that choose each model's abstain
margin, and which models are one model (scored once).

    cal = calibration_questions(annotations, contracts, sft_rows, n=80)   # train split, none an SFT row
    aliases = same_weights({"base": "", "sft": "3f2a", "serving": "3f2a"})  # {"serving": "sft"}

Dagster-free. Calibration questions come from train-split contracts only (the eval split decides nothing), and
a question an adapter was trained on is left out: a model is surest of what it memorised, so its margin would
be chosen on answers it finds easier than new ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from selfinstruct.corpus.questions import benchmark_questions
from selfinstruct.corpus.spans import normalize_ws

CALIBRATION_SEED = 3  # a question order of its own, independent of the training rows' (seed 7) and the eval's (0)


def _key(contract_id: str, question: str) -> tuple[str, str]:
    return contract_id, normalize_ws(question).lower()


def calibration_questions(
    annotations: Sequence[Mapping], contracts: Mapping[str, Mapping], trained: Iterable[Mapping], n: int
) -> list[dict]:
    """Up to `n` train-split questions (categories in turn, answerable and not alternating) that no training row
    asks about the same contract; `trained` rows need contract_id and question (sft_dataset's rows)."""
    seen = {_key(r["contract_id"], r["question"]) for r in trained}
    pool = benchmark_questions(annotations, contracts, max(n * 3, n + len(seen)), split="train", seed=CALIBRATION_SEED)
    return [q for q in pool if _key(q["contract_id"], q["question"]) not in seen][:n]


def same_weights(ids: Mapping[str, str]) -> dict[str, str]:
    """{method: earlier method with the same adapter id}: "" (the base model) is the base model's id, so an empty
    id repeats only another empty one. The first method with an id is the one scored."""
    first: dict[str, str] = {}
    aliases = {}
    for method, ident in ids.items():
        if ident in first:
            aliases[method] = first[ident]
        else:
            first[ident] = method
    return aliases
