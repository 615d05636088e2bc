"""Does fine-tuning on window rows teach SmolLM2 to quote, and does a train-split margin teach it to abstain?

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_learning.py --out /tmp/learn --train 480 --cal 160 --eval 200

Dagster-free and resumable (each stage writes a JSON file under --out and is skipped when it exists):
1. rows: CUAD read as `make demo` reads it; train-split questions (`benchmark_questions(split="train")`, categories in
   turn, answerable and unanswerable alternating) become window rows (`finetune.window_rows`): the first --train
   train the adapter, the next --cal choose each model's abstain margin; --eval eval-split questions are scored.
   Contexts are BM25's top --k chunks of the question's contract (1,000-char chunks, no overlap, as the assets).
2. sft (and dpo with --dpo): a LoRA adapter trained in-process by `training.trainers` on those rows. DPO's pairs
   are the window rows' own: chosen = the target (the gold window, or "No such clause." on an unanswerable
   question), rejected = the hardest wrong window; `--dpo-from base` trains them on a fresh LoRA (no SFT first).
3. score: base and each adapter answer the cal and eval questions with window prompts (`scorer_answers`,
   margin -inf: every answer quotes and keeps its gap); bm25_sentence and the base model on whole chunks
   ("base_chunks", the method before window prompts) beside them. `--leads 1 2` also reads each model's passes
   by the first-L-tokens rule (`SpanScorer(lead=L)`; rows "<model>_lead<L>", paired with base and base_lead<L>);
   `--rerank-windows 10 20` lets judge_rerank choose among more of BM25's windows (rows "judge_rerank_w<n>").
4. report: each model's gap AUROC (answerable vs unanswerable, paired with base), its margin chosen on the cal
   questions only (`benchmark.abstain.choose_margin`), applied to
   the eval answers; CUAD match (answerable), detection F1 vs always-yes, 95 % intervals clustered by contract,
   paired bootstrap + McNemar against base. Writes report.json and prints it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from learning_report import dump_answer, report

from selfinstruct.answering import NO_CLAUSE, Answer, SpanScorer
from selfinstruct.answering.windows import top_windows
from selfinstruct.benchmark.abstain import NEVER
from selfinstruct.benchmark.methods import scorer_answers
from selfinstruct.core.base_model import prepare_base_model
from selfinstruct.core.bm25 import bm25_index
from selfinstruct.core.paths import project_home
from selfinstruct.corpus.chunking import chunk_contracts
from selfinstruct.corpus.cuad import load_cuad
from selfinstruct.corpus.questions import benchmark_questions
from selfinstruct.corpus.source import default_cuad_uri, open_cuad_source
from selfinstruct.finetune.prompts import quote_prompt, sft_row
from selfinstruct.finetune.window_rows import window_row
from selfinstruct.retrieval.hybrid import bm25_ranking


def _json(path: Path, make):
    if path.exists():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    value = make()
    value = {**value, "seconds": round(time.perf_counter() - t0, 1)} if isinstance(value, dict) else value
    path.write_text(json.dumps(value))
    return value


def load_corpus():
    archive = open_cuad_source(default_cuad_uri(), project_home() / "cache")
    try:
        return load_cuad(archive)
    finally:
        archive.close()


def build_rows(args) -> dict:
    corpus = load_corpus()
    contracts = {c["contract_id"]: c for c in corpus.contracts}
    train_q = benchmark_questions(corpus.annotations, contracts, args.train + args.cal, split="train", seed=7)
    eval_q = benchmark_questions(corpus.annotations, contracts, args.eval)
    qs = train_q + eval_q
    chunks = chunk_contracts([contracts[c] for c in sorted({q["contract_id"] for q in qs})], 1000, 0)
    by_contract: dict[str, list[dict]] = {}
    for c in chunks:
        by_contract.setdefault(c["contract_id"], []).append(c)
    indexes = {cid: bm25_index([c["text"] for c in cs]) for cid, cs in by_contract.items()}

    def retrieve(q: dict) -> list[str]:
        cs = by_contract[q["contract_id"]]
        ids = [c["chunk_id"] for c in cs]
        top = bm25_ranking(q["question"], ids, [c["text"] for c in cs], indexes[q["contract_id"]])[: args.k]
        text = {c["chunk_id"]: c["text"] for c in cs}
        return [text[i] for i in top]

    strip = lambda q: {k: v for k, v in q.items() if not k.startswith("_")}  # noqa: E731
    train = []
    for q in train_q[: args.train]:
        row = window_row(q["question"], q["gold_answers"], retrieve(q), args.windows, args.max_chars)
        train.append({**strip(q), "contexts": retrieve(q), **{k: v for k, v in row.items() if k != "windows"}})
    cal = [{**strip(q), "contexts": retrieve(q)} for q in train_q[args.train :]]
    ev = [{**strip(q), "contexts": retrieve(q)} for q in eval_q]
    return {"train": train, "cal": cal, "eval": ev}


def row_cost(data: dict, base: Path) -> dict:
    """Tokens per training row (chat template, prompt + answer): window rows vs the earlier chunk rows."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)

    def n(messages: list[dict], answer: str) -> int:
        chat = messages + [{"role": "assistant", "content": answer}]
        return len(tok(tok.apply_chat_template(chat, tokenize=False))["input_ids"])

    windows = [n(r["prompt"], r["answer"]) for r in data["train"]]
    chunks = [
        n(quote_prompt(r["question"], r["contexts"], 2000, r["answer"] if r["gold_answers"] else None), r["answer"])
        for r in data["train"]
    ]
    return {
        "rows": len(windows),
        "window_tokens_mean": sum(windows) / len(windows),
        "chunk_tokens_mean": sum(chunks) / len(chunks),
        "window_tokens_total": sum(windows),
        "chunk_tokens_total": sum(chunks),
    }


