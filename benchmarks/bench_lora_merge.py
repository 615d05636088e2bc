"""Scoring with a LoRA adapter kept apart (peft's extra matmuls per layer) vs merged into the weights.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_lora_merge.py --adapter /path/home/adapters/sft --eval 41

The same eval-split questions as the benchmark (`benchmark_questions`, BM25's top 3 chunks of the question's
contract, 6 windows; contexts as bench_learning.py builds them) answered by SmolLM2 in bfloat16 with the adapter
(a) as a PeftModel and (b) after `merge_and_unload()`, --runs times each, alternating. Reported: seconds per
question (median over runs), how many answers (chosen window or "No such clause.") differ, the largest change of
the score (best window minus "No such clause."), and CUAD match on the answerable questions for both.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from bench_learning import build_rows

from selfinstruct.benchmark.abstain import NEVER
from selfinstruct.benchmark.methods import scorer_answers
from selfinstruct.core.base_model import prepare_base_model
from selfinstruct.core.metrics import cuad_match
from selfinstruct.core.paths import project_home


def load(base: Path, adapter: Path, merged: bool):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    tok.padding_side = "left"
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16), adapter)
    return tok, (model.merge_and_unload() if merged else model).eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--adapter", type=Path, required=True)
    ap.add_argument("--eval", type=int, default=41)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from selfinstruct.answering import SpanScorer

    rows = build_rows(argparse.Namespace(train=1, cal=0, eval=args.eval, k=3, windows=6, max_chars=2000))["eval"]
    questions, contexts = rows, [r["contexts"] for r in rows]
    base = prepare_base_model(project_home() / "models")
    seconds: dict[str, list[float]] = {"peft": [], "merged": []}
    answers: dict[str, list] = {}
    for _ in range(args.runs):
        for kind in seconds:
            tok, model = load(base, args.adapter, kind == "merged")
            t0 = time.perf_counter()
            answers[kind] = scorer_answers(SpanScorer(model, tok), questions, contexts, 6, NEVER)
            seconds[kind].append((time.perf_counter() - t0) / len(questions))
    a, b = answers["peft"], answers["merged"]
    answerable = [i for i, q in enumerate(questions) if q["gold_answers"]]
    match = {
        k: sum(cuad_match(v[i].text, questions[i]["gold_answers"]) for i in answerable) / len(answerable)
        for k, v in answers.items()
    }
    report = {
        "questions": len(questions),
        "answerable": len(answerable),
        "seconds_per_question": {k: round(statistics.median(v), 3) for k, v in seconds.items()},
        "runs": {k: [round(x, 3) for x in v] for k, v in seconds.items()},
        "answers_differ": sum(x.text != y.text for x, y in zip(a, b)),
        "max_score_change": round(max(abs(x.score - y.score) for x, y in zip(a, b)), 4),
        "cuad_match": {k: round(v, 3) for k, v in match.items()},
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
