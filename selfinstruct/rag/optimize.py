"""Compile the RAG program with DSPy prompt optimisation on train-split questions only."""

from __future__ import annotations

from collections.abc import Sequence

import dspy

from selfinstruct.core.metrics import cuad_match
from selfinstruct.judging.judges import judge_factuality
from selfinstruct.rag.program import ContractRAG


def make_metric(judge_lm: dspy.BaseLM | None, judge_weight: float = 0.5):
    """CUAD match blended with the factuality judge; a missing judge score leaves CUAD match alone."""

    def metric(example: dspy.Example, pred: dspy.Prediction, trace=None) -> float:
        golds = list(example.gold_answers)
        score = cuad_match(pred.answer, golds)
        if judge_lm is not None:
            verdict = judge_factuality(judge_lm, example.question, golds[0], pred.answer)
            if verdict.score is not None:
                score = (1 - judge_weight) * score + judge_weight * verdict.score
        return score >= 0.5 if trace is not None else score

    return metric


def to_examples(questions: Sequence[dict]) -> list[dspy.Example]:
    return [
        dspy.Example(
            question=q["question"],
            contract_id=q["contract_id"],
            gold_answers=q["gold_answers"],
            answer=q["gold_answers"][0],
        ).with_inputs("question", "contract_id")
        for q in questions
    ]


def compile_program(
    program: ContractRAG,
    train_questions: Sequence[dict],
    judge_lm: dspy.BaseLM | None,
    optimizer: str = "bootstrap",
    max_demos: int = 2,
) -> ContractRAG:
    """BootstrapFewShot (default) or MIPROv2 ('mipro'); the LM in `dspy.context` is the student and teacher."""
    trainset = to_examples(train_questions)
    metric = make_metric(judge_lm)
    # The program and the judge turn unreadable replies into answers and missing scores themselves, so an
    # exception here is the LM failing (a model that cannot load, a backend down). DSPy's optimizers would
    # log up to 10 of them and compile a program with no demos; max_errors=1 fails the step on the first.
    if optimizer == "bootstrap":
        opt = dspy.BootstrapFewShot(
            metric=metric, max_bootstrapped_demos=max_demos, max_labeled_demos=max_demos, max_errors=1
        )
        return opt.compile(program, trainset=trainset)
    if optimizer == "mipro":
        opt = dspy.MIPROv2(
            metric=metric,
            auto="light",
            max_bootstrapped_demos=max_demos,
            max_labeled_demos=max_demos,
            num_threads=1,
            max_errors=1,
        )
        return opt.compile(program, trainset=trainset)
    raise ValueError(f"optimizer must be 'bootstrap' or 'mipro', got {optimizer!r}")


def demo_contract_ids(program: ContractRAG) -> set[str]:
    """Contracts behind the compiled demos, for the held-out check."""
    return {d.get("contract_id") for d in program.generate.demos if d.get("contract_id")}