def train_adapter(kind: str, rows: list[dict], base: Path, out: Path, args) -> dict:
    from training.config import settings_from_dict
    from training.trainers import train_dpo, train_sft

    if kind.startswith("sft"):
        data = [sft_row(r["prompt"], r["answer"]) for r in rows]
        settings = settings_from_dict(
            "sft", {"epochs": args.epochs, "max_length": args.max_length, "max_steps": args.max_steps}
        )
        return train_sft(data, base, out, settings)
    data = [
        {
            "prompt": r["prompt"],
            "chosen": [{"role": "assistant", "content": r["answer"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
        }
        for r in rows
        if r.get("rejected")
    ]
    knobs = {"epochs": 1.0, "max_length": args.max_length, "max_steps": args.dpo_steps}
    knobs |= {"learning_rate": args.dpo_lr, "beta": args.dpo_beta, "activation_checkpointing": False}
    settings = settings_from_dict("dpo", knobs)
    start = out.parent / "sft" if args.dpo_from == "sft" else None  # None: a fresh LoRA on the base model
    return {**train_dpo(data, base, out, settings, start_adapter=start), "pairs": len(data), "from": args.dpo_from}


def train_rerank_judge(out: Path, args) -> dict:
    """The reference-free answer judge (use_gold=False), trained and calibrated on train-split contracts only."""
    from training.judge import JudgeTrainSettings, fit_answer_judge

    corpus = load_corpus()
    settings = JudgeTrainSettings(use_gold=False, max_examples=args.judge_rows)
    metrics = fit_answer_judge(corpus.annotations, corpus.contracts, out, settings, max_heldout=300)
    return {k: metrics[k] for k in ("examples", "steps", "seconds", "threshold", "heldout", "model_dir")}


def score_rerank(judge_dir: Path, data: dict, args) -> dict:
    from selfinstruct.judging.rerank import rerank_answer
    from selfinstruct.judging.trained_judge import TrainedJudge

    judge, out = TrainedJudge(judge_dir), {"windows": {}}
    for n in [args.windows, *args.rerank_windows]:
        got = out if n == args.windows else out["windows"].setdefault(str(n), {})
        for part in ("cal", "eval"):
            t0 = time.perf_counter()
            answers = [
                rerank_answer(judge, q["question"], top_windows(q["question"], q["contexts"], n), NEVER)
                if q["contexts"]
                else Answer.none(0.0, reason="no retrievable text")
                for q in data[part]
            ]
            got[part] = [dump_answer(a) for a in answers]
            got[f"{part}_s_per_q"] = round((time.perf_counter() - t0) / max(1, len(data[part])), 3)
    out["judge_threshold"] = judge.threshold
    return out


def distilled_rows(judge_dir: Path, data: dict, args) -> dict:
    """SFT rows from the judge's picks on the training questions, their gold labels unread."""
    from selfinstruct.finetune.distill import judge_picked_rows
    from selfinstruct.judging.trained_judge import TrainedJudge

    qs = [{k: v for k, v in r.items() if k != "gold_answers"} for r in data["train"]]
    rows, stats = judge_picked_rows(
        qs, [r["contexts"] for r in qs], TrainedJudge(judge_dir), args.windows, args.max_chars
    )
    right = [
        (r["answer"] != NO_CLAUSE) == bool(t["gold_answers"]) for r, t in zip(rows, data["train"])
    ]  # the picks checked against the labels they never saw, for the record only
    return {"rows": rows, "stats": {**stats, "has_clause_agrees_with_label": sum(right) / max(1, len(right))}}


@dataclasses.dataclass
class SharedPasses(SpanScorer):
    """A SpanScorer whose passes are kept: the --leads rules re-read them instead of running the model again."""

    memo: dict = dataclasses.field(default_factory=dict)

    def reply_logprobs(self, messages, replies):
        key = json.dumps([messages, list(replies)])
        if key not in self.memo:
            self.memo[key] = super().reply_logprobs(messages, replies)
        return self.memo[key]


def score_model(name: str, base: Path, adapter: Path | None, data: dict, args) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).eval()
    scorer, out = SharedPasses(model, tok), {"leads": {}}
    prompt = "chunks" if name == "base_chunks" else "windows"
    for part in ("cal", "eval"):
        qs = data[part]
        t0 = time.perf_counter()
        answers = scorer_answers(scorer, qs, [q["contexts"] for q in qs], args.windows, NEVER, prompt=prompt)
        out[part] = [dump_answer(a) for a in answers]
        out[f"{part}_s_per_q"] = round((time.perf_counter() - t0) / max(1, len(qs)), 3)
        print(name, part, out[f"{part}_s_per_q"], "s/question", flush=True)
        for lead in args.leads:  # the same passes, read by another rule
            ruled = dataclasses.replace(scorer, lead=lead)
            answers = scorer_answers(ruled, qs, [q["contexts"] for q in qs], args.windows, NEVER, prompt=prompt)
            out["leads"].setdefault(str(lead), {})[part] = [dump_answer(a) for a in answers]
        scorer.memo.clear()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train", type=int, default=480)
    ap.add_argument("--cal", type=int, default=160)
    ap.add_argument("--eval", type=int, default=200)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--windows", type=int, default=6)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-chars", type=int, default=2000, help="excerpt characters per training prompt")
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--max-steps", type=int, default=-1, help="optimizer steps of 4 rows (-1: --epochs over all rows)")
    ap.add_argument("--dpo", action="store_true")
    ap.add_argument("--dpo-from", choices=("sft", "base"), default="sft", help="DPO's starting point and reference")
    ap.add_argument("--dpo-lr", type=float, default=5e-5)
    ap.add_argument("--dpo-beta", type=float, default=0.1)
    ap.add_argument("--dpo-steps", type=int, default=-1, help="DPO optimizer steps of 4 pairs (-1: one epoch)")
    ap.add_argument("--no-sft", action="store_true", help="no SFT adapter (with --dpo-from base: DPO alone)")
    ap.add_argument("--no-chunks", action="store_true", help="skip the base model on whole chunks")
    ap.add_argument("--judge-rows", type=int, default=960, help="rows of the reference-free judge (0: no judge_rerank)")
    ap.add_argument("--distill", action="store_true", help="also SFT on the judge's picks (sft_judge)")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--rerank-windows", type=int, nargs="*", default=[], help="judge_rerank also over n windows")
    ap.add_argument("--leads", type=int, nargs="*", default=[], help="also score by each reply's first L tokens")
    ap.add_argument(
        "--only",
        nargs="*",
        default=[],
        help="run just these stages (e.g. train_sft scored_base) and stop: stages of one run in parallel processes",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = _json(args.out / "rows.json", lambda: build_rows(args))
    base = prepare_base_model(project_home() / "models")
    print("cost", _json(args.out / "cost.json", lambda: row_cost(data, base)), flush=True)
    adapters = {} if args.no_sft else {"sft": args.out / "sft"}
    if args.dpo:
        adapters["dpo"] = args.out / "dpo"
    scored, rows = {}, {"sft": data["train"], "dpo": data["train"]}
    if args.judge_rows:  # first: it is cheap, and the distilled rows need it
        judge_dir = args.out / "judge"
        print("judge", _json(args.out / "train_judge.json", lambda: train_rerank_judge(judge_dir, args)), flush=True)
        scored["judge_rerank"] = _json(
            args.out / "scored_judge_rerank.json", lambda: score_rerank(judge_dir, data, args)
        )
        if args.distill:
            picked = _json(args.out / "rows_judge.json", lambda: distilled_rows(judge_dir, data, args))
            print("distilled", picked["stats"], flush=True)
            adapters["sft_judge"], rows["sft_judge"] = args.out / "sft_judge", picked["rows"]

    def wanted(stage: str) -> bool:
        return not args.only or stage in args.only or (args.out / f"{stage}.json").exists()

    for kind, folder in adapters.items():
        if wanted(f"train_{kind}"):
            _json(args.out / f"train_{kind}.json", lambda k=kind, f=folder: train_adapter(k, rows[k], base, f, args))
    models = {"base": None, **adapters} | ({} if args.no_chunks else {"base_chunks": None})
    scored |= {
        m: _json(args.out / f"scored_{m}.json", lambda m=m, a=a: score_model(m, base, a, data, args))
        for m, a in models.items()
        if wanted(f"scored_{m}")
    }
    if args.only:
        return
    for m, s in list(scored.items()):
        for lead, d in s.get("leads", {}).items():
            scored[f"{m}_lead{lead}"] = {**d, "eval_s_per_q": s["eval_s_per_q"]}
        for n, d in s.get("windows", {}).items():
            scored[f"{m}_w{n}"] = d
    result = report(data, scored, args.n_boot)
    (args.out / "report.json").write_text(json.dumps(result, indent=1, default=str))
    keys = ("n_answerable", "cuad_match", "cuad_match_low", "cuad_match_high", "detection_f1", "detection_f1_low")
    for m, s in result["summary"].items():
        print(m, {k: s.get(k) for k in keys})
    for name, p in result["paired"].items():
        print(name, {k: p.get(k) for k in ("diff", "low", "high", "p_value", "mcnemar_p", "n")})
    print({m: r["margin"] for m, r in result["margins"].items()})
    print("gap AUROC (answerable vs not, eval)", result["gap_auroc"])


if __name__ == "__main__":
    main()
