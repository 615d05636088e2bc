"""Training data for the adapters: SFT rows, candidate answers, AI and human feedback, preference pairs."""

import json

import dagster as dg
import dspy
import polars as pl

from resources.llm import LLMResource
from resources.project import BaseModelResource, ChromaResource, EmbedderResource
from selfinstruct_core.metrics import cuad_match, token_f1

from ..constants import DUCKDB_POOL, FINETUNE
from ..evaluation.judges import judge_factuality
from ..evaluation.parallel import thread_map
from ..locations import required_path
from ..rag.evaluate import sample_questions
from ..retrieval.retriever import make_retriever
from .benchmark import prompts_for
from .preferences import build_preference_pairs, grade
from .prompts import fit_passages, rag_messages


class PromptConfig(dg.Config):
    k: int = 3  # chunks retrieved into a prompt
    max_context_chars: int = 2000  # excerpt characters per prompt (keeps prompt + answer within max_length)


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE, deps=["vector_index"])
def sft_dataset(config: PromptConfig, cuad_contracts: pl.DataFrame, seed_qa: pl.DataFrame, synthetic_qa: pl.DataFrame,
                embedder: EmbedderResource, chroma: ChromaResource) -> dg.Output[pl.DataFrame]:
    """Prompt (instruction + retrieved excerpts + question) and short answer, from seed and synthetic QA of
    train-split contracts; the passage each answer came from is always in its prompt."""
    train = set(cuad_contracts.filter(pl.col("split") == "train")["contract_id"])
    retrieve = make_retriever(embedder, chroma)
    sources = [("seed", r["seed_id"], r) for r in seed_qa.to_dicts()] + \
              [("synthetic", r["qa_id"], r) for r in synthetic_qa.to_dicts()]
    rows, dropped = [], 0
    for source, rid, r in sources:
        if r["contract_id"] not in train:
            dropped += 1  # cannot happen upstream (checked there); counted rather than trusted
            continue
        passages = fit_passages(retrieve(r["question"], r["contract_id"], config.k), config.max_context_chars,
                                must_include=r["context"])
        rows.append({"example_id": f"{source}:{rid}", "source": source, "contract_id": r["contract_id"],
                     "question": r["question"], "answer": r["answer"],
                     "prompt_json": json.dumps(rag_messages(r["question"], passages))})
    return dg.Output(pl.DataFrame(rows, schema=SFT_SCHEMA), metadata={
        "dagster/row_count": len(rows), "seed_rows": sum(r["source"] == "seed" for r in rows),
        "synthetic_rows": sum(r["source"] == "synthetic" for r in rows), "dropped_not_train": dropped})


SFT_SCHEMA = {"example_id": pl.Utf8, "source": pl.Utf8, "contract_id": pl.Utf8, "question": pl.Utf8,
              "answer": pl.Utf8, "prompt_json": pl.Utf8}


class ResponsesConfig(PromptConfig):
    n_questions: int = 24  # train-split questions answered
    n_samples: int = 2  # sampled answers of the SFT model per question, beside the greedy base and SFT answers
    temperature: float = 0.8


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE, deps=["sft_adapter", "vector_index"])
def rag_responses(context: dg.AssetExecutionContext, config: ResponsesConfig, cuad_contracts: pl.DataFrame,
                  cuad_annotations: pl.DataFrame, llm: LLMResource, base_model: BaseModelResource,
                  embedder: EmbedderResource, chroma: ChromaResource) -> dg.Output[pl.DataFrame]:
    """Several candidate answers per train-split question: base model, SFT model (greedy and sampled)."""
    contracts = {r["contract_id"]: r for r in cuad_contracts.to_dicts()}
    questions = sample_questions(cuad_annotations.to_dicts(), contracts, "train", config.n_questions, seed=1)
    prompts = prompts_for(questions, make_retriever(embedder, chroma), config.k, config.max_context_chars)
    base, sft = base_model.dir(), required_path(context.instance, "sft_adapter", "adapter_path")
    models = [("base", llm.local_lm(base)), ("sft", llm.local_lm(base, sft))]
    models += [(f"sft_sample_{i}", llm.local_lm(base, sft, sample_temperature=config.temperature, seed=i))
               for i in range(1, config.n_samples + 1)]
    rows = []
    for origin, lm in models:
        for q, p, answer in zip(questions, prompts, lm.generate_batch(prompts)):
            rows.append({"candidate_id": f"{q['question_id']}:{origin}", "question_id": q["question_id"],
                         "contract_id": q["contract_id"], "question": q["question"],
                         "gold_answer": q["gold_answers"][0], "gold_answers": q["gold_answers"],
                         "prompt_json": json.dumps(p), "origin": origin, "answer": answer})
    return dg.Output(pl.DataFrame(rows), metadata={"dagster/row_count": len(rows), "questions": len(questions),
                                                    "candidates_per_question": len(models)})


