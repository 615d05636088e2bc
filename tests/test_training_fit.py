"""Rows longer than the trainer's max_length are dropped and counted before training, never truncated.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_training_fit.py
"""

import pytest

from training._common import fit_rows


def _pair(rejected: str) -> dict:
    prompt = [{"role": "user", "content": "Which law governs?"}]
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": "No such clause."}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def test_a_pair_whose_rejected_answer_cannot_fit_is_dropped_and_counted(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    short, long = _pair("The laws of New York."), _pair("word " * 400)
    kept, dropped = fit_rows("orpo", [short, long, short], tok, max_length=128)
    assert kept == [short, short] and dropped == 1
    sft = [{"prompt": short["prompt"], "completion": long["rejected"]}]
    with pytest.raises(ValueError, match="max_length=128"):
        fit_rows("sft", sft, tok, max_length=128)
    assert fit_rows("grpo", [{"prompt": "x" * 10_000}], tok, max_length=16) == ([{"prompt": "x" * 10_000}], 0)