class FeedbackConfig(dg.Config):
    judge_weight: float = 0.5  # grade = w * judge score + (1 - w) * token F1 against the gold answers


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE)
def ai_feedback(config: FeedbackConfig, rag_responses: pl.DataFrame, llm: LLMResource) -> dg.Output[pl.DataFrame]:
    """The judge grades every candidate (0-1 with a one-line critique); token F1 and CUAD match sit beside it."""
    judge = llm.lm("judge")
    rows = rag_responses.to_dicts()

    def grade_one(r: dict) -> dict:
        v = judge_factuality(judge, r["question"], r["gold_answer"], r["answer"])
        f1 = token_f1(r["answer"], r["gold_answers"])
        return {"candidate_id": r["candidate_id"], "judge_score": v.score, "judge_critique": v.critique,
                "judge_missing_reason": v.missing_reason, "token_f1": f1,
                "cuad_match": cuad_match(r["answer"], r["gold_answers"]),
                "grade": grade(v.score, f1, config.judge_weight)}

    with dspy.context(**llm.context("judge")):
        graded = thread_map(grade_one, rows)
    out = pl.DataFrame(graded, infer_schema_length=None)
    return dg.Output(out, metadata={"dagster/row_count": out.height, "judge": llm.describe("judge"),
                                    "judge_missing": int(out["judge_score"].is_null().sum()) if out.height else 0,
                                    "mean_grade": float(out["grade"].mean()) if out.height else None})


class PairsConfig(dg.Config):
    margin: float = 0.3  # a rejected answer is graded at least this far below the chosen one
    chosen: str = "gold"  # 'gold' (the CUAD answer) or 'best' (the best-graded candidate)
    max_pairs_per_question: int = 2


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE)
def preference_pairs(config: PairsConfig, rag_responses: pl.DataFrame, ai_feedback: pl.DataFrame,
                     human_feedback: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """prompt / chosen / rejected from AI-graded candidates and human ratings (train-split contracts only)."""
    cands = rag_responses.join(ai_feedback.select("candidate_id", "grade"), on="candidate_id").to_dicts()
    human = human_feedback.filter(pl.col("split") == "train").to_dicts()
    pairs, stats = build_preference_pairs(cands, human, config.margin, config.chosen, config.max_pairs_per_question)
    stats["human_eval_split_ignored"] = human_feedback.height - len(human)
    return dg.Output(pl.DataFrame(pairs, schema=PAIR_SCHEMA), metadata={"dagster/row_count": len(pairs), **stats})


PAIR_SCHEMA = {"pair_id": pl.Utf8, "question_id": pl.Utf8, "contract_id": pl.Utf8, "question": pl.Utf8,
               "prompt_json": pl.Utf8, "chosen": pl.Utf8, "rejected": pl.Utf8, "chosen_grade": pl.Float64,
               "rejected_grade": pl.Float64, "margin": pl.Float64, "chosen_source": pl.Utf8,
               "rejected_source": pl.Utf8}
